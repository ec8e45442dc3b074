// Package sig implements SPEC 6 signing bytes and the SPEC 7 Ed25519
// verification rule ("libsodium-strict") over Go's crypto/ed25519.
package sig

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"math/big"
)

// Signing domains of SPEC 6.
const (
	DomainClientRequest = "client-request"
	DomainClientBundle  = "client-bundle"
	DomainDecision      = "decision"
	DomainProposal      = "proposal"
	DomainPrepare       = "prepare"
	DomainViewChange    = "view-change"
	DomainViewData      = "view-data"
	DomainNewView       = "new-view"
)

// SigningBytes returns "heraclius/v1/" || domain || 0x00 || u16be(len(network)) || network || body.
func SigningBytes(domain, network string, body []byte) []byte {
	b := make([]byte, 0, 16+len(domain)+len(network)+len(body))
	b = append(b, "heraclius/v1/"...)
	b = append(b, domain...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(network)))
	b = append(b, network...)
	return append(b, body...)
}

// blocklist holds SPEC 7's rejected encodings: 0 and 1, the two points of order 8, and p-1, p,
// p+1 (non-canonical encodings of small-order points), the last three derived from p.
var blocklist = func() [][]byte {
	out := [][]byte{make([]byte, 32), append([]byte{1}, make([]byte, 31)...),
		mustHex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
		mustHex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")}
	for d := int64(-1); d <= 1; d++ {
		be := new(big.Int).Add(fieldP, big.NewInt(d)).FillBytes(make([]byte, 32))
		for a, z := 0, 31; a < z; a, z = a+1, z-1 {
			be[a], be[z] = be[z], be[a]
		}
		out = append(out, be)
	}
	return out
}()

var (
	groupL = func() *big.Int {
		l, _ := new(big.Int).SetString("27742317777372353535851937790883648493", 10)
		return l.Add(l, new(big.Int).Lsh(big.NewInt(1), 252))
	}()
	fieldP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
)

func leInt(b []byte) *big.Int {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return new(big.Int).SetBytes(r)
}

func clearBit255(b []byte) []byte {
	c := append([]byte{}, b...)
	c[31] &= 0x7f
	return c
}

// SmallOrder reports whether a 32-byte encoding (bit 255 ignored) is on the SPEC 7 blocklist.
func SmallOrder(enc []byte) bool {
	c := clearBit255(enc)
	for _, e := range blocklist {
		if bytes.Equal(c, e) {
			return true
		}
	}
	return false
}

// Verify applies the SPEC 7 rule: checks 1 to 4 by hand, 5 and 6 by crypto/ed25519
// (which decodes A and compares the canonical encoding of [S]B - [k]A with R).
func Verify(pub, msg, signature []byte) bool {
	if len(pub) != 32 || len(signature) != 64 {
		return false
	}
	if leInt(signature[32:]).Cmp(groupL) >= 0 { // 1
		return false
	}
	if SmallOrder(signature[:32]) { // 2
		return false
	}
	if leInt(clearBit255(pub)).Cmp(fieldP) >= 0 { // 3
		return false
	}
	if SmallOrder(pub) { // 4
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(pub), msg, signature) // 5, 6
}

// Signer holds an Ed25519 key.
type Signer struct {
	priv ed25519.PrivateKey
	Pub  []byte
}

// NewSigner derives the key pair from a 32-byte seed.
func NewSigner(seed []byte) *Signer {
	p := ed25519.NewKeyFromSeed(seed)
	return &Signer{priv: p, Pub: append([]byte{}, p.Public().(ed25519.PublicKey)...)}
}

// Sign signs the SPEC 6 signing bytes of (domain, network, body).
func (s *Signer) Sign(domain, network string, body []byte) []byte {
	return ed25519.Sign(s.priv, SigningBytes(domain, network, body))
}

// SignRaw signs msg as is.
func (s *Signer) SignRaw(msg []byte) []byte { return ed25519.Sign(s.priv, msg) }

// VerifyDomain verifies a signature over the signing bytes of (domain, network, body).
func VerifyDomain(pub []byte, domain, network string, body, signature []byte) bool {
	return Verify(pub, SigningBytes(domain, network, body), signature)
}
