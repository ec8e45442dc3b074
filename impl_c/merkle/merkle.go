// Package merkle implements the RFC 6962 / RFC 9162 Merkle tree of SPEC 8:
// tree hash, audit paths and inclusion proof verification.
package merkle

import (
	"bytes"
	"crypto/sha256"
)

// LeafHash is SHA-256(0x00 || d).
func LeafHash(d []byte) []byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(d)
	return h.Sum(nil)
}

// NodeHash is SHA-256(0x01 || l || r).
func NodeHash(l, r []byte) []byte {
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(l)
	h.Write(r)
	return h.Sum(nil)
}

func split(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

func rootOfHashes(hs [][]byte) []byte {
	switch len(hs) {
	case 0:
		s := sha256.Sum256(nil)
		return s[:]
	case 1:
		return hs[0]
	}
	k := split(len(hs))
	return NodeHash(rootOfHashes(hs[:k]), rootOfHashes(hs[k:]))
}

// Root is MTH(leaves).
func Root(leaves [][]byte) []byte {
	hs := make([][]byte, len(leaves))
	for i, l := range leaves {
		hs[i] = LeafHash(l)
	}
	return rootOfHashes(hs)
}

// Proof returns the RFC 9162 audit path of leaf idx.
func Proof(leaves [][]byte, idx int) [][]byte {
	hs := make([][]byte, len(leaves))
	for i, l := range leaves {
		hs[i] = LeafHash(l)
	}
	return path(hs, idx)
}

func path(hs [][]byte, m int) [][]byte {
	if len(hs) <= 1 {
		return nil
	}
	k := split(len(hs))
	if m < k {
		return append(path(hs[:k], m), rootOfHashes(hs[k:]))
	}
	return append(path(hs[k:], m-k), rootOfHashes(hs[:k]))
}

// Verify checks an inclusion proof (RFC 9162 2.1.3.2 plus the SPEC 8 rules).
func Verify(leafHash []byte, index, count uint64, proof [][]byte, root []byte) bool {
	if index >= count || len(leafHash) != 32 || len(root) != 32 {
		return false
	}
	for _, p := range proof {
		if len(p) != 32 {
			return false
		}
	}
	fn, sn := index, count-1
	r := leafHash
	for _, p := range proof {
		if sn == 0 {
			return false
		}
		if fn&1 == 1 || fn == sn {
			r = NodeHash(p, r)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			r = NodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	return sn == 0 && bytes.Equal(r, root)
}
