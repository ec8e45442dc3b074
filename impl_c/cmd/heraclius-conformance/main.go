// Command heraclius-conformance runs the SPEC 17 conformance vectors:
// heraclius-conformance PATH... prints FAIL lines and "N passed, M failed";
// heraclius-conformance --serve is the SPEC 17.1 differential adapter.
package main

import (
	"fmt"
	"os"

	"heraclius/impl_c/conformance"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--serve" {
		if err := conformance.Serve(os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		return
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: heraclius-conformance PATH...")
		os.Exit(2)
	}
	res := conformance.Run(os.Args[1:])
	pass, fail := 0, 0
	for _, r := range res {
		if r.Err != nil {
			fail++
			fmt.Printf("FAIL %s: %v\n", r.Path, r.Err)
		} else {
			pass++
		}
	}
	fmt.Printf("%d passed, %d failed\n", pass, fail)
	if fail > 0 || pass == 0 {
		os.Exit(1)
	}
}
