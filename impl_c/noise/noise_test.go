package noise

import (
	"bytes"
	"crypto/rand"
	"testing"
)

func rnd() ([]byte, error) {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	return b, err
}

func pair(t testing.TB) (*HandshakeState, *HandshakeState) {
	a, _ := rnd()
	b, _ := rnd()
	ka, _ := NewKeyPair(a)
	kb, _ := NewKeyPair(b)
	i, err := NewHandshake(Config{Protocol: "Noise_XX_25519_ChaChaPoly_BLAKE2b", Initiator: true, Prologue: []byte("p"), Static: ka, Random: rnd})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := NewHandshake(Config{Protocol: "Noise_XX_25519_ChaChaPoly_BLAKE2b", Prologue: []byte("p"), Static: kb, Random: rnd})
	return i, r
}

func TestHandshakeAndTransport(t *testing.T) {
	i, r := pair(t)
	m1, _ := i.WriteMessage(nil)
	if _, err := r.ReadMessage(m1); err != nil {
		t.Fatal(err)
	}
	m2, _ := r.WriteMessage([]byte("hello-r"))
	if p, err := i.ReadMessage(m2); err != nil || string(p) != "hello-r" {
		t.Fatal(err)
	}
	m3, _ := i.WriteMessage([]byte("hello-i"))
	if p, err := r.ReadMessage(m3); err != nil || string(p) != "hello-i" {
		t.Fatal(err)
	}
	is, ir := i.Split(true)
	rs, rr := r.Split(true)
	for n := 0; n < 70000; n++ {
		ct, _ := is.EncryptWithAd(nil, []byte{byte(n)})
		p, err := rr.DecryptWithAd(nil, ct)
		if err != nil || p[0] != byte(n) {
			t.Fatalf("message %d: %v", n, err)
		}
	}
	ct, _ := rs.EncryptWithAd(nil, []byte("x"))
	ct[0] ^= 1
	if _, err := ir.DecryptWithAd(nil, ct); err == nil {
		t.Fatal("tampered message accepted")
	}
	if ir.Nonce() != 0 {
		t.Fatal("nonce advanced on a failed decryption")
	}
}

func TestSmallOrderEphemeralRejected(t *testing.T) {
	i, r := pair(t)
	m1, _ := i.WriteMessage(nil)
	_ = m1
	zero := make([]byte, 32) // the zero point: X25519 result all zero
	if _, err := r.ReadMessage(zero); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteMessage(nil); err == nil {
		t.Fatal("ee with a small-order ephemeral accepted")
	}
}

func TestNonceExhaustion(t *testing.T) {
	c := NewCipherState(bytes.Repeat([]byte{1}, 32), MaxNonce, false)
	if _, err := c.EncryptWithAd(nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EncryptWithAd(nil, nil); err != ErrNonceExhausted {
		t.Fatal("nonce 2^64-1 used")
	}
}

func FuzzReadMessage(f *testing.F) {
	f.Add(make([]byte, 32))
	f.Add(make([]byte, 96))
	f.Fuzz(func(t *testing.T, b []byte) {
		i, r := pair(t)
		r.ReadMessage(b)
		m1, _ := i.WriteMessage(nil)
		r2, _ := pair(t)
		_ = r2
		r.ReadMessage(m1)
		i.ReadMessage(b)
	})
}
