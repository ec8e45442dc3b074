// Command heraclius-client is the impl_c client (SPEC 4.1).
package main

import (
	"os"

	"heraclius/impl_c/client"
)

func main() { os.Exit(client.Main(os.Args[1:])) }
