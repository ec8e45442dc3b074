package core

import (
	"bytes"

	"heraclius/impl_c/rsm"
	"heraclius/impl_c/wire"
)

func (c *Core) startSync(target uint64) {
	if target <= c.st.Height {
		return
	}
	if target > c.syncTarget {
		c.syncTarget = target
	}
	if c.syncFrom == c.st.Height+1 && c.now-c.syncSentAt < c.m.Timeouts.SyncRetry {
		return
	}
	c.sendSync()
}

func (c *Core) sendSync() {
	// Prefer a member that claims the height; rotate on every retry.
	n := c.cl.N()
	for i := 0; i < n; i++ {
		c.syncPeer = (c.syncPeer + 1) % n
		id := c.cl.Nodes[c.syncPeer].ID
		if id == c.self.ID {
			continue
		}
		if (c.claims[id] > c.st.Height && !c.linkDown[id]) || i >= n-1 {
			break
		}
	}
	id := c.cl.Nodes[c.syncPeer].ID
	if id == c.self.ID {
		c.syncPeer = (c.syncPeer + 1) % n
		id = c.cl.Nodes[c.syncPeer].ID
	}
	c.syncFrom, c.syncSentAt = c.st.Height+1, c.now
	c.send(id, pm(&wire.SyncRequest{ClusterID: c.cl.ID, FromHeight: c.st.Height + 1, MaxCount: serverCap}))
}

func (c *Core) syncTimers() {
	if c.syncTarget > c.st.Height && c.now-c.syncSentAt >= c.m.Timeouts.SyncRetry {
		c.sendSync()
	}
	for dk, at := range c.commitsLate {
		if c.now-at >= c.m.Timeouts.SyncRetry && c.proposalFor([]byte(dk)) == nil {
			c.commitsLate[dk] = c.now
			c.syncTarget = c.st.Height + 1
			c.sendSync()
			break
		}
	}
}

func (c *Core) onSyncRequest(from string, conn ConnID, q *wire.SyncRequest) {
	if q.ClusterID != c.cl.ID {
		c.reject("wrong_cluster", from, "sync request for another cluster")
		return
	}
	max := int(q.MaxCount)
	if max <= 0 || max > serverCap {
		max = serverCap
	}
	resp := &wire.SyncResponse{ClusterID: c.cl.ID}
	size := 64
	for h := q.FromHeight; h >= 1 && h <= c.st.Height && len(resp.Decisions) < max; h++ {
		d := c.decision(h)
		if d == nil {
			break
		}
		s := len(wire.Encode(d)) + 8
		if size+s > c.m.Limits.MaxMessageBytes {
			break
		}
		size += s
		resp.Decisions = append(resp.Decisions, d)
	}
	c.reply(conn, pm(resp))
}

func (c *Core) onSyncResponse(from string, s *wire.SyncResponse) {
	if s.ClusterID != c.cl.ID {
		c.reject("wrong_cluster", from, "sync response for another cluster")
		return
	}
	applied := 0
	for _, d := range s.Decisions {
		if d.Header == nil || d.Batch == nil {
			c.reject("malformed", from, "sync decision without header or batch")
			break
		}
		if d.Header.Height <= c.st.Height {
			continue
		}
		if d.Header.Height != c.st.Height+1 {
			c.reject("out_of_order", from, "sync decisions not consecutive")
			break
		}
		if r := rsm.VerifyQC(c.m, c.cache, d.Header, d.Qc); r != "" || d.Header.ClusterID != c.cl.ID {
			c.reject("bad_qc", from, "sync decision QC")
			break
		}
		res, err := c.st.Execute(d.Batch)
		if err != nil || !bytes.Equal(wire.Encode(res.Decision.Header), wire.Encode(d.Header)) {
			c.reject("invalid_proposal", from, "sync decision does not re-execute")
			break
		}
		c.r.Persist = append(c.r.Persist, Record{Kind: RecDecision, Height: d.Header.Height, Data: wire.Encode(d)})
		c.apply(&wire.Decision{Header: d.Header, Batch: d.Batch, Outputs: res.Decision.Outputs, Qc: d.Qc}, res)
		applied++
	}
	if applied > 0 {
		c.log("info", "caught_up", "applied decisions from a peer", "count", applied, "height", c.st.Height, "peer", from)
	}
	if c.syncTarget > c.st.Height {
		if applied == 0 {
			c.syncSentAt = c.now // retry after sync_retry with the next member
		} else {
			c.sendSync()
		}
	} else {
		c.syncFrom = 0
		c.afterCatchUp()
	}
}
