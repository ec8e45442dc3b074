// Package rsm is the Heraclius replicated state machine (SPEC 11) and the
// verification rules it depends on: quorum certificates (SPEC 9), compact
// decisions (SPEC 10) and input validity. It is pure: no I/O, no clock.
package rsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"

	"heraclius/impl_c/manifest"
	"heraclius/impl_c/merkle"
	"heraclius/impl_c/sig"
	"heraclius/impl_c/wire"
)

// Hash is SHA-256 of the canonical encoding of m.
func Hash(m wire.Message) []byte {
	s := sha256.Sum256(wire.Encode(m))
	return s[:]
}

// SigCache remembers valid signatures (message bytes digest, key, signature)
// so that one signature is verified once. Safe for concurrent use; bounded.
type SigCache struct {
	mu sync.Mutex
	m  map[[32]byte]struct{}
	// trust makes Verify accept everything: used only while replaying the
	// node's own durable log, whose inputs were verified before they were written.
	trust bool
}

// Trust switches replay mode on or off (call from the owning goroutine only,
// before other goroutines use the cache).
func (c *SigCache) Trust(on bool) {
	if c != nil {
		c.mu.Lock()
		c.trust = on
		c.mu.Unlock()
	}
}

// NewSigCache returns an empty cache.
func NewSigCache() *SigCache { return &SigCache{m: map[[32]byte]struct{}{}} }

// Verify checks sig.VerifyDomain, caching positive answers.
func (c *SigCache) Verify(pub []byte, domain, network string, body, signature []byte) bool {
	if c == nil {
		return sig.VerifyDomain(pub, domain, network, body, signature)
	}
	h := sha256.New()
	h.Write(pub)
	h.Write(signature)
	h.Write([]byte(domain))
	h.Write(body)
	var k [32]byte
	copy(k[:], h.Sum(nil))
	c.mu.Lock()
	_, ok := c.m[k]
	trust := c.trust
	c.mu.Unlock()
	if trust {
		return true
	}
	if ok {
		return true
	}
	if !sig.VerifyDomain(pub, domain, network, body, signature) {
		return false
	}
	c.mu.Lock()
	if len(c.m) > 200000 {
		c.m = map[[32]byte]struct{}{}
	}
	c.m[k] = struct{}{}
	c.mu.Unlock()
	return true
}

// VerifyQC applies SPEC 9; it returns "" or the rejection reason.
func VerifyQC(m *manifest.Manifest, cache *SigCache, h *wire.DecisionHeader, qc *wire.QuorumCert) string {
	c := m.Cluster(h.ClusterID)
	if c == nil {
		return "wrong_cluster"
	}
	if qc == nil {
		return "bad_qc"
	}
	sigs := qc.Signatures
	for i := 1; i < len(sigs); i++ {
		if strings.Compare(sigs[i-1].NodeID, sigs[i].NodeID) >= 0 {
			return "bad_qc"
		}
	}
	if len(sigs) < c.Q() || len(sigs) > c.N() {
		return "bad_qc"
	}
	body := wire.Encode(h)
	for _, s := range sigs {
		n := c.Member(s.NodeID)
		if n == nil {
			return "bad_qc"
		}
		if !cache.Verify(n.Ed25519, sig.DomainDecision, m.NetworkID, body, s.Signature) {
			return "bad_qc"
		}
	}
	return ""
}

// ClientDest is the destination of a client key.
func ClientDest(key []byte) string { return "client:" + hex.EncodeToString(key) }

// VerifyCompact applies SPEC 10 points 1 to 6 for source s, destination d,
// next expected seq next; it returns "" or the rejection reason.
func VerifyCompact(m *manifest.Manifest, cache *SigCache, cd *wire.CompactDecision, s, d string, next uint64) string {
	h := cd.Header
	if h == nil || h.ClusterID != s || m.Cluster(s) == nil {
		return "wrong_cluster"
	}
	if r := VerifyQC(m, cache, h, cd.Qc); r != "" {
		return r
	}
	if cd.Leaf == nil || cd.LeafCount < 1 || cd.LeafIndex >= cd.LeafCount ||
		!merkle.Verify(merkle.LeafHash(wire.Encode(cd.Leaf)), cd.LeafIndex, cd.LeafCount, cd.Proof, h.OutputsRoot) {
		return "bad_proof"
	}
	l := cd.Leaf
	if l.SourceCluster != s || l.Height != h.Height || l.Destination != d {
		return "wrong_destination"
	}
	var want string
	if strings.HasPrefix(d, "client:") {
		want = "responses"
	} else if c := m.Cluster(d); c != nil && c.Role == "shard" {
		want = "calls"
	} else {
		want = "results"
	}
	nc, nr, np := len(l.Calls), len(l.Results), len(l.Responses)
	ok := false
	switch want {
	case "calls":
		ok = nc > 0 && nr == 0 && np == 0
	case "results":
		ok = nr > 0 && nc == 0 && np == 0
	case "responses":
		ok = np > 0 && nc == 0 && nr == 0
	}
	if !ok || len(h.ParentHash) != 32 || len(h.InputsHash) != 32 || len(h.OutputsRoot) != 32 {
		return "malformed"
	}
	if l.Seq < next {
		return "replay"
	}
	if l.Seq > next {
		return "out_of_order"
	}
	return ""
}

// VerifyRequest checks a client request as an input of coordinator cluster
// cluster (SPEC 11); it returns "" or the rejection reason.
func VerifyRequest(m *manifest.Manifest, cache *SigCache, cluster string, r *wire.ClientRequest) string {
	if r.ClusterID != cluster {
		return "wrong_cluster"
	}
	if len(r.ClientKey) != 32 || m.ClientByKey(r.ClientKey) == nil {
		return "unauthorised_client"
	}
	if len(r.Signature) != 64 {
		return "bad_signature"
	}
	if r.RequestID < 1 {
		return "malformed"
	}
	if reason := checkOp(m, r.Op); reason != "" {
		return reason
	}
	unsigned := *r
	unsigned.Signature = nil
	if !cache.Verify(r.ClientKey, sig.DomainClientRequest, m.NetworkID, wire.Encode(&unsigned), r.Signature) {
		return "bad_signature"
	}
	return ""
}

func checkOp(m *manifest.Manifest, op *wire.Operation) string {
	if op == nil || (op.Kind != wire.OpKindGet && op.Kind != wire.OpKindPut) || len(op.Key) < 1 {
		return "malformed"
	}
	if len(op.Key) > m.Limits.MaxKeyBytes {
		return "oversized"
	}
	if op.Kind == wire.OpKindGet && len(op.Value) > 0 {
		return "malformed"
	}
	if len(op.Value) > m.Limits.MaxValueBytes {
		return "oversized"
	}
	return ""
}

// MaxBundleItems and MaxBundleBytes are the SPEC 14.6 bundle limits.
const (
	MaxBundleItems = 256
	MaxBundleBytes = 262144
)

// VerifyBundle checks a request bundle as an input (SPEC 11, 14.6).
func VerifyBundle(m *manifest.Manifest, cache *SigCache, cluster string, b *wire.RequestBundle) string {
	if b.ClusterID != cluster {
		return "wrong_cluster"
	}
	if len(b.ClientKey) != 32 || m.ClientByKey(b.ClientKey) == nil {
		return "unauthorised_client"
	}
	if len(b.Signature) != 64 {
		return "bad_signature"
	}
	if len(b.Items) > MaxBundleItems || len(wire.Encode(b)) > MaxBundleBytes {
		return "oversized"
	}
	if len(b.Items) == 0 {
		return "malformed"
	}
	var last uint64
	for _, it := range b.Items {
		if it.RequestID < 1 || it.RequestID <= last {
			return "malformed"
		}
		last = it.RequestID
		if r := checkOp(m, it.Op); r != "" {
			return "malformed"
		}
	}
	unsigned := *b
	unsigned.Signature = nil
	if !cache.Verify(b.ClientKey, sig.DomainClientBundle, m.NetworkID, wire.Encode(&unsigned), b.Signature) {
		return "bad_signature"
	}
	return ""
}

var zeroHash = make([]byte, 32)

// ZeroHash is the parent hash of height 1.
func ZeroHash() []byte { return append([]byte{}, zeroHash...) }

func bytesLess(a, b string) bool { return bytes.Compare([]byte(a), []byte(b)) < 0 }

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// VerifyAnswer applies SPEC 10 points 1 to 5 (no seq check), as a client does (14.4).
func VerifyAnswer(m *manifest.Manifest, cache *SigCache, cd *wire.CompactDecision, s, d string) string {
	if cd.Leaf == nil {
		return "bad_proof"
	}
	return VerifyCompact(m, cache, cd, s, d, cd.Leaf.Seq)
}
