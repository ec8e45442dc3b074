package core

import (
	"crypto/sha256"
	"sort"

	"heraclius/impl_c/rsm"
	"heraclius/impl_c/wire"
)

func reqKey(r *wire.ClientRequest) poolKey {
	return poolKey{client: string(r.ClientKey), id: r.RequestID}
}

func bundleKey(b *wire.RequestBundle) poolKey {
	return poolKey{client: string(b.ClientKey), bundle: sha256.Sum256(wire.Encode(b))}
}

// share is the SPEC 12.5 client share.
func (c *Core) share() int {
	nc := len(c.m.Clients)
	if nc < 1 {
		nc = 1
	}
	s := c.m.Limits.MaxPendingRequests / nc
	if s > c.m.Limits.MaxBatchInputs {
		s = c.m.Limits.MaxBatchInputs
	}
	if s < 1 {
		s = 1
	}
	return s
}

// admits tells whether items of client may enter the pool (local: from the client port).
func (c *Core) admits(client string, items int, local bool) bool {
	if c.poolItems+items > c.m.Limits.MaxPendingRequests {
		return false
	}
	return !local || c.localBy[client]+items <= c.share()
}

func (c *Core) addToPool(req *wire.ClientRequest, b *wire.RequestBundle, local bool) bool {
	var k poolKey
	items := 1
	if req != nil {
		k = reqKey(req)
	} else {
		k = bundleKey(b)
		items = len(b.Items)
	}
	if _, ok := c.pool[k]; ok {
		return true
	}
	if !c.admits(k.client, items, local) {
		return false
	}
	c.poolSeq++
	e := &poolEntry{key: k, req: req, bundle: b, items: items, local: local, since: c.now, forward: c.now, seq: c.poolSeq}
	c.pool[k] = e
	c.poolItems += items
	if local {
		c.localBy[k.client] += items
	}
	if !c.isLeader() && !c.inVC {
		f := &wire.Forward{}
		if req != nil {
			f.Requests = []*wire.ClientRequest{req}
		} else {
			f.Bundles = []*wire.RequestBundle{b}
		}
		c.send(c.leaderOf(c.view), pm(f))
	} else {
		c.maybePropose()
	}
	return true
}

func (c *Core) removeEntry(e *poolEntry) {
	delete(c.pool, e.key)
	c.poolItems -= e.items
	if e.local {
		c.localBy[e.key.client] -= e.items
		if c.localBy[e.key.client] <= 0 {
			delete(c.localBy, e.key.client)
		}
	}
}

func (c *Core) entryDone(e *poolEntry) bool {
	if e.req != nil {
		return c.st.Accepted(e.req.ClientKey, e.req.RequestID)
	}
	for _, it := range e.bundle.Items {
		if !c.st.Accepted(e.bundle.ClientKey, it.RequestID) {
			return false
		}
	}
	return true
}

func (c *Core) prunePools() {
	for _, e := range c.pool {
		if c.entryDone(e) {
			c.removeEntry(e)
		}
	}
	for src, m := range c.remote {
		next := c.st.NextInOf(src)
		progressed := false
		for seq := range m {
			if seq < next {
				delete(m, seq)
				progressed = true
			}
		}
		if progressed {
			// The censorship period of a remote input runs from when it became
			// the next one to decide, not from when the first of a stream arrived.
			c.remoteAt[src] = c.now
		}
	}
}

func (c *Core) sortedPool() []*poolEntry {
	es := make([]*poolEntry, 0, len(c.pool))
	for _, e := range c.pool {
		es = append(es, e)
	}
	sort.Slice(es, func(i, j int) bool { return es[i].seq < es[j].seq })
	return es
}

func inputSize(in *wire.Input) int {
	n := len(wire.Encode(in))
	l := 1
	for v := n; v >= 0x80; v >>= 7 {
		l++
	}
	return 1 + l + n
}

// buildBatch fills a batch as SPEC 12.2 says: remote inputs first (by
// source, then seq), then requests and bundles in arrival order,
// interleaving client keys.
func (c *Core) buildBatch() *wire.Batch {
	lim := c.m.Limits
	b := &wire.Batch{}
	size := 0
	add := func(in *wire.Input) bool {
		s := inputSize(in)
		if len(b.Inputs) >= lim.MaxBatchInputs || size+s > lim.MaxBatchBytes {
			return false
		}
		b.Inputs = append(b.Inputs, in)
		size += s
		return true
	}
	srcs := make([]string, 0, len(c.remote))
	for s := range c.remote {
		srcs = append(srcs, s)
	}
	sort.Strings(srcs)
	for _, s := range srcs {
		for seq := c.st.NextInOf(s); ; seq++ {
			cd := c.remote[s][seq]
			if cd == nil || !add(&wire.Input{Remote: cd}) {
				break
			}
		}
	}
	seen := map[rsm.ReqKey]bool{}
	// Round-robin over client keys in arrival order.
	byClient := map[string][]*poolEntry{}
	var order []string
	for _, e := range c.sortedPool() {
		if c.entryDone(e) {
			continue
		}
		if c.cfg.Faults.CensorKeys[e.key.client] {
			continue
		}
		if _, ok := byClient[e.key.client]; !ok {
			order = append(order, e.key.client)
		}
		byClient[e.key.client] = append(byClient[e.key.client], e)
	}
	full := false
	for !full {
		progress := false
		for _, cl := range order {
			q := byClient[cl]
			if len(q) == 0 {
				continue
			}
			e := q[0]
			byClient[cl] = q[1:]
			progress = true
			var ids []uint64
			var in *wire.Input
			if e.req != nil {
				if c.st.Accepted(e.req.ClientKey, e.req.RequestID) {
					continue
				}
				ids = []uint64{e.req.RequestID}
				in = &wire.Input{Client: e.req}
			} else {
				for _, it := range e.bundle.Items {
					ids = append(ids, it.RequestID)
				}
				in = &wire.Input{Bundle: e.bundle}
			}
			conflict := false
			for _, id := range ids {
				if seen[rsm.ReqKey{Client: cl, ID: id}] {
					conflict = true
				}
			}
			if conflict {
				continue
			}
			if !add(in) {
				full = true
				break
			}
			for _, id := range ids {
				seen[rsm.ReqKey{Client: cl, ID: id}] = true
			}
		}
		if !progress {
			break
		}
	}
	if len(b.Inputs) == 0 {
		return nil
	}
	return b
}

func (c *Core) onForward(from string, f *wire.Forward) {
	for _, r := range f.Requests {
		if reason := rsm.VerifyRequest(c.m, c.cache, c.cl.ID, r); reason != "" {
			c.reject(reason, from, "forwarded request")
			continue
		}
		if c.st.Accepted(r.ClientKey, r.RequestID) {
			continue
		}
		if !c.addToPoolQuiet(r, nil) {
			c.reject("overloaded", from, "pool full")
		}
	}
	for _, b := range f.Bundles {
		if reason := rsm.VerifyBundle(c.m, c.cache, c.cl.ID, b); reason != "" {
			c.reject(reason, from, "forwarded bundle")
			continue
		}
		if !c.addToPoolQuiet(nil, b) {
			c.reject("overloaded", from, "pool full")
		}
	}
	c.maybePropose()
}

// addToPoolQuiet adds a forwarded input without forwarding it again.
func (c *Core) addToPoolQuiet(req *wire.ClientRequest, b *wire.RequestBundle) bool {
	var k poolKey
	items := 1
	if req != nil {
		k = reqKey(req)
	} else {
		k = bundleKey(b)
		items = len(b.Items)
	}
	if _, ok := c.pool[k]; ok {
		return true
	}
	if !c.admits(k.client, items, false) {
		return false
	}
	c.poolSeq++
	c.pool[k] = &poolEntry{key: k, req: req, bundle: b, items: items, since: c.now, forward: c.now, seq: c.poolSeq}
	c.poolItems += items
	return true
}

// poolTimers re-forwards old requests and detects censorship (12.5).
func (c *Core) poolTimers() {
	t := c.m.Timeouts
	if c.inVC {
		return
	}
	leader := c.leaderOf(c.view)
	fw := &wire.Forward{}
	size := 0
	oldest := 0
	suspect := false
	for _, e := range c.sortedPool() {
		if c.entryDone(e) {
			c.removeEntry(e)
			continue
		}
		if oldest < c.m.Limits.MaxBatchInputs {
			oldest += e.items
			if e.censorAt == 0 {
				e.censorAt = c.now
			}
			if c.now-e.censorAt >= t.Censorship {
				suspect = true
			}
		}
		if !c.isLeader() && c.now-e.forward >= t.RequestForward {
			e.forward = c.now
			var s int
			if e.req != nil {
				s = len(wire.Encode(e.req)) + 8
			} else {
				s = len(wire.Encode(e.bundle)) + 8
			}
			if size+s > c.m.Limits.MaxMessageBytes/2 {
				c.send(leader, pm(fw))
				fw, size = &wire.Forward{}, 0
			}
			size += s
			if e.req != nil {
				fw.Requests = append(fw.Requests, e.req)
			} else {
				fw.Bundles = append(fw.Bundles, e.bundle)
			}
		}
	}
	if len(fw.Requests)+len(fw.Bundles) > 0 {
		c.send(leader, pm(fw))
	}
	for src, m := range c.remote {
		if len(m) > 0 && c.remote[src][c.st.NextInOf(src)] != nil {
			if at, ok := c.remoteAt[src]; ok && c.now-at >= t.Censorship {
				suspect = true
			}
		} else {
			delete(c.remoteAt, src)
		}
	}
	if suspect {
		c.suspect("censorship timer")
	}
}

// restartPoolTimers restarts forward and censorship periods (new view).
func (c *Core) restartPoolTimers() {
	for _, e := range c.pool {
		e.forward, e.since, e.censorAt = c.now, c.now, 0
	}
	for src := range c.remoteAt {
		c.remoteAt[src] = c.now
	}
	c.lastFromLeader = c.now
}

// forwardAll sends the whole pool to the leader (after a view change).
func (c *Core) forwardAll() {
	if c.isLeader() {
		return
	}
	fw := &wire.Forward{}
	size := 0
	for _, e := range c.sortedPool() {
		var s int
		if e.req != nil {
			s = len(wire.Encode(e.req)) + 8
		} else {
			s = len(wire.Encode(e.bundle)) + 8
		}
		if size+s > c.m.Limits.MaxMessageBytes/2 {
			c.send(c.leaderOf(c.view), pm(fw))
			fw, size = &wire.Forward{}, 0
		}
		size += s
		if e.req != nil {
			fw.Requests = append(fw.Requests, e.req)
		} else {
			fw.Bundles = append(fw.Bundles, e.bundle)
		}
	}
	if len(fw.Requests)+len(fw.Bundles) > 0 {
		c.send(c.leaderOf(c.view), pm(fw))
	}
}
