package core

import (
	"bytes"
	"sort"

	"heraclius/impl_c/rsm"
	"heraclius/impl_c/sig"
	"heraclius/impl_c/wire"
)

func pm(x any) *wire.PeerMessage {
	m := &wire.PeerMessage{}
	switch v := x.(type) {
	case *wire.Proposal:
		m.Proposal = v
	case *wire.Prepare:
		m.Prepare = v
	case *wire.Commit:
		m.Commit = v
	case *wire.Heartbeat:
		m.Heartbeat = v
	case *wire.ViewChange:
		m.ViewChange = v
	case *wire.ViewData:
		m.ViewData = v
	case *wire.NewView:
		m.NewView = v
	case *wire.Forward:
		m.Forward = v
	case *wire.SyncRequest:
		m.SyncRequest = v
	case *wire.SyncResponse:
		m.SyncResponse = v
	case *wire.QueuePull:
		m.QueuePull = v
	case *wire.QueueBatch:
		m.QueueBatch = v
	}
	return m
}

func (c *Core) member(id string) bool { return c.cl.Member(id) != nil }

func (c *Core) onPeer(e PeerIn) {
	m := e.Msg
	own := c.member(e.From)
	switch {
	case m.QueuePull != nil:
		c.onQueuePull(e.From, e.Conn, m.QueuePull)
		return
	case m.QueueBatch != nil:
		c.onQueueBatch(e.From, m.QueueBatch)
		return
	}
	if !own {
		c.reject("wrong_cluster", e.From, "consensus message from a node of another cluster")
		return
	}
	if e.From == c.leaderOf(c.view) {
		if m.Proposal != nil || m.Heartbeat != nil {
			// refreshed in handlers after view checks
		}
	}
	switch {
	case m.Proposal != nil:
		c.onProposal(e.From, m.Proposal, m)
	case m.Prepare != nil:
		c.onPrepare(e.From, m.Prepare, m)
	case m.Commit != nil:
		c.onCommit(e.From, m.Commit, m)
	case m.Heartbeat != nil:
		c.onHeartbeat(e.From, m.Heartbeat)
	case m.ViewChange != nil:
		c.onViewChange(e.From, m.ViewChange)
	case m.ViewData != nil:
		c.onViewData(e.From, m.ViewData)
	case m.NewView != nil:
		c.onNewView(e.From, m.NewView)
	case m.Forward != nil:
		c.onForward(e.From, m.Forward)
	case m.SyncRequest != nil:
		c.onSyncRequest(e.From, e.Conn, m.SyncRequest)
	case m.SyncResponse != nil:
		c.onSyncResponse(e.From, m.SyncResponse)
	}
}

// keepFuture buffers a message for a height above height+1 (bounded).
func (c *Core) keepFuture(h uint64, kind int, from string, m *wire.PeerMessage) {
	if h > c.st.Height+5 {
		return
	}
	c.future[futureKey{h, kind, from}] = m
}

func (c *Core) replayFuture() {
	next := c.st.Height + 1
	var ready []futureKey
	for k := range c.future {
		if k.height <= c.st.Height {
			delete(c.future, k)
		} else if k.height == next {
			ready = append(ready, k)
		}
	}
	sort.Slice(ready, func(i, j int) bool { return ready[i].kind < ready[j].kind })
	for _, k := range ready {
		m, ok := c.future[k]
		if !ok || k.height != c.st.Height+1 {
			continue // consumed by a nested replay, or the height moved on
		}
		delete(c.future, k)
		c.onPeer(PeerIn{From: k.from, Msg: m})
	}
}

func (c *Core) claim(from string, h uint64) {
	if h > c.claims[from] {
		c.claims[from] = h
	}
	if h > c.st.Height {
		c.startSync(h)
	}
}

func unsignedProposal(p *wire.Proposal) []byte {
	u := *p
	u.Signature = nil
	return wire.Encode(&u)
}

func (c *Core) onProposal(from string, p *wire.Proposal, raw *wire.PeerMessage) {
	if p.ClusterID != c.cl.ID {
		c.reject("wrong_cluster", from, "proposal for another cluster")
		return
	}
	if p.LeaderID != c.leaderOf(p.View) || from != p.LeaderID {
		c.reject("not_leader", from, "proposal not from the leader of its view")
		return
	}
	if !c.cache.Verify(c.cl.Member(from).Ed25519, sig.DomainProposal, c.m.NetworkID, unsignedProposal(p), p.Signature) {
		c.reject("bad_signature", from, "proposal signature")
		return
	}
	if p.View > c.view {
		c.lateMember(p.View, from)
		return
	}
	lone := c.inVC && c.installed && p.View == c.view // asked to leave, not moved (12.6 step 7)
	if p.View < c.view || (c.inVC && !lone) || !c.installed {
		c.reject("stale", from, "proposal of another view")
		return
	}
	c.lastFromLeader = c.now
	if p.Height <= c.st.Height {
		c.reject("stale", from, "proposal for a decided height")
		return
	}
	if p.Height > c.st.Height+1 {
		c.keepFuture(p.Height, 1, from, raw)
		c.claim(from, p.Height-1)
		return
	}
	if prev := c.proposals[p.View]; prev != nil {
		if !bytes.Equal(wire.Encode(prev), wire.Encode(p)) {
			c.evidence(from, "equivocation", "two proposals for one (view, height)", wire.Encode(prev), wire.Encode(p))
		}
		return
	}
	c.proposals[p.View] = p
	if p.Header == nil || p.Batch == nil {
		c.invalidProposal(from, p, "proposal without header or batch")
		return
	}
	if c.selected != nil && c.selected.Height == p.Height {
		if !bytes.Equal(wire.Encode(c.selected.Header), wire.Encode(p.Header)) || !bytes.Equal(wire.Encode(c.selected.Batch), wire.Encode(p.Batch)) {
			c.invalidProposal(from, p, "first proposal of the view differs from the selected one")
			return
		}
	}
	res, err := c.st.Execute(p.Batch)
	if err != nil {
		c.invalidProposal(from, p, err.Error())
		return
	}
	if !bytes.Equal(wire.Encode(res.Decision.Header), wire.Encode(p.Header)) {
		c.invalidProposal(from, p, "header differs from re-execution")
		return
	}
	if lone {
		// Keep it (no vote) so that a decision by the quorum in this view can
		// be applied and end the lone suspicion.
		if c.accepted == nil {
			c.accepted, c.acceptedDig, c.acceptedRes = p, rsm.Hash(p.Header), res
			c.tryDecide()
		}
		return
	}
	c.acceptProposal(p, res)
}

func (c *Core) invalidProposal(from string, p *wire.Proposal, why string) {
	c.reject("invalid_proposal", from, why)
	c.evidence(from, "invalid_proposal", why, wire.Encode(p))
	c.suspect("invalid proposal")
}

func (c *Core) acceptProposal(p *wire.Proposal, res *rsm.Result) {
	d := rsm.Hash(p.Header)
	if v, ok := c.voted[p.View]; ok && !bytes.Equal(v, d) {
		return // never vote twice in one (view, height)
	}
	c.accepted, c.acceptedDig, c.acceptedRes = p, d, res
	c.voted[p.View] = d
	c.r.Persist = append(c.r.Persist, Record{Kind: RecVote, View: p.View, Height: p.Height, Data: wire.Encode(p)})
	pr := &wire.Prepare{ClusterID: c.cl.ID, View: p.View, Height: p.Height, Digest: d, NodeID: c.self.ID}
	pr.Signature = c.sign(sig.DomainPrepare, wire.Encode(pr), "prepare")
	c.broadcast(pm(pr))
	c.addPrepare(c.self.ID, pr)
	c.tryDecide()
}

func unsignedPrepare(p *wire.Prepare) []byte {
	u := *p
	u.Signature = nil
	return wire.Encode(&u)
}

func (c *Core) validPrepare(p *wire.Prepare) bool {
	n := c.cl.Member(p.NodeID)
	return n != nil && p.ClusterID == c.cl.ID && len(p.Digest) == 32 &&
		c.cache.Verify(n.Ed25519, sig.DomainPrepare, c.m.NetworkID, unsignedPrepare(p), p.Signature)
}

func (c *Core) onPrepare(from string, p *wire.Prepare, raw *wire.PeerMessage) {
	if p.NodeID != from || p.ClusterID != c.cl.ID {
		c.reject("malformed", from, "prepare from another node or cluster")
		return
	}
	if !c.validPrepare(p) {
		c.reject("bad_signature", from, "prepare signature")
		return
	}
	if p.Height <= c.st.Height {
		c.Rejected["stale"]++
		return
	}
	if p.View > c.view {
		c.lateVotes(p.View, from)
	}
	if p.Height > c.st.Height+1 {
		c.keepFuture(p.Height, 2, from, raw)
		return
	}
	c.addPrepare(from, p)
}

func (c *Core) addPrepare(from string, p *wire.Prepare) {
	for k, set := range c.prepares {
		if old := set[from]; old != nil && old.View == p.View && !bytes.Equal(old.Digest, p.Digest) {
			c.evidence(from, "equivocation", "two prepares for one (view, height)", wire.Encode(old), wire.Encode(p))
			return
		}
		_ = k
	}
	k := digestKey(p.View, p.Digest)
	set := c.prepares[k]
	if set == nil {
		set = map[string]*wire.Prepare{}
		c.prepares[k] = set
	}
	set[from] = p
	c.checkPrepared()
}

func (c *Core) checkPrepared() {
	p := c.accepted
	if p == nil || c.commitSent[p.View] || p.View != c.view || c.inVC {
		return
	}
	set := c.prepares[digestKey(p.View, c.acceptedDig)]
	if len(set) < c.cl.Q() {
		return
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	cert := &wire.PreparedCert{Proposal: p}
	for _, id := range ids[:c.cl.Q()] {
		cert.Prepares = append(cert.Prepares, set[id])
	}
	ds := c.sign(sig.DomainDecision, wire.Encode(p.Header), "commit")
	c.prepared, c.prepSig = cert, ds
	c.commitSent[p.View] = true
	c.r.Persist = append(c.r.Persist, Record{Kind: RecPrepared, View: p.View, Height: p.Height, Data: wire.Encode(cert), Sig: ds})
	cm := &wire.Commit{ClusterID: c.cl.ID, View: p.View, Height: p.Height, Digest: c.acceptedDig, NodeID: c.self.ID, DecisionSignature: ds}
	c.broadcast(pm(cm))
	c.addCommit(c.self.ID, cm)
}

func (c *Core) onCommit(from string, cm *wire.Commit, raw *wire.PeerMessage) {
	if cm.NodeID != from || cm.ClusterID != c.cl.ID || len(cm.Digest) != 32 {
		c.reject("malformed", from, "commit from another node or cluster")
		return
	}
	if cm.Height <= c.st.Height {
		c.Rejected["stale"]++
		return
	}
	if cm.View > c.view {
		c.lateVotes(cm.View, from)
	}
	if cm.Height > c.st.Height+1 {
		c.keepFuture(cm.Height, 3, from, raw)
		c.claim(from, cm.Height-1)
		return
	}
	c.addCommit(from, cm)
}

func (c *Core) addCommit(from string, cm *wire.Commit) {
	k := string(cm.Digest)
	for dk, set := range c.commits {
		if old := set[from]; old != nil && dk != k && old.View == cm.View {
			c.evidence(from, "equivocation", "two commits for one (view, height)", wire.Encode(old), wire.Encode(cm))
			return
		}
	}
	set := c.commits[k]
	if set == nil {
		set = map[string]*wire.Commit{}
		c.commits[k] = set
	}
	if _, ok := set[from]; !ok {
		set[from] = cm
	}
	c.tryDecide()
}

// headerFor returns a proposal this node holds for digest d at height+1.
func (c *Core) proposalFor(d []byte) *wire.Proposal {
	if c.accepted != nil && bytes.Equal(c.acceptedDig, d) {
		return c.accepted
	}
	if c.prepared != nil && c.prepared.Proposal.Height == c.st.Height+1 && bytes.Equal(rsm.Hash(c.prepared.Proposal.Header), d) {
		return c.prepared.Proposal
	}
	return nil
}

func (c *Core) tryDecide() {
	for dk, set := range c.commits {
		if len(set) < c.cl.Q() {
			continue
		}
		p := c.proposalFor([]byte(dk))
		if p == nil {
			if _, ok := c.commitsLate[dk]; !ok {
				c.commitsLate[dk] = c.now
				c.startSync(c.st.Height + 1)
			}
			continue
		}
		body := wire.Encode(p.Header)
		ids := make([]string, 0, len(set))
		for id, cm := range set {
			n := c.cl.Member(id)
			if !c.cache.Verify(n.Ed25519, sig.DomainDecision, c.m.NetworkID, body, cm.DecisionSignature) {
				delete(set, id)
				c.reject("bad_signature", id, "commit decision signature")
				continue
			}
			ids = append(ids, id)
		}
		if len(ids) < c.cl.Q() {
			continue
		}
		sort.Strings(ids)
		qc := &wire.QuorumCert{}
		views := map[uint64]int{}
		for _, id := range ids {
			views[set[id].View]++
		}
		for _, id := range ids[:c.cl.Q()] {
			qc.Signatures = append(qc.Signatures, &wire.NodeSignature{NodeID: id, Signature: set[id].DecisionSignature})
		}
		res := c.acceptedRes
		if p != c.accepted || res == nil {
			var err error
			res, err = c.st.Execute(p.Batch)
			if err != nil || !bytes.Equal(wire.Encode(res.Decision.Header), body) {
				continue
			}
		}
		lone := views[c.view] >= c.cl.Q()
		c.decide(res, qc)
		if lone && c.inVC && c.asked > c.view && c.installed {
			c.endLoneSuspicion()
		}
		return
	}
}

// decide makes res the next decision with qc and applies it.
func (c *Core) decide(res *rsm.Result, qc *wire.QuorumCert) {
	d := &wire.Decision{Header: res.Decision.Header, Batch: res.Decision.Batch, Outputs: res.Decision.Outputs, Qc: qc}
	c.r.Persist = append(c.r.Persist, Record{Kind: RecDecision, Height: d.Header.Height, Data: wire.Encode(d)})
	c.apply(d, res)
	c.log("info", "decided", "decision applied", "height", d.Header.Height, "inputs", len(d.Batch.Inputs), "view", c.view)
}

// apply applies a decision (live, caught up or replayed).
func (c *Core) apply(d *wire.Decision, res *rsm.Result) {
	c.st.Apply(res)
	c.vdSyncSince = 0
	h := d.Header.Height
	c.decisions[h] = d
	if h > keepInMemory && c.cfg.ReadDecision != nil {
		delete(c.decisions, h-keepInMemory)
	}
	if h > keepInMemory && c.cfg.ReadAnswer != nil {
		for _, k := range c.answeredAt[h-keepInMemory] {
			if c.answered[k] == h-keepInMemory {
				delete(c.answered, k)
			}
		}
		delete(c.answeredAt, h-keepInMemory)
	}
	c.lastDecision = c.now
	c.Counters["decisions"]++
	c.Counters["batch_inputs"] += uint64(len(d.Batch.Inputs))
	for _, l := range d.Outputs {
		c.queue[l.Destination] = append(c.queue[l.Destination], h)
		if len(l.Responses) > 0 {
			key := clientKeyOf(l.Destination)
			for _, r := range l.Responses {
				k := rsm.ReqKey{Client: key, ID: r.RequestID}
				c.answered[k] = h
				c.answeredAt[h] = append(c.answeredAt[h], k)
			}
		}
	}
	c.accepted, c.acceptedDig, c.acceptedRes = nil, nil, nil
	c.voted = map[uint64][]byte{}
	c.proposals = map[uint64]*wire.Proposal{}
	c.prepares = map[string]map[string]*wire.Prepare{}
	c.commits = map[string]map[string]*wire.Commit{}
	c.commitsLate = map[string]int64{}
	c.commitSent = map[uint64]bool{}
	if c.prepared != nil && c.prepared.Proposal.Height <= h {
		c.prepared, c.prepSig = nil, nil
	}
	if c.selected != nil && c.selected.Height <= h {
		c.selected = nil
	}
	c.proposing = false
	c.prunePools()
	c.answerClients(d)
	c.serveHeld()
	c.replayFuture()
	c.maybePropose()
}

func clientKeyOf(dest string) string {
	b := make([]byte, 0, 32)
	s := dest[len("client:"):]
	for i := 0; i+1 < len(s); i += 2 {
		b = append(b, unhex(s[i])<<4|unhex(s[i+1]))
	}
	return string(b)
}

func unhex(x byte) byte {
	switch {
	case x >= '0' && x <= '9':
		return x - '0'
	case x >= 'a' && x <= 'f':
		return x - 'a' + 10
	}
	return 0
}

func (c *Core) onHeartbeat(from string, h *wire.Heartbeat) {
	if h.ClusterID != c.cl.ID || h.LeaderID != from || c.leaderOf(h.View) != from {
		c.reject("not_leader", from, "heartbeat not from the leader of its view")
		return
	}
	if h.View > c.view {
		c.lateMember(h.View, from)
		return
	}
	if h.View == c.view {
		c.lastFromLeader = c.now
	}
	c.claim(from, h.Height)
}

// maybePropose proposes the next batch when this node leads and is idle.
func (c *Core) maybePropose() {
	if !c.isLeader() || c.inVC || !c.installed || c.proposing || c.syncTarget > c.st.Height {
		return
	}
	next := c.st.Height + 1
	if c.proposals[c.view] != nil {
		return
	}
	if c.selected != nil && c.selected.Height == next {
		res, err := c.st.Execute(c.selected.Batch)
		if err == nil && bytes.Equal(wire.Encode(res.Decision.Header), wire.Encode(c.selected.Header)) {
			c.sendProposal(res)
			return
		}
	}
	batch := c.buildBatch()
	if batch == nil {
		c.batchSince = 0
		return
	}
	// 12.2: wait up to batch_wait for more inputs while the batch is not full.
	if bw := c.m.Timeouts.BatchWait; bw > 0 && len(batch.Inputs) < c.m.Limits.MaxBatchInputs {
		if c.batchSince == 0 {
			c.batchSince = c.now
		}
		if c.now < c.batchSince+bw {
			if at := c.batchSince + bw; c.r.WakeAt == 0 || at < c.r.WakeAt {
				c.r.WakeAt = at
			}
			return
		}
	}
	c.batchSince = 0
	res, err := c.st.Execute(batch)
	if err != nil {
		c.log("error", "internal", "own batch invalid: "+err.Error())
		return
	}
	c.sendProposal(res)
}

func (c *Core) sendProposal(res *rsm.Result) {
	p := &wire.Proposal{ClusterID: c.cl.ID, View: c.view, Height: c.st.Height + 1, LeaderID: c.self.ID,
		Header: res.Decision.Header, Batch: res.Decision.Batch}
	p.Signature = c.sign(sig.DomainProposal, unsignedProposal(p), "proposal")
	c.proposing = true
	c.proposals[c.view] = p
	// Durable as our accepted proposal and vote before it is sent (12.8):
	// acceptProposal appends RecVote ahead of the sends in this Ready.
	c.broadcastProposal(p)
	c.acceptProposal(p, res)
}

func (c *Core) broadcastProposal(p *wire.Proposal) {
	for _, n := range c.cl.Nodes {
		c.send(n.ID, pm(p))
		c.lastSent[n.ID] = c.now
	}
	if c.cfg.Faults.EquivocateOn && len(p.Batch.Inputs) > 1 {
		alt := &wire.Batch{Inputs: p.Batch.Inputs[:len(p.Batch.Inputs)-1]}
		if res, err := c.st.Execute(alt); err == nil {
			q := &wire.Proposal{ClusterID: p.ClusterID, View: p.View, Height: p.Height, LeaderID: p.LeaderID, Header: res.Decision.Header, Batch: alt}
			q.Signature = c.signer.Sign(sig.DomainProposal, c.m.NetworkID, unsignedProposal(q))
			for _, t := range c.cfg.Faults.Equivocate {
				c.send(t, pm(q))
			}
		}
	}
}

func (c *Core) heartbeats() {
	if !c.isLeader() || c.inVC || !c.installed {
		return
	}
	hb := pm(&wire.Heartbeat{ClusterID: c.cl.ID, View: c.view, Height: c.st.Height, LeaderID: c.self.ID})
	for _, n := range c.cl.Nodes {
		if n.ID != c.self.ID && c.now-c.lastSent[n.ID] >= c.m.Timeouts.HeartbeatInterval {
			c.send(n.ID, hb)
			c.lastSent[n.ID] = c.now
		}
	}
}
