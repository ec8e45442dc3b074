package merkle

import (
	"fmt"
	"testing"
)

func TestProofsAllSizes(t *testing.T) {
	for n := 1; n <= 33; n++ {
		var leaves [][]byte
		for i := 0; i < n; i++ {
			leaves = append(leaves, []byte(fmt.Sprint(i)))
		}
		root := Root(leaves)
		for i := 0; i < n; i++ {
			p := Proof(leaves, i)
			if !Verify(LeafHash(leaves[i]), uint64(i), uint64(n), p, root) {
				t.Fatalf("n=%d i=%d rejected", n, i)
			}
			if Verify(LeafHash(leaves[i]), uint64(i), uint64(n), append(p, root), root) {
				t.Fatalf("n=%d i=%d: longer path accepted", n, i)
			}
			if i+1 < n && Verify(LeafHash(leaves[i]), uint64(i+1), uint64(n), p, root) && n > 1 {
				t.Fatalf("n=%d i=%d: wrong index accepted", n, i)
			}
		}
		if Verify(LeafHash(leaves[0]), uint64(n), uint64(n), nil, root) {
			t.Fatal("index = count accepted")
		}
	}
}
