package core

import (
	"bytes"
	"fmt"
	"sort"
	"testing"

	"heraclius/impl_c/internal/testkit"
	"heraclius/impl_c/rsm"
	"heraclius/impl_c/sig"
	"heraclius/impl_c/wire"
)

// sim is an in-memory network of cores with a simulated clock.
type sim struct {
	t       *testing.T
	net     *testkit.Net
	cores   map[string]*Core
	down    map[string]bool
	now     int64
	queue   []simMsg
	replies map[ConnID][]*wire.ClientReply
	durable map[string][]Record
	conns   map[ConnID]string // reply connection -> node that sent the request
	next    ConnID
	drop    func(m simMsg) bool
}

type simMsg struct {
	from, to string
	conn     ConnID
	msg      *wire.PeerMessage
}

func newSim(t *testing.T) *sim { return newSimN(t, 4) }

func newSimN(t *testing.T, size int) *sim { return newSimBW(t, size, 0) }

func newSimBW(t *testing.T, size, batchWait int) *sim {
	n, err := testkit.NewN("sim-net", 30000, size, func(m map[string]any) {
		m["timeouts_ms"] = map[string]any{"batch_wait": batchWait}
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &sim{t: t, net: n, cores: map[string]*Core{}, down: map[string]bool{}, now: 1_000_000,
		replies: map[ConnID][]*wire.ClientReply{}, durable: map[string][]Record{}, conns: map[ConnID]string{}, next: 1000}
	cache := rsm.NewSigCache()
	for id, seed := range n.Ed {
		s.cores[id] = New(Config{M: n.M, Self: id, Signer: sig.NewSigner(seed), Cache: cache})
	}
	return s
}

func (s *sim) ids() []string {
	var ids []string
	for id := range s.cores {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

func (s *sim) handle(id string, r Ready) {
	s.durable[id] = append(s.durable[id], r.Persist...)
	for _, o := range r.Send {
		if o.Conn != 0 {
			s.queue = append(s.queue, simMsg{from: id, to: s.conns[o.Conn], conn: 0, msg: o.Msg})
			continue
		}
		s.next++
		s.conns[s.next] = id
		s.queue = append(s.queue, simMsg{from: id, to: o.To, conn: s.next, msg: o.Msg})
	}
	for _, c := range r.Client {
		s.replies[c.Conn] = append(s.replies[c.Conn], c.Reply)
	}
}

// run delivers messages and ticks the clock for ms milliseconds.
func (s *sim) run(ms int64) {
	end := s.now + ms
	for s.now < end {
		for rounds := 0; len(s.queue) > 0 && rounds < 100000; rounds++ {
			m := s.queue[0]
			s.queue = s.queue[1:]
			if s.down[m.to] || s.down[m.from] || (s.drop != nil && s.drop(m)) {
				continue
			}
			s.handle(m.to, s.cores[m.to].Step(s.now, PeerIn{From: m.from, Conn: m.conn, Msg: m.msg}))
		}
		s.now += 25
		for _, id := range s.ids() {
			if !s.down[id] {
				s.handle(id, s.cores[id].Step(s.now, Tick{}))
			}
		}
	}
}

func (s *sim) submit(node, client string, id uint64, kind wire.OpKind, key, value string) ConnID {
	signer := sig.NewSigner(s.net.Clients[client])
	r := &wire.ClientRequest{ClientKey: signer.Pub, RequestID: id, ClusterID: "c0", Op: &wire.Operation{Kind: kind, Key: []byte(key), Value: []byte(value)}}
	r.Signature = signer.Sign(sig.DomainClientRequest, s.net.M.NetworkID, wire.Encode(r))
	s.next++
	conn := s.next
	s.handle(node, s.cores[node].Step(s.now, ClientIn{Conn: conn, Msg: &wire.ClientMessage{Submit: r}}))
	return conn
}

func (s *sim) answer(t *testing.T, conn ConnID, id uint64) *wire.ClientResponse {
	t.Helper()
	for _, r := range s.replies[conn] {
		if r.Answer == nil {
			continue
		}
		if reason := rsm.VerifyAnswer(s.net.M, nil, r.Answer, "c0", r.Answer.Leaf.Destination); reason != "" {
			t.Fatalf("invalid answer: %s", reason)
		}
		for _, resp := range r.Answer.Leaf.Responses {
			if resp.RequestID == id {
				return resp
			}
		}
	}
	t.Fatalf("no answer for request %d on conn %d (replies %d)", id, conn, len(s.replies[conn]))
	return nil
}

func (s *sim) checkLogs(t *testing.T) {
	t.Helper()
	for _, cl := range []string{"c0", "s0"} {
		var low uint64 = 1 << 62
		for i := 0; i < s.net.M.Cluster(cl).N(); i++ {
			id := fmt.Sprintf("%s-n%d", cl, i)
			if s.down[id] {
				continue
			}
			if h := s.cores[id].Height(); h < low {
				low = h
			}
		}
		for h := uint64(1); h <= low; h++ {
			var ref []byte
			for i := 0; i < s.net.M.Cluster(cl).N(); i++ {
				id := fmt.Sprintf("%s-n%d", cl, i)
				if s.down[id] {
					continue
				}
				d := *s.cores[id].LogEntry(h)
				d.Qc = nil
				b := wire.Encode(&d)
				if ref == nil {
					ref = b
				} else if !bytes.Equal(ref, b) {
					t.Fatalf("%s height %d differs on %s", cl, h, id)
				}
			}
		}
	}
}

func TestSimNormalCase(t *testing.T) {
	s := newSim(t)
	c1 := s.submit("c0-n1", "client-a", 1, wire.OpKindPut, "k1", "v1")
	s.run(500)
	if got := s.answer(t, c1, 1); got.Found || got.ShardID != "s0" {
		t.Fatalf("put answer %+v", got)
	}
	c2 := s.submit("c0-n2", "client-b", 1, wire.OpKindGet, "k1", "")
	s.run(500)
	if got := s.answer(t, c2, 1); !got.Found || string(got.Value) != "v1" {
		t.Fatalf("get answer %+v", got)
	}
	if h := s.cores["c0-n3"].Height(); h != 4 {
		t.Fatalf("coordinator height %d, want 4", h)
	}
	s.checkLogs(t)
}

func TestSimLeaderCrashViewChange(t *testing.T) {
	s := newSim(t)
	c1 := s.submit("c0-n1", "client-a", 1, wire.OpKindPut, "k1", "v1")
	s.run(300)
	s.answer(t, c1, 1)
	s.down["c0-n0"] = true
	c2 := s.submit("c0-n2", "client-a", 2, wire.OpKindPut, "k1", "v2")
	s.run(12000)
	if v := s.cores["c0-n1"].View(); v < 1 {
		t.Fatalf("no view change: view %d", v)
	}
	s.answer(t, c2, 2)
	// The crashed leader comes back and catches up.
	s.down["c0-n0"] = false
	s.run(3000)
	c3 := s.submit("c0-n0", "client-b", 1, wire.OpKindGet, "k1", "")
	s.run(2000)
	if got := s.answer(t, c3, 1); string(got.Value) != "v2" {
		t.Fatalf("get after view change: %+v", got)
	}
	s.checkLogs(t)
}

func TestSimDuplicateRequestAnsweredOnce(t *testing.T) {
	s := newSim(t)
	c1 := s.submit("c0-n1", "client-a", 7, wire.OpKindPut, "k", "x")
	s.run(500)
	s.answer(t, c1, 7)
	h := s.cores["s0-n0"].Height()
	c2 := s.submit("c0-n3", "client-a", 7, wire.OpKindPut, "k", "x")
	s.run(500)
	s.answer(t, c2, 7)
	if s.cores["s0-n0"].Height() != h {
		t.Fatal("a retried request was executed twice")
	}
}

func TestSimClientErrors(t *testing.T) {
	s := newSim(t)
	cases := []struct {
		name string
		req  func(*wire.ClientRequest)
		code wire.ClientErrorCode
	}{
		{"wrong cluster", func(r *wire.ClientRequest) { r.ClusterID = "s0" }, wire.ClientErrorWrongCluster},
		{"unauthorised", func(r *wire.ClientRequest) { r.ClientKey = bytes.Repeat([]byte{1}, 32) }, wire.ClientErrorUnauthorised},
		{"empty key", func(r *wire.ClientRequest) { r.Op.Key = nil }, wire.ClientErrorMalformed},
		{"key too long", func(r *wire.ClientRequest) { r.Op.Key = make([]byte, 2000) }, wire.ClientErrorTooLarge},
		{"bad signature", func(r *wire.ClientRequest) { r.Signature[0] ^= 1 }, wire.ClientErrorBadSignature},
	}
	signer := sig.NewSigner(s.net.Clients["client-a"])
	for i, tc := range cases {
		r := &wire.ClientRequest{ClientKey: signer.Pub, RequestID: uint64(i + 1), ClusterID: "c0", Op: &wire.Operation{Kind: wire.OpKindGet, Key: []byte("k")}}
		r.Signature = signer.Sign(sig.DomainClientRequest, s.net.M.NetworkID, wire.Encode(r))
		tc.req(r)
		rd := s.cores["c0-n1"].Step(s.now, ClientIn{Conn: 1, Msg: &wire.ClientMessage{Submit: r}})
		if len(rd.Client) != 1 || rd.Client[0].Reply.Error == nil || rd.Client[0].Reply.Error.Code != tc.code {
			t.Errorf("%s: got %+v", tc.name, rd.Client)
		}
	}
}

func TestSimFutureMessagesReplayedAcrossHeights(t *testing.T) {
	s := newSim(t)
	// s0-n3 and c0-n3 miss messages, then get them all at once out of order.
	var held []simMsg
	s.down["c0-n3"] = true
	for i := uint64(1); i <= 4; i++ {
		s.submit("c0-n1", "client-a", i, wire.OpKindPut, fmt.Sprint("k", i), "v")
		s.run(300)
	}
	s.down["c0-n3"] = false
	_ = held
	s.run(3000)
	s.checkLogs(t)
	if s.cores["c0-n3"].Height() != s.cores["c0-n1"].Height() {
		t.Fatalf("c0-n3 at %d, c0-n1 at %d", s.cores["c0-n3"].Height(), s.cores["c0-n1"].Height())
	}
}

func TestSimLoneSuspicionEnds(t *testing.T) {
	s := newSim(t)
	c1 := s.submit("c0-n1", "client-a", 1, wire.OpKindPut, "k", "v")
	s.run(300)
	s.answer(t, c1, 1)
	// c0-n3 alone suspects the leader.
	s.handle("c0-n3", func() Ready {
		c := s.cores["c0-n3"]
		c.r = Ready{}
		c.suspect("test")
		r := c.r
		c.r = Ready{}
		return r
	}())
	if !s.cores["c0-n3"].InViewChange() {
		t.Fatal("not in view change")
	}
	s.submit("c0-n1", "client-a", 2, wire.OpKindPut, "k", "w")
	s.run(1000)
	c := s.cores["c0-n3"]
	if c.InViewChange() || c.View() != 0 {
		t.Fatalf("lone suspicion did not end: view %d, in view change %v", c.View(), c.InViewChange())
	}
	s.checkLogs(t)
}

// restart rebuilds a core from its durable records, as the store would.
func (s *sim) restart(id string) {
	r := &Restored{}
	for _, rec := range s.durable[id] {
		switch rec.Kind {
		case RecDecision:
			d, _ := wire.DecodeDecision(rec.Data)
			r.Decisions = append(r.Decisions, d)
		case RecView:
			r.View = rec.View
		case RecVote:
			r.Vote, _ = wire.DecodeProposal(rec.Data)
		case RecPrepared:
			r.Prepared, _ = wire.DecodePreparedCert(rec.Data)
			r.PrepSig = rec.Sig
		case RecNewView:
			r.NewView, _ = wire.DecodeNewView(rec.Data)
		}
	}
	c := New(Config{M: s.net.M, Self: id, Signer: sig.NewSigner(s.net.Ed[id]), Cache: rsm.NewSigCache()})
	if err := c.Restore(s.now, r); err != nil {
		s.t.Fatalf("restore %s: %v", id, err)
	}
	s.cores[id] = c
	s.handle(id, c.AfterRestore(s.now))
	for _, other := range s.ids() {
		if other != id {
			s.handle(id, c.Step(s.now, LinkUp{Peer: other}))
		}
	}
}

func TestSimAllRestartDuringViewChange(t *testing.T) {
	s := newSim(t)
	c1 := s.submit("c0-n1", "client-a", 1, wire.OpKindPut, "k", "v")
	s.run(300)
	s.answer(t, c1, 1)
	// The leader dies; NewView messages are lost, so the others are stuck
	// between views when they all stop.
	s.down["c0-n0"] = true
	s.drop = func(m simMsg) bool { return m.msg.NewView != nil }
	s.run(4000)
	if !s.cores["c0-n2"].InViewChange() {
		t.Fatal("expected a view change in progress")
	}
	s.drop = nil
	s.down["c0-n0"] = false
	for _, id := range []string{"c0-n0", "c0-n1", "c0-n2", "c0-n3"} {
		s.restart(id)
	}
	s.run(20000)
	c2 := s.submit("c0-n2", "client-a", 2, wire.OpKindGet, "k", "")
	s.run(3000)
	if got := s.answer(t, c2, 2); string(got.Value) != "v" {
		t.Fatalf("get: %+v", got)
	}
	s.checkLogs(t)
}

func TestSimPreparedProposalSurvivesViewChange(t *testing.T) {
	s := newSim(t)
	c1 := s.submit("c0-n1", "client-a", 1, wire.OpKindPut, "k", "v1")
	s.run(300)
	s.answer(t, c1, 1)
	h := s.cores["c0-n1"].Height()
	// Commits are lost: members prepare height h+1 but nobody decides it.
	s.drop = func(m simMsg) bool { return m.msg.Commit != nil }
	s.submit("c0-n2", "client-a", 2, wire.OpKindPut, "k", "v2")
	s.run(200)
	for _, id := range []string{"c0-n1", "c0-n2", "c0-n3"} {
		if s.cores[id].prepared == nil || s.cores[id].Height() != h {
			t.Fatalf("%s not prepared at %d", id, h+1)
		}
	}
	want := wire.Encode(s.cores["c0-n1"].prepared.Proposal.Header)
	// The leader dies; the new leader must re-propose exactly that header.
	s.down["c0-n0"] = true
	s.drop = nil
	s.run(8000)
	d := s.cores["c0-n2"].LogEntry(h + 1)
	if d == nil {
		t.Fatal("height not decided after the view change")
	}
	if !bytes.Equal(wire.Encode(d.Header), want) {
		t.Fatal("the prepared proposal was not the one decided")
	}
	if s.cores["c0-n2"].View() == 0 {
		t.Fatal("no view change")
	}
	s.checkLogs(t)
}

func TestSimSevenNodesTwoFaults(t *testing.T) {
	s := newSimN(t, 7)
	c1 := s.submit("c0-n3", "client-a", 1, wire.OpKindPut, "k", "v1")
	s.run(500)
	s.answer(t, c1, 1)
	// f = 2: the leader and one more member of each cluster stop.
	for _, id := range []string{"c0-n0", "c0-n4", "s0-n0", "s0-n5"} {
		s.down[id] = true
	}
	c2 := s.submit("c0-n2", "client-b", 1, wire.OpKindPut, "k", "v2")
	s.run(15000)
	if got := s.answer(t, c2, 1); !got.Found {
		t.Fatalf("put after two faults: %+v", got)
	}
	if s.cores["c0-n1"].View() == 0 || s.cores["s0-n1"].View() == 0 {
		t.Fatal("no view change")
	}
	s.checkLogs(t)
}

func TestSimBatchWait(t *testing.T) {
	s := newSimBW(t, 4, 20)
	var conns []ConnID
	for i := uint64(1); i <= 5; i++ {
		conns = append(conns, s.submit("c0-n0", "client-a", i, wire.OpKindPut, fmt.Sprint("k", i), "v"))
	}
	s.run(1000)
	for i, c := range conns {
		s.answer(t, c, uint64(i+1))
	}
	// All five arrived within batch_wait: one coordinator decision took them all.
	if d := s.cores["c0-n1"].LogEntry(1); d == nil || len(d.Batch.Inputs) != 5 {
		t.Fatalf("first batch: %+v", d)
	}
	s.checkLogs(t)
}
