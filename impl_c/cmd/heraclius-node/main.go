// Command heraclius-node runs one impl_c node (SPEC 4).
package main

import (
	"os"

	"heraclius/impl_c/node"
)

func main() { os.Exit(node.Main(os.Args[1:])) }
