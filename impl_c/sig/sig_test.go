package sig

import (
	"bytes"
	"testing"
)

func TestSignVerify(t *testing.T) {
	s := NewSigner(bytes.Repeat([]byte{3}, 32))
	sg := s.Sign(DomainPrepare, "net", []byte("body"))
	if !VerifyDomain(s.Pub, DomainPrepare, "net", []byte("body"), sg) {
		t.Fatal("own signature rejected")
	}
	for _, tc := range []struct{ domain, net, body string }{{DomainCommitLike, "net", "body"}, {DomainPrepare, "other", "body"}, {DomainPrepare, "net", "bodx"}} {
		if VerifyDomain(s.Pub, tc.domain, tc.net, []byte(tc.body), sg) {
			t.Errorf("accepted in %v", tc)
		}
	}
}

const DomainCommitLike = DomainDecision

func TestBlocklistRejected(t *testing.T) {
	s := NewSigner(bytes.Repeat([]byte{4}, 32))
	sg := s.SignRaw([]byte("m"))
	for _, b := range blocklist {
		if Verify(b, []byte("m"), sg) {
			t.Fatal("small-order A accepted")
		}
		bad := append(append([]byte{}, b...), sg[32:]...)
		if Verify(s.Pub, []byte("m"), bad) {
			t.Fatal("small-order R accepted")
		}
	}
	high := append(append([]byte{}, sg[:32]...), bytes.Repeat([]byte{0xff}, 32)...)
	if Verify(s.Pub, []byte("m"), high) {
		t.Fatal("S >= L accepted")
	}
}
