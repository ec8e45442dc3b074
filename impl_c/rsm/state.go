package rsm

import (
	"encoding/hex"
	"fmt"
	"sort"

	"heraclius/impl_c/manifest"
	"heraclius/impl_c/merkle"
	"heraclius/impl_c/wire"
)

// Window is the dedup window W of SPEC 11.
const Window = 65536

// ReqKey names one client request.
type ReqKey struct {
	Client string // raw 32-byte key
	ID     uint64
}

type dedup struct {
	maxID uint64
	ids   map[uint64]struct{}
}

func floorOf(max uint64) uint64 {
	if max > Window {
		return max - Window
	}
	return 0
}

// State is the replicated state of one cluster (SPEC 11).
type State struct {
	M        *manifest.Manifest
	Cluster  string
	Role     string
	Height   uint64
	HeadHash []byte
	NextIn   map[string]uint64
	NextOut  map[string]uint64
	dedup    map[string]*dedup
	Pending  map[ReqKey]struct{}
	KV       map[string][]byte
	Cache    *SigCache
	// WrongResult is the SPEC 16 testbed fault: GET results get a wrong value.
	WrongResult bool
}

// NewState is the state of cluster id at height 0.
func NewState(m *manifest.Manifest, cluster string, cache *SigCache) *State {
	return &State{M: m, Cluster: cluster, Role: m.Cluster(cluster).Role, HeadHash: ZeroHash(),
		NextIn: map[string]uint64{}, NextOut: map[string]uint64{}, dedup: map[string]*dedup{},
		Pending: map[ReqKey]struct{}{}, KV: map[string][]byte{}, Cache: cache}
}

func get1(m map[string]uint64, k string) uint64 {
	if v, ok := m[k]; ok {
		return v
	}
	return 1
}

// NextInOf is next_in[s].
func (s *State) NextInOf(src string) uint64 { return get1(s.NextIn, src) }

// Accepted reports whether the state already accepted the request id, or it
// is at or below the client's floor (so it would be skipped).
func (s *State) Accepted(client []byte, id uint64) bool {
	d := s.dedup[string(client)]
	if d == nil {
		return false
	}
	if id <= floorOf(d.maxID) {
		return true
	}
	_, ok := d.ids[id]
	return ok
}

// Stale reports whether id is at or below the client's floor.
func (s *State) Stale(client []byte, id uint64) bool {
	d := s.dedup[string(client)]
	return d != nil && id <= floorOf(d.maxID)
}

// Dedup returns (max_id, ids above the floor, sorted) of a client.
func (s *State) Dedup() map[string][2]any {
	out := map[string][2]any{}
	for k, d := range s.dedup {
		f := floorOf(d.maxID)
		var ids []uint64
		for id := range d.ids {
			if id > f {
				ids = append(ids, id)
			}
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		out[hex.EncodeToString([]byte(k))] = [2]any{d.maxID, ids}
	}
	return out
}

// txn is an overlay of changes made by one batch.
type txn struct {
	s       *State
	nextIn  map[string]uint64
	nextOut map[string]uint64
	maxID   map[string]uint64
	ids     map[ReqKey]struct{}
	pendAdd map[ReqKey]struct{}
	pendDel map[ReqKey]struct{}
	kv      map[string][]byte
}

func (t *txn) nextInOf(src string) uint64 {
	if v, ok := t.nextIn[src]; ok {
		return v
	}
	return t.s.NextInOf(src)
}

func (t *txn) maxOf(c string) uint64 {
	if v, ok := t.maxID[c]; ok {
		return v
	}
	if d := t.s.dedup[c]; d != nil {
		return d.maxID
	}
	return 0
}

func (t *txn) hasID(c string, id uint64) bool {
	if _, ok := t.ids[ReqKey{c, id}]; ok {
		return true
	}
	d := t.s.dedup[c]
	if d == nil {
		return false
	}
	_, ok := d.ids[id]
	return ok
}

func (t *txn) pending(k ReqKey) bool {
	if _, ok := t.pendDel[k]; ok {
		return false
	}
	if _, ok := t.pendAdd[k]; ok {
		return true
	}
	_, ok := t.s.Pending[k]
	return ok
}

func (t *txn) kvGet(k string) ([]byte, bool) {
	if v, ok := t.kv[k]; ok {
		return v, true
	}
	v, ok := t.s.KV[k]
	return v, ok
}

// Result is an executed, not yet applied batch.
type Result struct {
	Decision *wire.Decision // qc absent
	Leaves   [][]byte        // canonical leaves in output order
	t        *txn
}

// InvalidBatch reports why a batch is invalid; Index is the first invalid
// input (-1 for a batch-level limit).
type InvalidBatch struct {
	Index  int
	Reason string
}

func (e *InvalidBatch) Error() string {
	return fmt.Sprintf("invalid batch: input %d: %s", e.Index, e.Reason)
}

// Verifier validates one input; the default checks signatures and QCs.
// A node can pass a cache-backed one through State.Cache.

// Execute validates batch at height s.Height+1 and executes it on an overlay
// of the state (SPEC 11). The state is unchanged until Apply.
func (s *State) Execute(batch *wire.Batch) (*Result, error) {
	return s.execute(batch, nil)
}

// ExecuteTrusted executes a batch whose inputs were already validated by
// this node (its own proposal): skip signature checks via the cache only.
func (s *State) execute(batch *wire.Batch, _ any) (*Result, error) {
	lim := s.M.Limits
	enc := wire.Encode(batch)
	if len(batch.Inputs) == 0 || len(batch.Inputs) > lim.MaxBatchInputs || len(enc) > lim.MaxBatchBytes {
		return nil, &InvalidBatch{-1, "invalid_proposal"}
	}
	t := &txn{s: s, nextIn: map[string]uint64{}, nextOut: map[string]uint64{}, maxID: map[string]uint64{},
		ids: map[ReqKey]struct{}{}, pendAdd: map[ReqKey]struct{}{}, pendDel: map[ReqKey]struct{}{}, kv: map[string][]byte{}}
	height := s.Height + 1
	out := map[string]*wire.OutputLeaf{}
	leaf := func(d string) *wire.OutputLeaf {
		l := out[d]
		if l == nil {
			l = &wire.OutputLeaf{SourceCluster: s.Cluster, Height: height, Destination: d}
			out[d] = l
		}
		return l
	}
	seen := map[ReqKey]struct{}{}
	claim := func(c []byte, id uint64) bool {
		k := ReqKey{string(c), id}
		if _, dup := seen[k]; dup {
			return false
		}
		seen[k] = struct{}{}
		return true
	}
	request := func(c []byte, id uint64, op *wire.Operation) {
		ck := string(c)
		max := t.maxOf(ck)
		if id <= floorOf(max) || t.hasID(ck, id) {
			return
		}
		t.ids[ReqKey{ck, id}] = struct{}{}
		if id > max {
			t.maxID[ck] = id
		}
		t.pendAdd[ReqKey{ck, id}] = struct{}{}
		delete(t.pendDel, ReqKey{ck, id})
		l := leaf(s.M.ShardOf(op.Key))
		l.Calls = append(l.Calls, &wire.ShardCall{ClientKey: c, RequestID: id, Op: op})
	}
	for i, in := range batch.Inputs {
		switch {
		case in.Client != nil:
			if s.Role != "coordinator" {
				return nil, &InvalidBatch{i, "malformed"}
			}
			r := in.Client
			if reason := VerifyRequest(s.M, s.Cache, s.Cluster, r); reason != "" {
				return nil, &InvalidBatch{i, reason}
			}
			if !claim(r.ClientKey, r.RequestID) {
				return nil, &InvalidBatch{i, "duplicate"}
			}
			request(r.ClientKey, r.RequestID, r.Op)
		case in.Bundle != nil:
			if s.Role != "coordinator" {
				return nil, &InvalidBatch{i, "malformed"}
			}
			b := in.Bundle
			if reason := VerifyBundle(s.M, s.Cache, s.Cluster, b); reason != "" {
				return nil, &InvalidBatch{i, reason}
			}
			for _, it := range b.Items {
				if !claim(b.ClientKey, it.RequestID) {
					return nil, &InvalidBatch{i, "duplicate"}
				}
			}
			for _, it := range b.Items {
				request(b.ClientKey, it.RequestID, it.Op)
			}
		case in.Remote != nil:
			cd := in.Remote
			if cd.Header == nil {
				return nil, &InvalidBatch{i, "malformed"}
			}
			src := cd.Header.ClusterID
			sc := s.M.Cluster(src)
			if sc == nil || sc.Role == s.Role {
				return nil, &InvalidBatch{i, "wrong_cluster"}
			}
			if reason := VerifyCompact(s.M, s.Cache, cd, src, s.Cluster, t.nextInOf(src)); reason != "" {
				return nil, &InvalidBatch{i, reason}
			}
			t.nextIn[src] = cd.Leaf.Seq + 1
			if s.Role == "shard" {
				for _, c := range cd.Leaf.Calls {
					res := &wire.ShardResult{ClientKey: c.ClientKey, RequestID: c.RequestID, ShardHeight: height}
					if c.Op != nil {
						res.Kind = c.Op.Kind
						v, found := t.kvGet(string(c.Op.Key))
						res.Found = found
						if c.Op.Kind == wire.OpKindGet {
							if found {
								res.Value = v
							}
							if s.WrongResult {
								res.Found, res.Value = true, append(append([]byte{}, res.Value...), '!')
							}
						} else {
							t.kv[string(c.Op.Key)] = append([]byte{}, c.Op.Value...)
						}
					}
					l := leaf(src)
					l.Results = append(l.Results, res)
				}
			} else {
				for _, r := range cd.Leaf.Results {
					k := ReqKey{string(r.ClientKey), r.RequestID}
					if !t.pending(k) {
						continue
					}
					t.pendDel[k] = struct{}{}
					delete(t.pendAdd, k)
					l := leaf(ClientDest(r.ClientKey))
					l.Responses = append(l.Responses, &wire.ClientResponse{RequestID: r.RequestID, Kind: r.Kind,
						Found: r.Found, Value: r.Value, ShardID: src, ShardHeight: r.ShardHeight})
				}
			}
		default:
			return nil, &InvalidBatch{i, "malformed"}
		}
	}
	dests := make([]string, 0, len(out))
	for d := range out {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	dec := &wire.Decision{Batch: batch}
	leaves := make([][]byte, 0, len(dests))
	for _, d := range dests {
		l := out[d]
		l.Seq = get1(s.NextOut, d)
		t.nextOut[d] = l.Seq + 1
		dec.Outputs = append(dec.Outputs, l)
		leaves = append(leaves, wire.Encode(l))
	}
	ih := HashBytes(enc)
	dec.Header = &wire.DecisionHeader{ClusterID: s.Cluster, Height: height, ParentHash: append([]byte{}, s.HeadHash...),
		InputsHash: ih, OutputsRoot: merkle.Root(leaves)}
	return &Result{Decision: dec, Leaves: leaves, t: t}, nil
}

// Apply makes an executed batch the new state (the batch must have been
// executed on this exact state).
func (s *State) Apply(r *Result) {
	t := r.t
	for k, v := range t.nextIn {
		s.NextIn[k] = v
	}
	for k, v := range t.nextOut {
		s.NextOut[k] = v
	}
	for k := range t.ids {
		d := s.dedup[k.Client]
		if d == nil {
			d = &dedup{ids: map[uint64]struct{}{}}
			s.dedup[k.Client] = d
		}
		d.ids[k.ID] = struct{}{}
	}
	for c, m := range t.maxID {
		d := s.dedup[c]
		d.maxID = m
		if len(d.ids) > 2*Window {
			f := floorOf(m)
			for id := range d.ids {
				if id <= f {
					delete(d.ids, id)
				}
			}
		}
	}
	for k := range t.pendAdd {
		s.Pending[k] = struct{}{}
	}
	for k := range t.pendDel {
		delete(s.Pending, k)
	}
	for k, v := range t.kv {
		s.KV[k] = v
	}
	s.Height = r.Decision.Header.Height
	s.HeadHash = Hash(r.Decision.Header)
}

// HashBytes is SHA-256.
func HashBytes(b []byte) []byte {
	h := sha256Sum(b)
	return h[:]
}
