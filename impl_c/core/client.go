package core

import (
	"heraclius/impl_c/merkle"
	"heraclius/impl_c/rsm"
	"heraclius/impl_c/sig"
	"heraclius/impl_c/wire"
)

func (c *Core) clientErr(conn ConnID, code wire.ClientErrorCode, id uint64, reason, msg string) {
	if reason != "" {
		c.Rejected[reason]++
	}
	c.Counters["client_errors"]++
	c.Counters["client_errors_"+wire.ClientErrorCodeNames[code]]++
	c.r.Client = append(c.r.Client, ClientOut{Conn: conn, Reply: &wire.ClientReply{Error: &wire.ClientError{Code: code, RequestID: id, Message: msg}}})
}

// checkShape applies the 14.3 checks before admission; it returns a code or 0.
func (c *Core) checkShape(cluster string, key []byte, id uint64, op *wire.Operation, bundleItem bool) (wire.ClientErrorCode, string) {
	if cluster != c.cl.ID || c.cl.Role != "coordinator" {
		return wire.ClientErrorWrongCluster, "wrong_cluster"
	}
	if len(key) != 32 || c.m.ClientByKey(key) == nil {
		return wire.ClientErrorUnauthorised, "unauthorised_client"
	}
	if id < 1 || op == nil || (op.Kind != wire.OpKindGet && op.Kind != wire.OpKindPut) || len(op.Key) < 1 ||
		(op.Kind == wire.OpKindGet && len(op.Value) > 0) {
		return wire.ClientErrorMalformed, "malformed"
	}
	if len(op.Key) > c.m.Limits.MaxKeyBytes || len(op.Value) > c.m.Limits.MaxValueBytes {
		if bundleItem {
			return wire.ClientErrorMalformed, "malformed"
		}
		return wire.ClientErrorTooLarge, "oversized"
	}
	return 0, ""
}

func (c *Core) onClient(e ClientIn) {
	m := e.Msg
	switch {
	case m.Submit != nil:
		c.onRequest(e.Conn, m.Submit, false)
	case m.Fetch != nil:
		c.onRequest(e.Conn, m.Fetch, true)
	case m.SubmitBundle != nil:
		c.onBundle(e.Conn, m.SubmitBundle)
	}
}

func (c *Core) onRequest(conn ConnID, r *wire.ClientRequest, fetch bool) {
	if code, reason := c.checkShape(r.ClusterID, r.ClientKey, r.RequestID, r.Op, false); code != 0 {
		c.clientErr(conn, code, r.RequestID, reason, reason)
		return
	}
	k := rsm.ReqKey{Client: string(r.ClientKey), ID: r.RequestID}
	if h, ok := c.answerOf(k); ok {
		c.answerFrom(conn, h, r.ClientKey)
		return
	}
	_, pooled := c.pool[reqKey(r)]
	if !fetch && !pooled && !c.st.Accepted(r.ClientKey, r.RequestID) && !c.admits(k.Client, 1, true) {
		c.clientErr(conn, wire.ClientErrorOverloaded, r.RequestID, "overloaded", "pool full or client share used")
		return
	}
	u := *r
	u.Signature = nil
	if !c.cache.Verify(r.ClientKey, sig.DomainClientRequest, c.m.NetworkID, wire.Encode(&u), r.Signature) {
		c.clientErr(conn, wire.ClientErrorBadSignature, r.RequestID, "bad_signature", "bad signature")
		return
	}
	if c.st.Stale(r.ClientKey, r.RequestID) {
		c.clientErr(conn, wire.ClientErrorStale, r.RequestID, "stale", "request id at or below the client's floor")
		return
	}
	if !fetch {
		c.Counters["client_requests"]++
		if !c.st.Accepted(r.ClientKey, r.RequestID) {
			c.addToPool(r, nil, true)
		}
	}
	c.wait(conn, k, r.Op.Kind)
}

func (c *Core) wait(conn ConnID, k rsm.ReqKey, kind wire.OpKind) {
	ws := c.waiters[k]
	for _, w := range ws {
		if w.conn == conn {
			return
		}
	}
	if len(ws) >= 8 {
		ws = ws[1:]
	}
	c.waiters[k] = append(ws, waiter{conn: conn, kind: kind, deadline: c.now + c.m.Timeouts.ClientTimeout})
}

func (c *Core) onBundle(conn ConnID, b *wire.RequestBundle) {
	errAll := func(code wire.ClientErrorCode, reason string) {
		c.Rejected[reason]++
		if len(b.Items) == 0 {
			c.clientErr(conn, code, 0, "", reason)
			return
		}
		for _, it := range b.Items {
			c.clientErr(conn, code, it.RequestID, "", reason)
		}
	}
	if b.ClusterID != c.cl.ID || c.cl.Role != "coordinator" {
		errAll(wire.ClientErrorWrongCluster, "wrong_cluster")
		return
	}
	if len(b.ClientKey) != 32 || c.m.ClientByKey(b.ClientKey) == nil {
		errAll(wire.ClientErrorUnauthorised, "unauthorised_client")
		return
	}
	if len(b.Items) > rsm.MaxBundleItems || len(wire.Encode(b)) > rsm.MaxBundleBytes || len(wire.Encode(b)) > c.m.Limits.MaxBatchBytes {
		errAll(wire.ClientErrorTooLarge, "oversized")
		return
	}
	if len(b.Items) == 0 {
		errAll(wire.ClientErrorMalformed, "malformed")
		return
	}
	var last uint64
	for _, it := range b.Items {
		if code, _ := c.checkShape(b.ClusterID, b.ClientKey, it.RequestID, it.Op, true); code != 0 || it.RequestID <= last {
			errAll(wire.ClientErrorMalformed, "malformed")
			return
		}
		last = it.RequestID
	}
	key := string(b.ClientKey)
	open := 0
	for _, it := range b.Items {
		if _, ok := c.answerOf(rsm.ReqKey{Client: key, ID: it.RequestID}); !ok && !c.st.Accepted(b.ClientKey, it.RequestID) {
			open++
		}
	}
	_, pooled := c.pool[bundleKey(b)]
	if open > 0 && !pooled && !c.admits(key, len(b.Items), true) {
		c.Rejected["overloaded"]++
		for _, it := range b.Items {
			k := rsm.ReqKey{Client: key, ID: it.RequestID}
			if h, ok := c.answerOf(k); ok {
				c.answerFrom(conn, h, b.ClientKey)
			} else if c.st.Stale(b.ClientKey, it.RequestID) {
				c.clientErr(conn, wire.ClientErrorStale, it.RequestID, "", "stale")
			} else {
				c.clientErr(conn, wire.ClientErrorOverloaded, it.RequestID, "", "overloaded")
			}
		}
		return
	}
	u := *b
	u.Signature = nil
	if !c.cache.Verify(b.ClientKey, sig.DomainClientBundle, c.m.NetworkID, wire.Encode(&u), b.Signature) {
		errAll(wire.ClientErrorBadSignature, "bad_signature")
		return
	}
	c.Counters["client_bundles"]++
	c.Counters["client_requests"] += uint64(len(b.Items))
	answeredAt := map[uint64]bool{}
	for _, it := range b.Items {
		k := rsm.ReqKey{Client: key, ID: it.RequestID}
		if h, ok := c.answerOf(k); ok {
			if !answeredAt[h] {
				answeredAt[h] = true
				c.answerFrom(conn, h, b.ClientKey)
			}
			continue
		}
		if c.st.Stale(b.ClientKey, it.RequestID) {
			c.clientErr(conn, wire.ClientErrorStale, it.RequestID, "stale", "stale")
			continue
		}
		c.wait(conn, k, it.Op.Kind)
	}
	if open > 0 {
		c.addToPool(nil, b, true)
	}
}

// Compact builds the compact decision of height h for destination dest.
func (c *Core) Compact(h uint64, dest string) *wire.CompactDecision {
	d := c.decision(h)
	if d == nil {
		return nil
	}
	leaves := make([][]byte, len(d.Outputs))
	idx := -1
	for i, l := range d.Outputs {
		leaves[i] = wire.Encode(l)
		if l.Destination == dest {
			idx = i
		}
	}
	if idx < 0 {
		return nil
	}
	leaf := d.Outputs[idx]
	if c.cfg.Faults.Tamper {
		leaf = tamperLeaf(leaf)
	}
	return &wire.CompactDecision{Header: d.Header, Leaf: leaf, LeafIndex: uint64(idx), LeafCount: uint64(len(leaves)),
		Proof: merkle.Proof(leaves, idx), Qc: d.Qc}
}

func tamperLeaf(l *wire.OutputLeaf) *wire.OutputLeaf {
	b := wire.Encode(l)
	cp, _ := wire.DecodeOutputLeaf(b)
	flip := func(v []byte) bool {
		if len(v) > 0 {
			v[len(v)-1] ^= 1
			return true
		}
		return false
	}
	for _, x := range cp.Calls {
		if x.Op != nil && flip(x.Op.Value) {
			return cp
		}
	}
	for _, x := range cp.Results {
		if flip(x.Value) {
			return cp
		}
	}
	for _, x := range cp.Responses {
		if flip(x.Value) {
			return cp
		}
	}
	switch {
	case len(cp.Calls) > 0:
		flip(cp.Calls[0].ClientKey)
	case len(cp.Results) > 0:
		flip(cp.Results[0].ClientKey)
	case len(cp.Responses) > 0:
		cp.Responses[0].RequestID ^= 1
	}
	return cp
}

func (c *Core) answerFrom(conn ConnID, h uint64, key []byte) {
	cd := c.Compact(h, rsm.ClientDest(key))
	if cd == nil {
		return
	}
	if c.cfg.Faults.FalseClient && len(cd.Leaf.Responses) > 0 {
		cp, _ := wire.DecodeOutputLeaf(wire.Encode(cd.Leaf))
		cp.Responses[0].Value = append(cp.Responses[0].Value, 'x')
		cd.Leaf = cp
	}
	c.Counters["client_replies"]++
	c.r.Client = append(c.r.Client, ClientOut{Conn: conn, Reply: &wire.ClientReply{Answer: cd}})
}

// answerClients answers every waiting connection with one reply per leaf.
func (c *Core) answerClients(d *wire.Decision) {
	for _, l := range d.Outputs {
		if len(l.Responses) == 0 {
			continue
		}
		key := clientKeyOf(l.Destination)
		conns := map[ConnID]bool{}
		var order []ConnID
		for _, r := range l.Responses {
			k := rsm.ReqKey{Client: key, ID: r.RequestID}
			for _, w := range c.waiters[k] {
				if w.kind == r.Kind && !conns[w.conn] {
					conns[w.conn] = true
					order = append(order, w.conn)
				}
			}
			delete(c.waiters, k)
		}
		for _, conn := range order {
			c.answerFrom(conn, d.Header.Height, []byte(key))
		}
	}
}

func (c *Core) clientTimers() {
	for k, ws := range c.waiters {
		keep := ws[:0]
		for _, w := range ws {
			if c.now >= w.deadline {
				c.clientErr(w.conn, wire.ClientErrorTimeout, k.ID, "", "no decision in time")
			} else {
				keep = append(keep, w)
			}
		}
		if len(keep) == 0 {
			delete(c.waiters, k)
		} else {
			c.waiters[k] = keep
		}
	}
}

func (c *Core) dropConn(conn ConnID) {
	for k, ws := range c.waiters {
		keep := ws[:0]
		for _, w := range ws {
			if w.conn != conn {
				keep = append(keep, w)
			}
		}
		if len(keep) == 0 {
			delete(c.waiters, k)
		} else {
			c.waiters[k] = keep
		}
	}
	held := c.held[:0]
	for _, h := range c.held {
		if h.conn != conn {
			held = append(held, h)
		}
	}
	c.held = held
}

// answerOf finds the height whose decision answered k: recent answers are in
// memory, older ones come from the durable index (Config.ReadAnswer).
func (c *Core) answerOf(k rsm.ReqKey) (uint64, bool) {
	if h, ok := c.answered[k]; ok {
		return h, true
	}
	if c.cfg.ReadAnswer != nil {
		return c.cfg.ReadAnswer([]byte(k.Client), k.ID)
	}
	return 0, false
}
