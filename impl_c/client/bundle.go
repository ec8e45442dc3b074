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

// bundler is the default sending path of `workload` with several users
// (SPEC 14.6 SHOULD): every user hands its ready operation to one sender,
// which sends a single ready operation as a plain ClientRequest and the
// operations ready at once as one RequestBundle (1 to 256 items, within the
// bundle and batch byte limits).
type bundler struct {
	c       *Client
	timeout time.Duration
	jobs    chan *bundleJob
	users   chan *User
	all     []*User
	quit    chan struct{}
}

type bundleJob struct {
	op   Op
	res  *Result
	err  error
	id   uint64
	done chan struct{}
}

func newBundler(c *Client, users int, timeout time.Duration) *bundler {
	b := &bundler{c: c, timeout: timeout, jobs: make(chan *bundleJob, users), users: make(chan *User, users), quit: make(chan struct{})}
	for i := 0; i < users; i++ {
		u := c.NewUser()
		b.all = append(b.all, u)
		b.users <- u
	}
	go b.run()
	return b
}

func (b *bundler) stop() {
	close(b.quit)
	for _, u := range b.all {
		u.Close()
	}
}

// do sends op (grouped with what other users have ready) and waits for it.
func (b *bundler) do(op Op) (*Result, error, uint64) {
	j := &bundleJob{op: op, done: make(chan struct{})}
	b.jobs <- j
	<-j.done
	return j.res, j.err, j.id
}

func (b *bundler) limit() int {
	l := rsm.MaxBundleBytes
	if m := b.c.M.Limits.MaxBatchBytes - 1024; m < l {
		l = m
	}
	return l
}

func opBytes(op Op) int { return len(op.Key) + len(op.Value) + 24 }

func (b *bundler) run() {
	var carry *bundleJob
	for {
		j := carry
		carry = nil
		if j == nil {
			select {
			case j = <-b.jobs:
			case <-b.quit:
				return
			}
		}
		batch := []*bundleJob{j}
		size := 128 + opBytes(j.op)
		// Let users that become ready together (their answers came in one
		// grouped reply) join; no wait when nothing else is pending.
		lingered := false
	drain:
		for len(batch) < rsm.MaxBundleItems {
			select {
			case j2 := <-b.jobs:
				if size+opBytes(j2.op) > b.limit() {
					carry = j2
					break drain
				}
				batch = append(batch, j2)
				size += opBytes(j2.op)
			default:
				if lingered {
					break drain
				}
				lingered = true
				time.Sleep(300 * time.Microsecond)
			}
		}
		var u *User
		select {
		case u = <-b.users:
		case <-b.quit:
			return
		}
		go func(u *User, batch []*bundleJob) {
			defer func() { b.users <- u }()
			if len(batch) == 1 {
				j := batch[0]
				r := b.c.NewRequest(j.op.Kind, j.op.Key, j.op.Value)
				j.res, j.err = u.Do(r, b.timeout)
				j.id = r.RequestID
				close(j.done)
				return
			}
			ops := make([]Op, len(batch))
			for i, j := range batch {
				ops[i] = j.op
			}
			results, errs, ids := u.DoBundle(ops, b.timeout)
			for i, j := range batch {
				j.res, j.err, j.id = results[i], errs[i], ids[i]
				close(j.done)
			}
		}(u, batch)
	}
}
