package core

import (
	"heraclius/impl_c/rsm"
	"heraclius/impl_c/wire"
)

const serverCap = 256

func (c *Core) onQueuePull(from string, conn ConnID, q *wire.QueuePull) {
	if q.SourceCluster != c.cl.ID {
		c.reject("wrong_cluster", from, "queue pull for another source")
		return
	}
	if len(c.held) >= 1024 {
		c.reject("overloaded", from, "too many held pulls")
		return
	}
	if c.serveQueue(conn, q, false) {
		return
	}
	c.held = append(c.held, heldPull{conn: conn, from: from, pull: q, deadline: c.now + c.m.Timeouts.QueueLongPoll})
}

// serveQueue answers a pull; with force it answers even when empty.
func (c *Core) serveQueue(conn ConnID, q *wire.QueuePull, force bool) bool {
	hs := c.queue[q.Destination]
	from := q.FromSeq
	if from < 1 {
		from = 1
	}
	if c.cfg.Faults.SkipSeq {
		from++
	}
	qb := &wire.QueueBatch{SourceCluster: c.cl.ID, Destination: q.Destination}
	if !c.cfg.Faults.Withhold {
		max := int(q.MaxCount)
		if max <= 0 || max > serverCap {
			max = serverCap
		}
		size := 64
		for seq := from; seq <= uint64(len(hs)) && len(qb.Decisions) < max; seq++ {
			cd := c.Compact(hs[seq-1], q.Destination)
			if cd == nil {
				break
			}
			s := len(wire.Encode(cd)) + 8
			if size+s > c.m.Limits.MaxMessageBytes {
				break
			}
			size += s
			qb.Decisions = append(qb.Decisions, cd)
		}
	}
	if len(qb.Decisions) == 0 && !force {
		return false
	}
	c.reply(conn, pm(qb))
	return true
}

func (c *Core) serveHeld() {
	keep := c.held[:0]
	for _, h := range c.held {
		if !c.serveQueue(h.conn, h.pull, c.now >= h.deadline) {
			keep = append(keep, h)
		}
	}
	c.held = keep
}

// nextWanted is the first seq from src not held in the remote pool.
func (c *Core) nextWanted(src string) uint64 {
	n := c.st.NextInOf(src)
	for c.remote[src][n] != nil {
		n++
	}
	return n
}

func (c *Core) pullTimers() {
	t := c.m.Timeouts
	for src, ps := range c.pulls {
		cl := c.m.Cluster(src)
		if ps.waiting && c.now-ps.sentAt < t.QueueLongPoll+t.RequestForward {
			continue
		}
		if ps.waiting {
			ps.target = (ps.target + 1) % cl.N()
		}
		if c.PendingRemote() > 4096 {
			continue
		}
		// Skip members whose link is known to be down.
		for i := 0; i < cl.N() && c.linkDown[cl.Nodes[ps.target].ID]; i++ {
			ps.target = (ps.target + 1) % cl.N()
		}
		target := cl.Nodes[ps.target].ID
		ps.waiting, ps.sentAt, ps.conn, ps.from = true, c.now, target, c.nextWanted(src)
		c.send(target, pm(&wire.QueuePull{SourceCluster: src, Destination: c.cl.ID, FromSeq: ps.from, MaxCount: serverCap}))
	}
}

func (c *Core) onQueueBatch(from string, qb *wire.QueueBatch) {
	src := qb.SourceCluster
	ps := c.pulls[src]
	if ps == nil || qb.Destination != c.cl.ID {
		c.reject("wrong_destination", from, "queue batch for another queue")
		return
	}
	cl := c.m.Cluster(src)
	if cl.Member(from) == nil {
		c.reject("wrong_cluster", from, "queue batch from a node outside its source")
		return
	}
	rotate := len(qb.Decisions) == 0
	if ps.conn == from && len(qb.Decisions) > 0 && (qb.Decisions[0].Leaf == nil || qb.Decisions[0].Leaf.Seq != ps.from) {
		c.reject("out_of_order", from, "queue batch does not start at from_seq")
		ps.waiting = false
		ps.target = (ps.target + 1) % cl.N()
		return
	}
	next := c.nextWanted(src)
	// Skip what became decided or pooled since the pull was sent, then
	// require consecutive seqs from next.
	for len(qb.Decisions) > 0 && qb.Decisions[0].Leaf != nil && qb.Decisions[0].Leaf.Seq < next {
		qb.Decisions = qb.Decisions[1:]
	}
	for i, cd := range qb.Decisions {
		reason := rsm.VerifyCompact(c.m, c.cache, cd, src, c.cl.ID, next)
		if reason != "" {
			c.reject(reason, from, "compact decision from queue")
			if reason == "bad_qc" {
				c.evidence(from, "bad_qc", "invalid QC in a served compact decision", wire.Encode(cd))
			} else if reason == "bad_proof" || reason == "wrong_destination" {
				c.evidence(from, "tampered_compact", "served compact decision fails "+reason, wire.Encode(cd))
			}
			_ = i
			rotate = true
			break
		}
		if c.remote[src] == nil {
			c.remote[src] = map[uint64]*wire.CompactDecision{}
		}
		if _, ok := c.remoteAt[src]; !ok {
			c.remoteAt[src] = c.now
		}
		c.remote[src][next] = cd
		next++
	}
	if ps.conn == from {
		ps.waiting = false
		if rotate {
			ps.target = (ps.target + 1) % cl.N()
		}
	}
	c.maybePropose()
}

// onLinkDown moves an outstanding pull off a member whose link went down.
func (c *Core) onLinkDown(peer string) {
	c.linkDown[peer] = true
	for src, ps := range c.pulls {
		if ps.waiting && ps.conn == peer {
			ps.waiting = false
			ps.target = (ps.target + 1) % c.m.Cluster(src).N()
		}
	}
	c.pullTimers()
}
