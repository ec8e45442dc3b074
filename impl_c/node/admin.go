package node

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"sort"
	"strings"

	"heraclius/impl_c/wire"
)

func hexDecode(s string) ([]byte, error) { return hex.DecodeString(s) }

// snapshot is what the admin port serves, built by the core goroutine.
type snapshot struct {
	status  map[string]any
	metrics string
}

var rejectReasons = []string{"malformed", "non_canonical", "oversized", "bad_signature", "unknown_node", "wrong_network",
	"wrong_cluster", "not_leader", "stale", "bad_qc", "bad_proof", "wrong_destination", "out_of_order", "replay",
	"invalid_proposal", "unauthorised_client", "duplicate", "handshake_failed", "decrypt_failed", "overloaded",
	"connection_limit", "slow_peer", "bad_http_request"}

func (n *Node) publish() {
	c := n.core
	st := c.State()
	rej := map[string]uint64{}
	for k, v := range c.Rejected {
		rej[k] += v
	}
	n.rejMu.Lock()
	for k, v := range n.rejected {
		rej[k] += v
	}
	n.rejMu.Unlock()
	known := map[string]bool{}
	for _, r := range rejectReasons {
		known[r] = true
	}
	rejected := map[string]any{}
	for k, v := range rej {
		if known[k] {
			rejected[k] = v
		}
	}
	var peers []any
	ids := make([]string, 0, len(n.peers))
	for id := range n.peers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := n.peers[id]
		peers = append(peers, map[string]any{"node_id": id, "cluster_id": p.peer.Cluster.ID, "connected": p.up.Load(), "last_seen_ms": p.lastSeen.Load()})
	}
	nextIn, nextOut := map[string]any{}, map[string]any{}
	for k, v := range st.NextIn {
		nextIn[k] = v
	}
	for k, v := range st.NextOut {
		nextOut[k] = v
	}
	counters := map[string]any{}
	for _, k := range []string{"decisions", "view_changes", "client_requests", "client_replies", "client_errors", "client_bundles", "batch_inputs"} {
		counters[k] = c.Counters[k]
	}
	ev := []any{}
	for _, e := range c.Evidence {
		var mh []any
		for _, m := range e.Messages {
			mh = append(mh, hex.EncodeToString(m))
		}
		if mh == nil {
			mh = []any{}
		}
		ev = append(ev, map[string]any{"id": e.ID, "node_id": e.Node, "kind": e.Kind, "detail": e.Detail, "time_ms": e.TimeMs, "messages_hex": mh})
	}
	faults := []any{}
	for _, r := range n.self.FaultsRaw {
		var x any
		_ = json.Unmarshal(r, &x)
		faults = append(faults, x)
	}
	if peers == nil {
		peers = []any{}
	}
	status := map[string]any{
		"node_id": n.self.ID, "cluster_id": n.self.Cluster.ID, "role": n.self.Cluster.Role, "implementation": "impl_c",
		"crypto_backend": "Go crypto/ed25519 + golang.org/x/crypto " + runtime.Version(), "codec": "impl_c hand-written canonical codec",
		"network_id": n.m.NetworkID, "view": c.View(), "leader": c.Leader(), "in_view_change": c.InViewChange(),
		"height": c.Height(), "head_hash": hex.EncodeToString(c.HeadHash()), "last_decision_ms": c.LastDecisionMs(),
		"started_ms": n.started.UnixMilli(), "peers": peers, "queues": map[string]any{"next_in": nextIn, "next_out": nextOut},
		"pending":  map[string]any{"requests": c.PendingRequests(), "remote": c.PendingRemote()},
		"counters": counters, "rejected": rejected, "byzantine_evidence": ev, "testbed_faults": faults,
	}
	lbl := fmt.Sprintf(`node="%s",cluster="%s"`, n.self.ID, n.self.Cluster.ID)
	var b strings.Builder
	metric := func(name, typ, help string, lines ...string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for _, l := range lines {
			b.WriteString(l)
		}
	}
	one := func(name string, v any) string { return fmt.Sprintf("%s{%s} %v\n", name, lbl, v) }
	metric("heraclius_height", "gauge", "last decided height", one("heraclius_height", c.Height()))
	metric("heraclius_view", "gauge", "current view", one("heraclius_view", c.View()))
	metric("heraclius_decisions_total", "counter", "decisions applied", one("heraclius_decisions_total", c.Counters["decisions"]))
	metric("heraclius_batch_inputs_total", "counter", "inputs in applied decisions", one("heraclius_batch_inputs_total", c.Counters["batch_inputs"]))
	metric("heraclius_view_changes_total", "counter", "views entered after view 0", one("heraclius_view_changes_total", c.Counters["view_changes"]))
	metric("heraclius_client_requests_total", "counter", "requests accepted on the client port", one("heraclius_client_requests_total", c.Counters["client_requests"]))
	metric("heraclius_client_bundles_total", "counter", "bundles accepted on the client port", one("heraclius_client_bundles_total", c.Counters["client_bundles"]))
	metric("heraclius_client_replies_total", "counter", "ClientReply answers sent", one("heraclius_client_replies_total", c.Counters["client_replies"]))
	var errLines []string
	for code, name := range wire.ClientErrorCodeNames {
		if code == 0 {
			continue
		}
		short := strings.ToLower(strings.TrimPrefix(name, "CLIENT_ERROR_"))
		errLines = append(errLines, fmt.Sprintf("heraclius_client_errors_total{%s,code=\"%s\"} %d\n", lbl, short, c.Counters["client_errors_"+name]))
	}
	sort.Strings(errLines)
	metric("heraclius_client_errors_total", "counter", "ClientReply errors sent, by code", errLines...)
	metric("heraclius_pending_requests", "gauge", "requests in the pool", one("heraclius_pending_requests", c.PendingRequests()))
	metric("heraclius_pending_remote", "gauge", "remote inputs in the pool", one("heraclius_pending_remote", c.PendingRemote()))
	var rl []string
	for _, r := range rejectReasons {
		rl = append(rl, fmt.Sprintf("heraclius_rejected_total{%s,reason=\"%s\"} %d\n", lbl, r, rej[r]))
	}
	metric("heraclius_rejected_total", "counter", "rejected inputs by reason", rl...)
	kinds := map[string]int{}
	for _, e := range c.Evidence {
		kinds[e.Kind]++
	}
	var el []string
	for _, k := range []string{"equivocation", "invalid_proposal", "bad_qc", "tampered_compact", "invalid_view_data"} {
		el = append(el, fmt.Sprintf("heraclius_byzantine_evidence_total{%s,kind=\"%s\"} %d\n", lbl, k, kinds[k]))
	}
	metric("heraclius_byzantine_evidence_total", "counter", "evidence records by kind", el...)
	var pl []string
	for _, id := range ids {
		v := 0
		if n.peers[id].up.Load() {
			v = 1
		}
		pl = append(pl, fmt.Sprintf("heraclius_peer_up{%s,peer=\"%s\"} %d\n", lbl, id, v))
	}
	metric("heraclius_peer_up", "gauge", "outbound link established", pl...)
	n.snap.Store(&snapshot{status: status, metrics: b.String()})
}

// adminSource adapts the node to admin.Source.
type adminSource struct{ n *Node }

func (a adminSource) Ready() bool         { return a.n.ready.Load() }
func (a adminSource) Count(reason string) { a.n.countReject(reason) }
func (a adminSource) Status() []byte {
	s := a.n.snap.Load()
	if s == nil {
		return nil
	}
	b, _ := json.Marshal(s.status)
	return b
}
func (a adminSource) Metrics() []byte {
	s := a.n.snap.Load()
	if s == nil {
		return nil
	}
	return []byte(s.metrics)
}
func (a adminSource) Log(h uint64) []byte {
	if h == 0 {
		return nil
	}
	d, err := a.n.st.Decision(h)
	if err != nil {
		a.n.storageFailed("read", err)
	}
	if d == nil {
		return nil
	}
	d.Qc = nil
	return wire.Encode(d)
}

func (n *Node) countReject(reason string) {
	n.rejMu.Lock()
	n.rejected[reason]++
	n.rejMu.Unlock()
}
