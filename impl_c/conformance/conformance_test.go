package conformance

import (
	"os"
	"testing"
)

func TestAllVectors(t *testing.T) {
	const dir = "../../wire_spec/vectors"
	if _, err := os.Stat(dir); err != nil {
		t.Skip("wire_spec/vectors not present")
	}
	res := Run([]string{dir})
	fails := 0
	for _, r := range res {
		if r.Err != nil {
			fails++
			if fails < 20 {
				t.Errorf("%s: %v", r.Path, r.Err)
			}
		}
	}
	if len(res) < 2500 {
		t.Errorf("only %d cases ran", len(res))
	}
}
