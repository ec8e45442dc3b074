// Command statuscheck validates GET /status of each URL against
// wire_spec/status.schema.json (embedded copy).
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"

	"heraclius/impl_c/schema"
)

func main() {
	v, err := schema.New(schema.StatusSchema)
	if err != nil {
		panic(err)
	}
	bad := 0
	for _, u := range os.Args[1:] {
		resp, err := http.Get(u)
		if err != nil {
			fmt.Println(u, err)
			bad++
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		doc, err := schema.ParseJSON(b)
		if err == nil {
			err = v.Validate(doc)
		}
		if err != nil {
			fmt.Println(u, "INVALID:", err)
			bad++
		} else {
			fmt.Println(u, "valid")
		}
	}
	if bad > 0 {
		os.Exit(1)
	}
}
