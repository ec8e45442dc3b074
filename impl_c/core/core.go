package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"sort"

	"heraclius/impl_c/manifest"
	"heraclius/impl_c/rsm"
	"heraclius/impl_c/sig"
	"heraclius/impl_c/wire"
)

// Faults are the testbed behaviours the core itself applies (SPEC 16);
// message-level faults (drop, delay, ...) are applied by the driver.
type Faults struct {
	WrongResult  bool
	BadSignature func(kind string) bool
	CensorKeys   map[string]bool
	Tamper       bool
	Withhold     bool
	SkipSeq      bool
	FalseClient  bool
	Equivocate   []string // targets (empty = none)
	EquivocateOn bool
}

// Config is what a core needs.
type Config struct {
	M      *manifest.Manifest
	Self   string
	Signer *sig.Signer
	Cache  *rsm.SigCache
	Faults Faults
	// ReadDecision reads a durable decision evicted from memory (nil if absent).
	ReadDecision func(h uint64) *wire.Decision
	// ReadAnswer looks up the durable answer index: the height whose decision
	// holds the ClientResponse of (client key, request id).
	ReadAnswer func(client []byte, id uint64) (uint64, bool)
}

// keepInMemory is how many recent decisions the core holds.
const keepInMemory = 2048

type poolKey struct {
	client string
	id     uint64 // request id, or 0 for a bundle
	bundle [32]byte
}

type poolEntry struct {
	key      poolKey
	req      *wire.ClientRequest
	bundle   *wire.RequestBundle
	items    int
	local    bool // admitted from this member's client port
	since    int64
	forward  int64
	seq      uint64
	censorAt int64 // 0 until the entry is among the oldest
}

type waiter struct {
	conn     ConnID
	kind     wire.OpKind
	deadline int64
}

type heldPull struct {
	conn     ConnID
	from     string
	pull     *wire.QueuePull
	deadline int64
}

type pullState struct {
	target  int
	waiting bool
	sentAt  int64
	conn    string
	from    uint64
}

// Core is the node state machine.
type Core struct {
	cfg    Config
	m      *manifest.Manifest
	self   *manifest.Node
	cl     *manifest.Cluster
	signer *sig.Signer
	cache  *rsm.SigCache
	st     *rsm.State
	now    int64
	r      Ready

	decisions  map[uint64]*wire.Decision
	answered   map[rsm.ReqKey]uint64
	answeredAt map[uint64][]rsm.ReqKey
	queue      map[string][]uint64

	view        uint64
	inVC        bool
	installed   bool
	newView     *wire.NewView
	asked       uint64
	vcs         map[string]*wire.ViewChange
	vcTimer     int64
	vcFails     int
	viewData    map[string]*wire.ViewData
	selected    *wire.Proposal
	lateSent    map[string]int64
	nvSent      map[string]int64
	vdResent    int64
	vdSyncSince int64

	accepted    *wire.Proposal
	acceptedDig []byte
	acceptedRes *rsm.Result
	voted       map[uint64][]byte // view -> digest voted at height+1
	proposals   map[uint64]*wire.Proposal
	prepares    map[string]map[string]*wire.Prepare
	commits     map[string]map[string]*wire.Commit
	commitSent  map[uint64]bool
	prepared    *wire.PreparedCert
	prepSig     []byte
	proposing   bool
	batchSince  int64

	lastSent       map[string]int64
	lastFromLeader int64
	lastDecision   int64

	pool      map[poolKey]*poolEntry
	poolSeq   uint64
	poolItems int
	localBy   map[string]int
	remote    map[string]map[uint64]*wire.CompactDecision
	remoteAt  map[string]int64

	waiters map[rsm.ReqKey][]waiter

	held  []heldPull
	pulls map[string]*pullState

	syncFrom    uint64
	syncTarget  uint64
	syncPeer    int
	syncSentAt  int64
	claims      map[string]uint64
	future      map[futureKey]*wire.PeerMessage
	commitsLate map[string]int64

	lateVoters map[uint64]map[string]bool
	linkDown   map[string]bool

	Counters map[string]uint64
	Rejected map[string]uint64
	Evidence []Evidence
	Started  int64
}

type futureKey struct {
	height uint64
	kind   int
	from   string
}

// New builds a core at height 0 (call Restore to replay a log).
func New(cfg Config) *Core {
	self := cfg.M.Node(cfg.Self)
	c := &Core{cfg: cfg, m: cfg.M, self: self, cl: self.Cluster, signer: cfg.Signer, cache: cfg.Cache,
		decisions: map[uint64]*wire.Decision{}, answered: map[rsm.ReqKey]uint64{}, answeredAt: map[uint64][]rsm.ReqKey{}, queue: map[string][]uint64{},
		installed: true, vcs: map[string]*wire.ViewChange{}, viewData: map[string]*wire.ViewData{},
		lateSent: map[string]int64{}, nvSent: map[string]int64{},
		voted: map[uint64][]byte{}, proposals: map[uint64]*wire.Proposal{},
		prepares: map[string]map[string]*wire.Prepare{}, commits: map[string]map[string]*wire.Commit{},
		commitSent: map[uint64]bool{}, lastSent: map[string]int64{},
		pool: map[poolKey]*poolEntry{}, localBy: map[string]int{}, remote: map[string]map[uint64]*wire.CompactDecision{},
		remoteAt: map[string]int64{}, waiters: map[rsm.ReqKey][]waiter{}, pulls: map[string]*pullState{},
		claims: map[string]uint64{}, lateVoters: map[uint64]map[string]bool{}, linkDown: map[string]bool{}, future: map[futureKey]*wire.PeerMessage{}, commitsLate: map[string]int64{},
		Counters: map[string]uint64{}, Rejected: map[string]uint64{}}
	c.st = rsm.NewState(cfg.M, c.cl.ID, cfg.Cache)
	c.st.WrongResult = cfg.Faults.WrongResult
	for _, cl := range cfg.M.Clusters {
		if cl.Role != c.cl.Role {
			c.pulls[cl.ID] = &pullState{}
		}
	}
	return c
}

// Step handles one event at time now (Unix ms) and returns what to do.
func (c *Core) Step(now int64, ev any) Ready {
	c.now = now
	if c.Started == 0 {
		c.Started = now
	}
	c.r = Ready{}
	switch e := ev.(type) {
	case Tick:
		c.tick()
	case PeerIn:
		c.onPeer(e)
	case ClientIn:
		c.onClient(e)
	case ClientGone:
		c.dropConn(e.Conn)
	case ConnGone:
		c.dropConn(e.Conn)
	case LinkUp:
		delete(c.linkDown, e.Peer)
		c.onLinkUp(e.Peer)
	case LinkDown:
		c.onLinkDown(e.Peer)
	}
	r := c.r
	c.r = Ready{}
	return r
}

func (c *Core) log(level, event, msg string, kv ...any) {
	f := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		f[kv[i].(string)] = kv[i+1]
	}
	c.r.Logs = append(c.r.Logs, LogLine{Level: level, Event: event, Msg: msg, Fields: f})
}

func (c *Core) reject(reason, from, detail string) {
	c.Rejected[reason]++
	c.log("warning", "rejected", detail, "reason", reason, "peer", from)
}

func (c *Core) evidence(node, kind, detail string, msgs ...[]byte) {
	sorted := append([][]byte{}, msgs...)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i], sorted[j]) < 0 })
	h := sha256.New()
	for _, m := range sorted {
		h.Write(m)
	}
	id := hex.EncodeToString(h.Sum(nil))
	for _, e := range c.Evidence {
		if e.ID == id {
			return
		}
	}
	c.Evidence = append(c.Evidence, Evidence{ID: id, Node: node, Kind: kind, Detail: detail, TimeMs: c.now, Messages: msgs})
	if len(c.Evidence) > 200 {
		c.Evidence = c.Evidence[len(c.Evidence)-200:]
	}
	c.log("warning", "byzantine_evidence", detail, "kind", kind, "accused", node)
}

func (c *Core) leaderOf(v uint64) string { return c.cl.Nodes[int(v%uint64(c.cl.N()))].ID }

func (c *Core) isLeader() bool { return c.leaderOf(c.view) == c.self.ID }

func (c *Core) send(to string, m *wire.PeerMessage) {
	if to == c.self.ID {
		return
	}
	c.r.Send = append(c.r.Send, Out{To: to, Msg: m})
}

func (c *Core) reply(conn ConnID, m *wire.PeerMessage) {
	c.r.Send = append(c.r.Send, Out{Conn: conn, Msg: m})
}

func (c *Core) broadcast(m *wire.PeerMessage) {
	for _, n := range c.cl.Nodes {
		c.send(n.ID, m)
	}
}

func (c *Core) sign(domain string, body []byte, kind string) []byte {
	if c.cfg.Faults.BadSignature != nil && c.cfg.Faults.BadSignature(kind) {
		s := sha256.Sum256(append(body, byte(c.now)))
		return append(s[:], s[:]...)
	}
	return c.signer.Sign(domain, c.m.NetworkID, body)
}

// Height is the last decided height.
func (c *Core) Height() uint64 { return c.st.Height }

// HeadHash is the hash of the last decided header.
func (c *Core) HeadHash() []byte { return c.st.HeadHash }

// View is the current view; InViewChange tells whether a view change is in progress.
func (c *Core) View() uint64       { return c.view }
func (c *Core) InViewChange() bool { return c.inVC }
func (c *Core) Leader() string     { return c.leaderOf(c.view) }

// LastDecisionMs is the time of the last applied decision.
func (c *Core) LastDecisionMs() int64 { return c.lastDecision }

// State exposes the replicated state (read only).
func (c *Core) State() *rsm.State { return c.st }

// PendingRequests counts pool items; PendingRemote the remote pool.
func (c *Core) PendingRequests() int { return c.poolItems }
func (c *Core) PendingRemote() int {
	n := 0
	for _, m := range c.remote {
		n += len(m)
	}
	return n
}

// LogEntry returns the decision at height h with its QC.
func (c *Core) LogEntry(h uint64) *wire.Decision { return c.decision(h) }

func (c *Core) decision(h uint64) *wire.Decision {
	if d := c.decisions[h]; d != nil {
		return d
	}
	if c.cfg.ReadDecision != nil && h <= c.st.Height {
		return c.cfg.ReadDecision(h)
	}
	return nil
}

func digestKey(v uint64, d []byte) string {
	return string(rune(0)) + hex.EncodeToString(d) + "@" + u64s(v)
}

func u64s(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}
