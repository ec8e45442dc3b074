package client

import (
	"fmt"
	"time"

	"heraclius/impl_c/rsm"
	"heraclius/impl_c/sig"
	"heraclius/impl_c/wire"
)

// Op is one operation of a bundle.
type Op struct {
	Kind       wire.OpKind
	Key, Value []byte
}

// DoBundle sends ops as one signed RequestBundle (SPEC 14.6) to the user's
// member and collects the answers (grouped or not). Items without a valid
// answer within the wait are retried one by one as plain requests (14.6 allows
// either). It returns one result or error per op and the request ids used.
func (u *User) DoBundle(ops []Op, timeout time.Duration) ([]*Result, []error, []uint64) {
	c := u.c
	b := &wire.RequestBundle{ClientKey: c.Signer.Pub, ClusterID: c.Cluster.ID}
	ids := make([]uint64, len(ops))
	for i, op := range ops {
		ids[i] = c.nextID.Add(1)
		b.Items = append(b.Items, &wire.BundleItem{RequestID: ids[i], Op: &wire.Operation{Kind: op.Kind, Key: op.Key, Value: op.Value}})
	}
	b.Signature = c.Signer.Sign(sig.DomainClientBundle, c.M.NetworkID, wire.Encode(b))
	results := make([]*Result, len(ops))
	errs := make([]error, len(ops))
	index := map[uint64]int{}
	for i, id := range ids {
		index[id] = i
	}
	deadline := time.Now().Add(timeout)
	u.mu.Lock()
	func() {
		defer u.mu.Unlock()
		if err := u.connect(deadline); err != nil {
			return
		}
		s := u.sess
		if err := s.Write(wire.Encode(&wire.ClientMessage{SubmitBundle: b})); err != nil {
			u.Close()
			return
		}
		wait := time.Now().Add(time.Duration(c.M.Timeouts.ClientTimeout+1000) * time.Millisecond)
		if wait.After(deadline) {
			wait = deadline
		}
		s.Conn().SetReadDeadline(wait)
		defer s.Conn().SetReadDeadline(time.Time{})
		open := len(ops)
		for open > 0 {
			raw, err := s.Read()
			if err != nil {
				u.Close()
				return
			}
			rep, err := wire.DecodeClientReply(raw)
			if err != nil {
				u.Close()
				return
			}
			if e := rep.Error; e != nil {
				if i, ok := index[e.RequestID]; ok && errs[i] == nil && results[i] == nil {
					errs[i] = fmt.Errorf("%s", wire.ClientErrorCodeNames[e.Code])
					open--
				}
				continue
			}
			cd := rep.Answer
			if rsm.VerifyAnswer(c.M, c.cache, cd, c.Cluster.ID, c.Dest) != "" {
				continue
			}
			for _, resp := range cd.Leaf.Responses {
				i, ok := index[resp.RequestID]
				if !ok || results[i] != nil || resp.Kind != ops[i].Kind {
					continue
				}
				if errs[i] != nil {
					errs[i] = nil
				} else {
					open--
				}
				results[i] = &Result{Found: resp.Found, Value: resp.Value, Height: cd.Header.Height,
					Node: c.Cluster.Nodes[u.member].ID, Shard: resp.ShardID, ShardHeight: resp.ShardHeight, RequestID: resp.RequestID}
			}
		}
	}()
	// Retry what failed as plain requests with the same id and operation.
	for i := range ops {
		if results[i] != nil {
			continue
		}
		r := &wire.ClientRequest{ClientKey: c.Signer.Pub, RequestID: ids[i], ClusterID: c.Cluster.ID,
			Op: &wire.Operation{Kind: ops[i].Kind, Key: ops[i].Key, Value: ops[i].Value}}
		r.Signature = c.Signer.Sign(sig.DomainClientRequest, c.M.NetworkID, wire.Encode(r))
		left := time.Until(deadline)
		if left < time.Second {
			left = time.Second
		}
		results[i], errs[i] = u.Do(r, left)
	}
	return results, errs, ids
}
