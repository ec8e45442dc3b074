package core

import (
	"bytes"
	"sort"

	"heraclius/impl_c/rsm"
	"heraclius/impl_c/sig"
	"heraclius/impl_c/wire"
)

func unsignedVC(v *wire.ViewChange) []byte { u := *v; u.Signature = nil; return wire.Encode(&u) }
func unsignedVD(v *wire.ViewData) []byte   { u := *v; u.Signature = nil; return wire.Encode(&u) }
func unsignedNV(v *wire.NewView) []byte    { u := *v; u.Signature = nil; return wire.Encode(&u) }

// suspect starts a view change away from the current view (12.6 step 1).
func (c *Core) suspect(why string) {
	if c.asked > c.view {
		return
	}
	c.log("warning", "view_change", "suspecting the leader: "+why, "view", c.view)
	c.ask(c.view + 1)
}

func (c *Core) viewChangeMsg(w uint64) *wire.ViewChange {
	vc := &wire.ViewChange{ClusterID: c.cl.ID, NewView: w, NodeID: c.self.ID, Height: c.st.Height}
	vc.Signature = c.sign(sig.DomainViewChange, unsignedVC(vc), "view_change")
	return vc
}

func (c *Core) ask(w uint64) {
	if w > c.asked {
		c.asked = w
	}
	c.inVC = true
	vc := c.viewChangeMsg(w)
	c.vcs[c.self.ID] = vc
	c.broadcast(pm(vc))
	if c.vcTimer == 0 || c.now > c.vcTimer {
		c.vcTimer = c.now + c.vcPeriod()
	}
	c.evaluate()
}

func (c *Core) vcPeriod() int64 {
	f := c.vcFails
	if f > 3 {
		f = 3
	}
	return c.m.Timeouts.ViewChange << uint(f)
}

func (c *Core) onViewChange(from string, vc *wire.ViewChange) {
	if vc.ClusterID != c.cl.ID || vc.NodeID != from {
		c.reject("malformed", from, "view change from another node or cluster")
		return
	}
	if !c.cache.Verify(c.cl.Member(from).Ed25519, sig.DomainViewChange, c.m.NetworkID, unsignedVC(vc), vc.Signature) {
		c.reject("bad_signature", from, "view change signature")
		return
	}
	c.claim(from, vc.Height)
	if vc.NewView <= c.view && c.installed && !c.inVC && c.view > 0 {
		c.answerNewView(from)
	}
	if vc.NewView == c.view && !c.installed && from == c.leaderOf(c.view) && c.now-c.vdResent >= 500 {
		c.vdResent = c.now
		c.sendViewData()
	}
	if old := c.vcs[from]; old == nil || vc.NewView > old.NewView {
		c.vcs[from] = vc
	}
	c.evaluate()
}

func (c *Core) answerNewView(to string) {
	if c.newView == nil || c.now-c.nvSent[to] < 500 {
		return
	}
	c.nvSent[to] = c.now
	c.send(to, pm(c.newView))
}

// wk returns the k-th highest kept new_view (0 if fewer than k).
func (c *Core) wk(k int) uint64 {
	vs := make([]uint64, 0, len(c.vcs))
	for _, v := range c.vcs {
		vs = append(vs, v.NewView)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i] > vs[j] })
	if len(vs) < k {
		return 0
	}
	return vs[k-1]
}

func (c *Core) evaluate() {
	f := c.cl.F()
	if w := c.wk(f + 1); w > c.view && c.asked < w {
		c.ask(w)
		return
	}
	if w := c.wk(2*f + 1); w > c.view {
		c.move(w)
	}
}

// move enters view w and waits for its NewView (12.6 step 2).
func (c *Core) move(w uint64) {
	c.view = w
	c.installed = false
	c.inVC = true
	c.newView = nil
	c.selected = nil
	c.accepted, c.acceptedDig, c.acceptedRes = nil, nil, nil
	c.proposing = false
	c.Counters["view_changes"]++
	c.r.Persist = append(c.r.Persist, Record{Kind: RecView, View: w})
	c.vcTimer = c.now + c.vcPeriod()
	c.log("info", "view_change", "moved to a new view", "view", w, "leader", c.leaderOf(w))
	c.restartPoolTimers()
	c.sendViewData()
}

func (c *Core) viewDataMsg() *wire.ViewData {
	vd := &wire.ViewData{ClusterID: c.cl.ID, View: c.view, NodeID: c.self.ID, LastHeight: c.st.Height, LastHash: c.st.HeadHash}
	if c.prepared != nil && c.prepared.Proposal.Height == c.st.Height+1 {
		vd.Prepared = c.prepared
	}
	vd.Signature = c.sign(sig.DomainViewData, unsignedVD(vd), "view_data")
	return vd
}

func (c *Core) sendViewData() {
	vd := c.viewDataMsg()
	l := c.leaderOf(c.view)
	if l == c.self.ID {
		c.addViewData(c.self.ID, vd)
		return
	}
	c.send(l, pm(vd))
}

func (c *Core) validViewData(vd *wire.ViewData) bool {
	n := c.cl.Member(vd.NodeID)
	if n == nil || vd.ClusterID != c.cl.ID || len(vd.LastHash) != 32 {
		return false
	}
	if !c.cache.Verify(n.Ed25519, sig.DomainViewData, c.m.NetworkID, unsignedVD(vd), vd.Signature) {
		return false
	}
	if p := vd.Prepared; p != nil {
		pr := p.Proposal
		if pr == nil || pr.Header == nil || pr.View >= vd.View || pr.ClusterID != c.cl.ID || pr.LeaderID != c.leaderOf(pr.View) {
			return false
		}
		if !c.cache.Verify(c.cl.Member(pr.LeaderID).Ed25519, sig.DomainProposal, c.m.NetworkID, unsignedProposal(pr), pr.Signature) {
			return false
		}
		d := rsm.Hash(pr.Header)
		seen := map[string]bool{}
		for _, q := range p.Prepares {
			if seen[q.NodeID] || q.View != pr.View || q.Height != pr.Height || !bytes.Equal(q.Digest, d) || !c.validPrepare(q) {
				return false
			}
			seen[q.NodeID] = true
		}
		if len(seen) < c.cl.Q() {
			return false
		}
	}
	return true
}

func (c *Core) onViewData(from string, vd *wire.ViewData) {
	if vd.NodeID != from {
		c.reject("malformed", from, "view data from another node")
		return
	}
	if !c.validViewData(vd) {
		c.reject("bad_signature", from, "invalid view data")
		c.evidence(from, "invalid_view_data", "view data fails validation", wire.Encode(vd))
		return
	}
	c.claim(from, vd.LastHeight)
	if vd.View < c.view || (vd.View == c.view && c.installed) {
		if c.installed && c.view > 0 {
			c.answerNewView(from)
		}
		return
	}
	if c.leaderOf(vd.View) != c.self.ID {
		c.reject("not_leader", from, "view data for a view this node does not lead")
		return
	}
	c.addViewData(from, vd)
}

func (c *Core) addViewData(from string, vd *wire.ViewData) {
	if old := c.viewData[from]; old != nil && old.View > vd.View {
		return
	}
	c.viewData[from] = vd
	c.tryNewView()
}

func (c *Core) tryNewView() {
	if c.installed || c.leaderOf(c.view) != c.self.ID {
		return
	}
	var vds []*wire.ViewData
	for _, vd := range c.viewData {
		if vd.View == c.view {
			vds = append(vds, vd)
		}
	}
	if len(vds) < c.cl.Q() {
		return
	}
	// Prefer claims this node can back (its own height or a height it can fetch).
	sort.Slice(vds, func(i, j int) bool {
		if vds[i].LastHeight != vds[j].LastHeight {
			return vds[i].LastHeight > vds[j].LastHeight
		}
		return vds[i].NodeID < vds[j].NodeID
	})
	chosen := vds[:c.cl.Q()]
	var m uint64
	for _, vd := range chosen {
		if vd.LastHeight > m {
			m = vd.LastHeight
		}
	}
	if m > c.st.Height {
		if c.vdSyncSince == 0 {
			c.vdSyncSince = c.now
		}
		if c.now-c.vdSyncSince < 3*c.m.Timeouts.SyncRetry {
			c.startSync(m)
			return
		}
		// 12.6 step 3: a claim this leader cannot back is left out.
		var backed []*wire.ViewData
		for _, vd := range vds {
			if vd.LastHeight <= c.st.Height {
				backed = append(backed, vd)
			}
		}
		if len(backed) < c.cl.Q() {
			c.startSync(m)
			return
		}
		c.log("warning", "view_change", "leaving out view data whose last_height cannot be fetched", "view", c.view, "claimed", m)
		chosen = backed[:c.cl.Q()]
	}
	sort.Slice(chosen, func(i, j int) bool { return chosen[i].NodeID < chosen[j].NodeID })
	nv := &wire.NewView{ClusterID: c.cl.ID, View: c.view, LeaderID: c.self.ID, ViewData: append([]*wire.ViewData{}, chosen...)}
	nv.Signature = c.sign(sig.DomainNewView, unsignedNV(nv), "new_view")
	c.broadcast(pm(nv))
	c.install(nv)
}

func (c *Core) onNewView(from string, nv *wire.NewView) {
	if nv.ClusterID != c.cl.ID || nv.LeaderID != c.leaderOf(nv.View) || from != nv.LeaderID {
		c.reject("not_leader", from, "new view not from the leader of its view")
		return
	}
	if nv.View < c.view || (nv.View == c.view && c.installed) {
		c.Rejected["stale"]++
		return
	}
	if !c.cache.Verify(c.cl.Member(from).Ed25519, sig.DomainNewView, c.m.NetworkID, unsignedNV(nv), nv.Signature) {
		c.reject("bad_signature", from, "new view signature")
		return
	}
	seen := map[string]bool{}
	last := ""
	for _, vd := range nv.ViewData {
		if vd.View != nv.View || seen[vd.NodeID] || vd.NodeID <= last || !c.validViewData(vd) {
			c.reject("invalid_proposal", from, "new view with invalid view data")
			c.evidence(from, "invalid_view_data", "new view carries invalid view data", wire.Encode(nv))
			return
		}
		seen[vd.NodeID] = true
		last = vd.NodeID
	}
	if len(seen) < c.cl.Q() {
		c.reject("malformed", from, "new view with too few view data")
		return
	}
	if nv.View > c.view {
		c.view = nv.View
		c.Counters["view_changes"]++
	}
	c.install(nv)
}

// install makes nv's view active (12.6 steps 4 and 5).
func (c *Core) install(nv *wire.NewView) {
	c.vdSyncSince = 0
	c.view = nv.View
	c.installed, c.inVC, c.newView = true, false, nv
	if c.asked < c.view {
		c.asked = c.view
	} else if c.asked > c.view {
		c.asked = c.view
	}
	c.vcFails = 0
	c.vcTimer = 0
	c.viewData = map[string]*wire.ViewData{}
	c.accepted, c.acceptedDig, c.acceptedRes = nil, nil, nil
	c.proposing = false
	c.r.Persist = append(c.r.Persist, Record{Kind: RecView, View: nv.View}, Record{Kind: RecNewView, View: nv.View, Data: wire.Encode(nv)})
	var m uint64
	for _, vd := range nv.ViewData {
		if vd.LastHeight > m {
			m = vd.LastHeight
		}
	}
	c.selected = nil
	var best *wire.Proposal
	for _, vd := range nv.ViewData {
		if p := vd.Prepared; p != nil && p.Proposal.Height == m+1 {
			if best == nil || p.Proposal.View > best.View {
				best = p.Proposal
			}
		}
	}
	c.selected = best
	c.log("info", "new_view", "view installed", "view", nv.View, "leader", nv.LeaderID)
	c.restartPoolTimers()
	if m > c.st.Height {
		c.startSync(m)
	}
	c.forwardAll()
	c.maybePropose()
}

func (c *Core) endLoneSuspicion() {
	delete(c.vcs, c.self.ID)
	c.log("info", "view_change", "lone suspicion ended: the quorum still follows the view", "view", c.view)
	c.inVC = false
	c.asked = c.view
	c.vcTimer = 0
	c.restartPoolTimers()
}

func (c *Core) afterCatchUp() {
	c.tryNewView()
	c.maybePropose()
}

// lateMember: a Heartbeat or Proposal of a higher view from its leader (12.6 step 6).
func (c *Core) lateMember(w uint64, from string) {
	if c.now-c.lateSent[from] < 500 {
		return
	}
	c.lateSent[from] = c.now
	c.send(from, pm(c.viewChangeMsg(w)))
}

func (c *Core) lateVotes(w uint64, from string) {
	set := c.lateVoters[w]
	if set == nil {
		set = map[string]bool{}
		c.lateVoters[w] = set
		for v := range c.lateVoters {
			if v+16 < w {
				delete(c.lateVoters, v)
			}
		}
	}
	set[from] = true
	if len(set) >= c.cl.F()+1 {
		for id := range set {
			c.lateMember(w, id)
		}
	}
}

func (c *Core) vcTimers() {
	if !c.inVC || c.vcTimer == 0 || c.now < c.vcTimer {
		return
	}
	if !c.installed {
		c.vcFails++
		c.vcTimer = c.now + c.vcPeriod()
		c.ask(c.view + 1)
		return
	}
	// asked but not moved: re-send the ask
	c.vcTimer = c.now + c.vcPeriod()
	vc := c.viewChangeMsg(c.asked)
	c.vcs[c.self.ID] = vc
	c.broadcast(pm(vc))
}

func (c *Core) tick() {
	if c.isLeader() {
		c.heartbeats()
	} else if !c.inVC && c.installed && c.now-c.lastFromLeader > c.m.Timeouts.HeartbeatTimeout {
		c.suspect("heartbeat timeout")
	}
	c.poolTimers()
	c.vcTimers()
	if !c.installed {
		c.tryNewView()
	}
	c.clientTimers()
	c.serveHeld()
	c.pullTimers()
	c.syncTimers()
	c.maybePropose()
}

func (c *Core) onLinkUp(peer string) {
	if c.cl.Member(peer) == nil {
		return
	}
	if c.inVC {
		w := c.asked
		if w < c.view {
			w = c.view
		}
		c.send(peer, pm(c.viewChangeMsg(w)))
		if !c.installed && c.leaderOf(c.view) == peer {
			c.send(peer, pm(c.viewDataMsg()))
		}
	} else if c.isLeader() && c.proposals[c.view] != nil && c.proposals[c.view].Height == c.st.Height+1 {
		c.send(peer, pm(c.proposals[c.view]))
	}
}

// Restore replays the durable state (12.9). Call before the first Step.
func (c *Core) Restore(now int64, r *Restored) error {
	c.now = now
	c.Started = now
	// Replay re-executes what this node decided: testbed faults do not apply.
	c.st.WrongResult = false
	c.cache.Trust(true)
	defer func() { c.st.WrongResult = c.cfg.Faults.WrongResult; c.cache.Trust(false) }()
	for _, d := range r.Decisions {
		res, err := c.st.Execute(d.Batch)
		if err != nil {
			return err
		}
		if !bytes.Equal(wire.Encode(res.Decision.Header), wire.Encode(d.Header)) {
			return errReplay
		}
		c.r = Ready{}
		c.apply(&wire.Decision{Header: d.Header, Batch: d.Batch, Outputs: res.Decision.Outputs, Qc: d.Qc}, res)
	}
	c.r = Ready{}
	c.Counters["decisions"] = 0
	c.Counters["batch_inputs"] = 0
	c.view = r.View
	c.asked = r.View
	c.lastFromLeader = now
	if r.Prepared != nil && r.Prepared.Proposal != nil && r.Prepared.Proposal.Height == c.st.Height+1 {
		c.prepared, c.prepSig = r.Prepared, r.PrepSig
		c.commitSent[r.Prepared.Proposal.View] = true
	}
	if r.NewView != nil && r.NewView.View == r.View {
		c.newView = r.NewView
	}
	if r.View == 0 || c.newView != nil {
		c.installed, c.inVC = true, false
		if c.newView != nil {
			var m uint64
			for _, vd := range c.newView.ViewData {
				if vd.LastHeight > m {
					m = vd.LastHeight
				}
			}
			for _, vd := range c.newView.ViewData {
				if p := vd.Prepared; p != nil && p.Proposal.Height == m+1 && p.Proposal.Height == c.st.Height+1 {
					if c.selected == nil || p.Proposal.View > c.selected.View {
						c.selected = p.Proposal
					}
				}
			}
		}
		if v := r.Vote; v != nil && v.View == r.View && v.Height == c.st.Height+1 {
			res, err := c.st.Execute(v.Batch)
			if err == nil && bytes.Equal(wire.Encode(res.Decision.Header), wire.Encode(v.Header)) {
				c.proposals[v.View] = v
				c.accepted, c.acceptedDig, c.acceptedRes = v, rsm.Hash(v.Header), res
				c.voted[v.View] = c.acceptedDig
				if v.LeaderID == c.self.ID {
					c.proposing = true
				}
			}
		}
	} else {
		c.installed, c.inVC = false, true
		c.vcTimer = now + c.vcPeriod()
	}
	return nil
}

// AfterRestore emits the messages a restarted node sends (12.9).
func (c *Core) AfterRestore(now int64) Ready {
	c.now = now
	c.r = Ready{}
	if !c.installed {
		vc := c.viewChangeMsg(c.view)
		c.vcs[c.self.ID] = vc
		c.broadcast(pm(vc))
		c.sendViewData()
	} else if c.isLeader() {
		if p := c.proposals[c.view]; p != nil {
			c.broadcastProposal(p)
			pr := &wire.Prepare{ClusterID: c.cl.ID, View: p.View, Height: p.Height, Digest: c.acceptedDig, NodeID: c.self.ID}
			pr.Signature = c.sign(sig.DomainPrepare, wire.Encode(pr), "prepare")
			c.addPrepare(c.self.ID, pr)
		} else {
			c.maybePropose()
		}
	}
	r := c.r
	c.r = Ready{}
	return r
}
