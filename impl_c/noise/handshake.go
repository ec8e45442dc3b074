package noise

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"strings"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/curve25519"
)

// ErrHandshake is any handshake failure (bad DH result, bad message, ...).
var ErrHandshake = errors.New("noise: handshake failed")

type pattern struct {
	preI, preR []string
	msgs       [][]string
}

var patterns = map[string]pattern{
	"XX": {msgs: [][]string{{"e"}, {"e", "ee", "s", "es"}, {"s", "se"}}},
	"IK": {preR: []string{"s"}, msgs: [][]string{{"e", "es", "s", "ss"}, {"e", "ee", "se"}}},
	"KK": {preI: []string{"s"}, preR: []string{"s"}, msgs: [][]string{{"e", "es", "ss"}, {"e", "ee", "se"}}},
}

// KeyPair is an X25519 key pair.
type KeyPair struct {
	Priv, Pub []byte
}

// NewKeyPair derives the public key of a 32-byte secret.
func NewKeyPair(priv []byte) (KeyPair, error) {
	pub, err := curve25519.X25519(priv, curve25519.Basepoint)
	if err != nil {
		return KeyPair{}, err
	}
	return KeyPair{Priv: append([]byte{}, priv...), Pub: pub}, nil
}

// DH is X25519; an all-zero result (small-order public key) is an error.
func DH(priv, pub []byte) ([]byte, error) {
	if len(pub) != 32 {
		return nil, ErrHandshake
	}
	out, err := curve25519.X25519(priv, pub)
	if err != nil {
		return nil, ErrHandshake
	}
	return out, nil
}

// Config describes one side of a handshake.
type Config struct {
	Protocol  string // e.g. Noise_XX_25519_ChaChaPoly_BLAKE2b
	Initiator bool
	Prologue  []byte
	Static    KeyPair
	Ephemeral *KeyPair // fixed ephemeral (test vectors); nil = random via EphemeralGen
	RemoteS   []byte   // pre-known remote static (IK/KK)
	Random    func() ([]byte, error)
}

// HandshakeState runs one handshake.
type HandshakeState struct {
	pat     pattern
	newHash func() hash.Hash
	hlen    int
	ck, h   []byte
	cs      CipherState
	init    bool
	s       KeyPair
	e       *KeyPair
	rs, re  []byte
	step    int
	random  func() ([]byte, error)
}

// NewHandshake initialises a HandshakeState.
func NewHandshake(c Config) (*HandshakeState, error) {
	parts := strings.Split(c.Protocol, "_")
	if len(parts) != 5 || parts[0] != "Noise" || parts[2] != "25519" || parts[3] != "ChaChaPoly" {
		return nil, fmt.Errorf("unsupported protocol %q", c.Protocol)
	}
	p, ok := patterns[parts[1]]
	if !ok {
		return nil, fmt.Errorf("unsupported pattern %q", parts[1])
	}
	hs := &HandshakeState{pat: p, init: c.Initiator, s: c.Static, e: c.Ephemeral, rs: c.RemoteS, random: c.Random}
	switch parts[4] {
	case "BLAKE2b":
		hs.newHash = func() hash.Hash { h, _ := blake2b.New512(nil); return h }
		hs.hlen = 64
	case "SHA256":
		hs.newHash = sha256.New
		hs.hlen = 32
	default:
		return nil, fmt.Errorf("unsupported hash %q", parts[4])
	}
	name := []byte(c.Protocol)
	if len(name) <= hs.hlen {
		hs.h = make([]byte, hs.hlen)
		copy(hs.h, name)
	} else {
		hs.h = hs.hash(name)
	}
	hs.ck = append([]byte{}, hs.h...)
	hs.mixHash(c.Prologue)
	for _, t := range p.preI {
		if t == "s" {
			if c.Initiator {
				hs.mixHash(hs.s.Pub)
			} else {
				hs.mixHash(hs.rs)
			}
		}
	}
	for _, t := range p.preR {
		if t == "s" {
			if c.Initiator {
				hs.mixHash(hs.rs)
			} else {
				hs.mixHash(hs.s.Pub)
			}
		}
	}
	return hs, nil
}

func (hs *HandshakeState) hash(parts ...[]byte) []byte {
	h := hs.newHash()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func (hs *HandshakeState) hmac(key, data []byte) []byte {
	m := hmac.New(hs.newHash, key)
	m.Write(data)
	return m.Sum(nil)
}

func (hs *HandshakeState) hkdf(ikm []byte) ([]byte, []byte) {
	tk := hs.hmac(hs.ck, ikm)
	o1 := hs.hmac(tk, []byte{1})
	o2 := hs.hmac(tk, append(append([]byte{}, o1...), 2))
	return o1, o2
}

func (hs *HandshakeState) mixHash(d []byte) { hs.h = hs.hash(hs.h, d) }

func (hs *HandshakeState) mixKey(ikm []byte) {
	ck, tk := hs.hkdf(ikm)
	hs.ck = ck
	hs.cs = *NewCipherState(tk[:32], 0, false)
}

func (hs *HandshakeState) encryptAndHash(p []byte) ([]byte, error) {
	c, err := hs.cs.EncryptWithAd(hs.h, p)
	if err != nil {
		return nil, err
	}
	hs.mixHash(c)
	return c, nil
}

func (hs *HandshakeState) decryptAndHash(c []byte) ([]byte, error) {
	p, err := hs.cs.DecryptWithAd(hs.h, c)
	if err != nil {
		return nil, err
	}
	hs.mixHash(c)
	return p, nil
}

func (hs *HandshakeState) dhToken(t string) error {
	var priv, pub []byte
	switch {
	case t == "ee":
		priv, pub = hs.e.Priv, hs.re
	case (t == "es" && hs.init) || (t == "se" && !hs.init):
		priv, pub = hs.e.Priv, hs.rs
	case (t == "es" && !hs.init) || (t == "se" && hs.init):
		priv, pub = hs.s.Priv, hs.re
	case t == "ss":
		priv, pub = hs.s.Priv, hs.rs
	}
	if priv == nil || pub == nil {
		return ErrHandshake
	}
	d, err := DH(priv, pub)
	if err != nil {
		return err
	}
	hs.mixKey(d)
	return nil
}

// MyTurn reports whether this side writes the next handshake message.
func (hs *HandshakeState) MyTurn() bool { return (hs.step%2 == 0) == hs.init }

// Done reports whether every handshake message was processed.
func (hs *HandshakeState) Done() bool { return hs.step >= len(hs.pat.msgs) }

// WriteMessage writes the next handshake message carrying payload.
func (hs *HandshakeState) WriteMessage(payload []byte) ([]byte, error) {
	if hs.Done() || !hs.MyTurn() {
		return nil, ErrHandshake
	}
	var out []byte
	for _, t := range hs.pat.msgs[hs.step] {
		switch t {
		case "e":
			if hs.e == nil {
				r, err := hs.random()
				if err != nil {
					return nil, err
				}
				kp, err := NewKeyPair(r)
				if err != nil {
					return nil, err
				}
				hs.e = &kp
			}
			out = append(out, hs.e.Pub...)
			hs.mixHash(hs.e.Pub)
		case "s":
			c, err := hs.encryptAndHash(hs.s.Pub)
			if err != nil {
				return nil, err
			}
			out = append(out, c...)
		default:
			if err := hs.dhToken(t); err != nil {
				return nil, err
			}
		}
	}
	c, err := hs.encryptAndHash(payload)
	if err != nil {
		return nil, err
	}
	hs.step++
	return append(out, c...), nil
}

// ReadMessage processes the peer's next handshake message and returns its payload.
func (hs *HandshakeState) ReadMessage(msg []byte) ([]byte, error) {
	if hs.Done() || hs.MyTurn() {
		return nil, ErrHandshake
	}
	for _, t := range hs.pat.msgs[hs.step] {
		switch t {
		case "e":
			if len(msg) < 32 {
				return nil, ErrHandshake
			}
			hs.re = append([]byte{}, msg[:32]...)
			msg = msg[32:]
			hs.mixHash(hs.re)
		case "s":
			n := 32
			if hs.cs.hasKey {
				n += 16
			}
			if len(msg) < n {
				return nil, ErrHandshake
			}
			p, err := hs.decryptAndHash(msg[:n])
			if err != nil {
				return nil, ErrHandshake
			}
			hs.rs = p
			msg = msg[n:]
		default:
			if err := hs.dhToken(t); err != nil {
				return nil, err
			}
		}
	}
	p, err := hs.decryptAndHash(msg)
	if err != nil {
		return nil, ErrHandshake
	}
	hs.step++
	return p, nil
}

// HandshakeHash is h.
func (hs *HandshakeState) HandshakeHash() []byte { return append([]byte{}, hs.h...) }

// RemoteStatic is the peer's static public key once known.
func (hs *HandshakeState) RemoteStatic() []byte { return hs.rs }

// Split returns (send, recv) CipherStates for this side; schedule enables the SPEC 13 rekey rule.
func (hs *HandshakeState) Split(schedule bool) (*CipherState, *CipherState) {
	k1, k2 := hs.hkdf(nil)
	c1 := NewCipherState(k1[:32], 0, schedule)
	c2 := NewCipherState(k2[:32], 0, schedule)
	if hs.init {
		return c1, c2
	}
	return c2, c1
}
