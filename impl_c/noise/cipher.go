// Package noise implements the Noise Protocol Framework (revision 34) for
// the patterns XX, IK and KK with DH 25519, cipher ChaChaPoly and hash
// BLAKE2b or SHA256, over golang.org/x/crypto, plus the SPEC 13 rekey
// schedule of transport CipherStates.
package noise

import (
	"encoding/binary"
	"errors"

	"golang.org/x/crypto/chacha20poly1305"
)

// MaxNonce is the last usable nonce (2^64 - 2).
const MaxNonce = ^uint64(0) - 1

// RekeyPeriod is the SPEC 13 period: rekey after nonce n with (n+1) mod 65536 = 0.
const RekeyPeriod = 65536

// ErrDecrypt is a failed authenticated decryption.
var ErrDecrypt = errors.New("noise: decryption failed")

// ErrNonceExhausted is returned before using a nonce above MaxNonce.
var ErrNonceExhausted = errors.New("noise: nonce exhausted")

// CipherState is a Noise CipherState. Schedule enables the SPEC 13 rekey rule.
type CipherState struct {
	k        [32]byte
	hasKey   bool
	n        uint64
	Schedule bool
}

// NewCipherState returns a keyed CipherState at nonce n.
func NewCipherState(k []byte, n uint64, schedule bool) *CipherState {
	c := &CipherState{hasKey: true, n: n, Schedule: schedule}
	copy(c.k[:], k)
	return c
}

// Key returns the current key.
func (c *CipherState) Key() []byte { return append([]byte{}, c.k[:]...) }

// Nonce returns the next nonce.
func (c *CipherState) Nonce() uint64 { return c.n }

func nonce(n uint64) []byte {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[4:], n)
	return b[:]
}

func encrypt(k []byte, n uint64, ad, p []byte) []byte {
	a, err := chacha20poly1305.New(k)
	if err != nil {
		panic(err)
	}
	return a.Seal(nil, nonce(n), p, ad)
}

func decrypt(k []byte, n uint64, ad, c []byte) ([]byte, error) {
	a, err := chacha20poly1305.New(k)
	if err != nil {
		panic(err)
	}
	p, err := a.Open(nil, nonce(n), c, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return p, nil
}

// Rekey returns REKEY(k) = ENCRYPT(k, 2^64-1, "", zeros(32))[0..32].
func Rekey(k []byte) []byte {
	return encrypt(k, ^uint64(0), nil, make([]byte, 32))[:32]
}

// EncryptWithAd encrypts p (identity when no key is set).
func (c *CipherState) EncryptWithAd(ad, p []byte) ([]byte, error) {
	if !c.hasKey {
		return append([]byte{}, p...), nil
	}
	if c.n > MaxNonce {
		return nil, ErrNonceExhausted
	}
	out := encrypt(c.k[:], c.n, ad, p)
	c.advance()
	return out, nil
}

// DecryptWithAd decrypts ct; on failure the nonce does not advance.
func (c *CipherState) DecryptWithAd(ad, ct []byte) ([]byte, error) {
	if !c.hasKey {
		return append([]byte{}, ct...), nil
	}
	if c.n > MaxNonce {
		return nil, ErrNonceExhausted
	}
	p, err := decrypt(c.k[:], c.n, ad, ct)
	if err != nil {
		return nil, err
	}
	c.advance()
	return p, nil
}

func (c *CipherState) advance() {
	used := c.n
	c.n++
	if c.Schedule && (used+1)%RekeyPeriod == 0 {
		copy(c.k[:], Rekey(c.k[:]))
	}
}
