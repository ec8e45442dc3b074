// Package node is the driver of an impl_c node: it owns the sockets, the
// bbolt store, the clock and the goroutines, and feeds a core.Core with
// events (SPEC 4, 12.8, 13, 14, 15).
package node

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"heraclius/impl_c/admin"
	"heraclius/impl_c/core"
	"heraclius/impl_c/internal/linger"
	"heraclius/impl_c/link"
	"heraclius/impl_c/manifest"
	"heraclius/impl_c/noise"
	"heraclius/impl_c/rsm"
	"heraclius/impl_c/sig"
	"heraclius/impl_c/store"
	"heraclius/impl_c/wire"
)

// Limits of SPEC 13.1 this driver enforces.
const (
	maxHandshaking     = 64
	maxClientSessions  = 1024
	maxClientMessage   = 262160
	connQueue          = 4096
	eventQueue         = 8192
	tickEvery          = 25 * time.Millisecond
	snapshotEvery      = 200 * time.Millisecond
	clientQueuedMax    = 4 << 20
	clientReadStop     = 1 << 20 // stop reading a client connection over this (13.1)
	peerQueuedMessages = 16384
)

// outConn is a connection the core can send on.
type outConn struct {
	id     core.ConnID
	sess   *link.Session
	ch     chan []byte
	queued atomic.Int64
	// overSince (unix ns) is when queued last went over clientReadStop, 0
	// while at or under it (errata AD-6).
	overSince atomic.Int64
	client    bool
	once      sync.Once
	done      chan struct{}
}

func newOutConn(id core.ConnID, s *link.Session) *outConn {
	return &outConn{id: id, sess: s, ch: make(chan []byte, connQueue), done: make(chan struct{})}
}

func (o *outConn) close() {
	o.once.Do(func() {
		close(o.done)
		o.sess.Close()
	})
}

func (o *outConn) enqueue(b []byte) bool {
	if o.queued.Load()+int64(len(b)) > clientQueuedMax {
		return false
	}
	select {
	case o.ch <- b:
		if o.queued.Add(int64(len(b))) > clientReadStop {
			o.overSince.CompareAndSwap(0, time.Now().UnixNano())
		}
		return true
	case <-o.done:
		return false
	default:
		return false
	}
}

// stalled: more than clientReadStop has been queued, and the socket took
// none of it, for link.StallTimeout (SPEC 13.1, errata AD-6). lastTaken is
// when the socket last accepted bytes of the write in progress (or it began).
func (o *outConn) stalled(lastTaken, now time.Time) bool {
	if o.queued.Load() <= clientReadStop {
		return false
	}
	ov := o.overSince.Load()
	if ov == 0 { // raced with the writer's decrement: over from now
		o.overSince.CompareAndSwap(0, now.UnixNano())
		return false
	}
	from := lastTaken
	if t := time.Unix(0, ov); t.After(from) {
		from = t
	}
	return now.Sub(from) >= link.StallTimeout
}

// watchStall closes a client connection, slow_peer, once over 1 MiB has
// been queued to it and its socket took nothing for 10 s (SPEC 13.1,
// errata AD-6); under 1 MiB it keeps waiting (reading stops only over it).
func (n *Node) watchStall(oc *outConn) {
	oc.sess.OnStall = func(lastTaken time.Time) bool {
		if oc.stalled(lastTaken, time.Now()) {
			n.reject("slow_peer", "client", "client took nothing for 10 s with over 1 MiB queued")
			return false
		}
		return true
	}
}

func (o *outConn) writer() {
	for {
		select {
		case b := <-o.ch:
			err := o.sess.Write(b)
			if o.queued.Add(-int64(len(b))) <= clientReadStop {
				o.overSince.Store(0)
			}
			if err != nil {
				o.close()
				return
			}
		case <-o.done:
			return
		}
	}
}

// durable is what the driver needs from the store (an interface so that
// tests can make a write fail).
type durable interface {
	Write([]core.Record) error
	Decision(h uint64) (*wire.Decision, error)
}

// Node is a running node.
type Node struct {
	m      *manifest.Manifest
	self   *manifest.Node
	log    *Logger
	core   *core.Core
	st     durable
	static noise.KeyPair
	cache  *rsm.SigCache
	rules  []*faultRule

	events   chan any
	conns    sync.Map // core.ConnID -> *outConn
	nextConn atomic.Uint64
	peers    map[string]*peerLink

	snap           atomic.Pointer[snapshot]
	ready          atomic.Bool
	rejMu          sync.Mutex
	rejected       map[string]uint64
	hsSlots        map[string]*hsSlots
	coreRej        atomic.Pointer[map[string]uint64] // the core's rejections, copied when they change
	coreRejSum     uint64
	clientN        atomic.Int64
	clientBuffered atomic.Int64
	sessMu         sync.Mutex
	unbound        map[core.ConnID]*unboundSess
	boundBy        map[string]int
	inbound        map[string]*outConn
	started        time.Time
}

func (n *Node) reject(reason string, peer string, msg string) {
	n.rejMu.Lock()
	n.rejected[reason]++
	n.rejMu.Unlock()
	n.log.Log("warning", "rejected", msg, map[string]any{"reason": reason, "peer": peer})
}

func nowMs() int64 { return time.Now().UnixMilli() }

// Main runs the node command line and returns the exit code.
func Main(args []string) int {
	fs := flag.NewFlagSet("heraclius-node", flag.ContinueOnError)
	mf := fs.String("manifest", "", "manifest file")
	id := fs.String("node-id", "", "node id")
	keys := fs.String("keys", "", "key directory")
	data := fs.String("data", "", "data directory")
	logf := fs.String("log", "", "log file")
	level := fs.String("log-level", "info", "debug|info|warning|error")
	if err := fs.Parse(args); err != nil || *mf == "" || *id == "" || *keys == "" || *data == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: heraclius-node --manifest FILE --node-id ID --keys DIR --data DIR [--log FILE] [--log-level L]")
		return 2
	}
	if _, ok := levels[*level]; !ok {
		fmt.Fprintln(os.Stderr, "bad --log-level")
		return 2
	}
	var w io.Writer = os.Stderr
	if *logf != "" {
		f, err := os.OpenFile(*logf, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "log file:", err)
			return 2
		}
		defer f.Close()
		w = f
	}
	lg := NewLogger(w, *id, *level)
	m, err := manifest.LoadFile(*mf)
	if err != nil {
		lg.Log("error", "bad_manifest", err.Error(), nil)
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	self := m.Node(*id)
	if self == nil {
		lg.Log("error", "bad_manifest", "unknown node id "+*id, nil)
		fmt.Fprintln(os.Stderr, "unknown node id", *id)
		return 2
	}
	edSeed, err := ReadKeyFile(filepath.Join(*keys, "ed25519.key"))
	if err != nil {
		lg.Log("error", "bad_key", err.Error(), nil)
		return 3
	}
	xSec, err := ReadKeyFile(filepath.Join(*keys, "x25519.key"))
	if err != nil {
		lg.Log("error", "bad_key", err.Error(), nil)
		return 3
	}
	signer := sig.NewSigner(edSeed)
	static, err := noise.NewKeyPair(xSec)
	if err != nil || !bytes.Equal(signer.Pub, self.Ed25519) || !bytes.Equal(static.Pub, self.X25519) {
		lg.Log("error", "bad_key", "public key derived from a key file differs from the manifest", nil)
		return 3
	}
	st, err := store.Open(*data)
	if err != nil {
		lg.Log("error", "data_unusable", err.Error(), nil)
		return 4
	}
	defer st.Close()
	restored, err := st.Load()
	if err != nil {
		lg.Log("error", "data_unusable", err.Error(), nil)
		return 4
	}
	cache := rsm.NewSigCache()
	n := &Node{m: m, self: self, log: lg, st: st, static: static, cache: cache, rules: newRules(self.Faults),
		events: make(chan any, eventQueue), peers: map[string]*peerLink{}, rejected: map[string]uint64{}, started: time.Now(),
		unbound: map[core.ConnID]*unboundSess{}, boundBy: map[string]int{}, hsSlots: map[string]*hsSlots{"peer": {}, "client": {}}}
	n.core = core.New(core.Config{M: m, Self: self.ID, Signer: signer, Cache: cache, Faults: n.coreFaults(),
		ReadDecision: func(h uint64) *wire.Decision {
			d, err := st.Decision(h)
			if err != nil {
				n.storageFailed("read", err)
			}
			return d
		},
		ReadAnswer: func(client []byte, id uint64) (uint64, bool) {
			h, ok, err := st.Answer(client, id)
			if err != nil {
				n.storageFailed("read", err)
			}
			return h, ok
		}})
	if err := n.core.Restore(nowMs(), restored); err != nil {
		lg.Log("error", "data_unusable", "replay: "+err.Error(), nil)
		return 4
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	code := make(chan int, 1)
	if err := n.listen(ctx); err != nil {
		lg.Log("error", "listen_failed", err.Error(), nil)
		return 1
	}
	n.startPeers(ctx)
	h0, v0 := n.core.Height(), n.core.View()
	go func() {
		defer func() {
			if r := recover(); r != nil {
				lg.Log("error", "internal", fmt.Sprintf("core panic: %v", r), map[string]any{"stack": string(debug.Stack())})
				code <- 1
			}
		}()
		code <- n.loop(ctx)
	}()
	n.ready.Store(true)
	lg.Log("info", "ready", "node ready", map[string]any{"height": h0, "view": v0,
		"cluster": self.Cluster.ID, "implementation": "impl_c"})
	select {
	case s := <-sigs:
		lg.Log("info", "stopping", "signal "+s.String()+": clean stop", nil)
		cancel()
		select {
		case c := <-code:
			if c != 0 {
				return c
			}
		case <-time.After(3 * time.Second):
		}
		return 0
	case c := <-code:
		return c
	}
}

func (n *Node) coreFaults() core.Faults {
	f := core.Faults{CensorKeys: map[string]bool{}}
	for _, r := range n.rules {
		r := r
		switch r.Action {
		case "bad_signature":
			f.BadSignature = func(kind string) bool { return r.matches(kind, "") }
		case "equivocate":
			f.EquivocateOn = true
			f.Equivocate = r.Targets
			if len(f.Equivocate) == 0 {
				for _, m := range n.self.Cluster.Nodes {
					if m.ID != n.self.ID {
						f.Equivocate = append(f.Equivocate, m.ID)
					}
				}
			}
		case "tamper_compact":
			f.Tamper = true
		case "withhold_queue":
			f.Withhold = true
		case "skip_queue_seq":
			f.SkipSeq = true
		case "false_client_response":
			f.FalseClient = true
		case "wrong_result":
			f.WrongResult = true
		case "censor_client":
			for _, c := range r.Clients {
				for _, mc := range n.m.Clients {
					if mc.ID == c {
						k, _ := hexDecode(mc.Ed25519Hex)
						f.CensorKeys[string(k)] = true
					}
				}
			}
		}
	}
	return f
}

// limitClientQueues closes the client connection with the most queued bytes
// while all client connections together queue more than 16 MiB (13.1).
func (n *Node) limitClientQueues() {
	for {
		var total int64
		var worst *outConn
		n.conns.Range(func(_, v any) bool {
			oc := v.(*outConn)
			if !oc.client {
				return true
			}
			q := oc.queued.Load()
			total += q
			if worst == nil || q > worst.queued.Load() {
				worst = oc
			}
			return true
		})
		if total <= 16<<20 || worst == nil {
			return
		}
		n.reject("slow_peer", "client", "client queues over 16 MiB: closing the largest")
		n.conns.Delete(worst.id)
		worst.close()
	}
}

// storageFailed is SPEC 12.8 fail-stop: one error line, exit 5, nothing sent after.
func (n *Node) storageFailed(op string, err error) {
	n.log.Log("error", "storage_failed", "storage "+op+" failed: "+err.Error(), map[string]any{"operation": op})
	exitNow(5)
}

// loop is the single owner of the core.
func (n *Node) loop(ctx context.Context) int {
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	wake := time.NewTimer(time.Hour)
	defer wake.Stop()
	var wakeAt int64
	lastSnap := time.Time{}
	if r := n.core.AfterRestore(nowMs()); true {
		if c := n.handle(r); c != 0 {
			return c
		}
	}
	n.publish()
	for {
		var r core.Ready
		select {
		case <-ctx.Done():
			return 0
		case ev := <-n.events:
			r = n.core.Step(nowMs(), ev)
			// Group commit: step every event already queued (bounded), then
			// make all their records durable in one write before any send.
		drain:
			for i := 0; i < 256; i++ {
				select {
				case ev := <-n.events:
					r.Merge(n.core.Step(nowMs(), ev))
				default:
					break drain
				}
			}
		case <-tick.C:
			r = n.core.Step(nowMs(), core.Tick{})
		case <-wake.C:
			wakeAt = 0
			r = n.core.Step(nowMs(), core.Tick{})
		}
		if r.WakeAt != 0 && (wakeAt == 0 || r.WakeAt < wakeAt) {
			wakeAt = r.WakeAt
			d := time.Duration(r.WakeAt-nowMs()) * time.Millisecond
			if d < 0 {
				d = 0
			}
			if !wake.Stop() {
				select {
				case <-wake.C:
				default:
				}
			}
			wake.Reset(d)
		}
		n.noteCoreRejections()
		if c := n.handle(r); c != 0 {
			return c
		}
		if time.Since(lastSnap) >= snapshotEvery {
			lastSnap = time.Now()
			n.publish()
		}
	}
}

// noteCoreRejections publishes the core's rejection counters as soon as
// they change (before the answers that follow them are sent), so that /status
// counts a rejected request by the time its client has the answer.
func (n *Node) noteCoreRejections() {
	var sum uint64
	for _, v := range n.core.Rejected {
		sum += v
	}
	if sum == n.coreRejSum && n.coreRej.Load() != nil {
		return
	}
	n.coreRejSum = sum
	m := make(map[string]uint64, len(n.core.Rejected))
	for k, v := range n.core.Rejected {
		m[k] = v
	}
	n.coreRej.Store(&m)
}

// handle persists, then sends (SPEC 12.8); a failed write is fail-stop.
func (n *Node) handle(r core.Ready) int {
	if len(r.Persist) > 0 {
		if err := n.st.Write(r.Persist); err != nil {
			n.storageFailed("write", err)
		}
	}
	for _, l := range r.Logs {
		n.log.Log(l.Level, l.Event, l.Msg, l.Fields)
	}
	for _, o := range r.Send {
		n.sendPeer(o)
	}
	for _, c := range r.Client {
		if v, ok := n.conns.Load(c.Conn); ok {
			oc := v.(*outConn)
			if !oc.enqueue(wire.Encode(c.Reply)) {
				n.reject("slow_peer", "client", "client connection not reading (over 4 MiB queued)")
				oc.close()
			}
		}
	}
	if len(r.Client) > 0 {
		n.limitClientQueues()
	}
	return 0
}

func (n *Node) sendPeer(o core.Out) {
	kind := msgKind(o.Msg)
	target := o.To
	if hasAction(n.rules, "silent") != nil {
		return
	}
	b := wire.Encode(o.Msg)
	copies := 1
	var delay time.Duration
	for _, r := range n.rules {
		switch r.Action {
		case "drop", "delay", "duplicate", "mutate":
			if !r.matches(kind, target) {
				continue
			}
			switch r.Action {
			case "drop":
				return
			case "delay":
				delay = time.Duration(r.DelayMs) * time.Millisecond
			case "duplicate":
				copies = 2
			case "mutate":
				b = append([]byte{}, b...)
				b[r.rng.Intn(len(b))] ^= 0x01
			}
		}
	}
	deliver := func() {
		for i := 0; i < copies; i++ {
			if o.Conn != 0 {
				if v, ok := n.conns.Load(o.Conn); ok {
					v.(*outConn).enqueue(b)
				}
				continue
			}
			if p := n.peers[o.To]; p != nil {
				p.enqueue(b)
			}
		}
	}
	if delay > 0 {
		time.AfterFunc(delay, deliver)
		return
	}
	deliver()
}

func (n *Node) push(ev any) {
	n.events <- ev
}

func (n *Node) newConnID() core.ConnID { return core.ConnID(n.nextConn.Add(1)) }

func (n *Node) listen(ctx context.Context) error {
	peerL, err := net.Listen("tcp", net.JoinHostPort(n.self.Bind, strconv.Itoa(n.self.Ports.Peer)))
	if err != nil {
		return err
	}
	clientL, err := net.Listen("tcp", net.JoinHostPort(n.self.Bind, strconv.Itoa(n.self.Ports.Client)))
	if err != nil {
		return err
	}
	adminL, err := net.Listen("tcp", net.JoinHostPort(n.self.AdminBind, strconv.Itoa(n.self.Ports.Admin)))
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); peerL.Close(); clientL.Close(); adminL.Close() }()
	go n.acceptLoop(peerL, "peer")
	go n.acceptLoop(clientL, "client")
	go admin.Serve(ctx, adminL, adminSource{n})
	return nil
}

func (n *Node) acceptLoop(l net.Listener, port string) {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if port == "client" && n.clientN.Load() >= maxClientSessions {
			n.reject("connection_limit", c.RemoteAddr().String(), "too many client sessions")
			c.Close()
			continue
		}
		hs := n.hsSlots[port].admit(c, n)
		go n.serveConn(c, port, hs)
	}
}

// hsSlot is one connection in the handshake phase.
type hsSlot struct {
	conn    net.Conn
	since   time.Time
	evicted atomic.Bool
}

// hsSlots are the 64 handshake slots of one port (SPEC 13.1, errata AD-3):
// when full, the oldest handshake in progress is closed for the new one.
type hsSlots struct {
	mu    sync.Mutex
	slots map[*hsSlot]struct{}
}

func (h *hsSlots) admit(c net.Conn, n *Node) *hsSlot {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.slots == nil {
		h.slots = map[*hsSlot]struct{}{}
	}
	for len(h.slots) >= maxHandshaking {
		var oldest *hsSlot
		for s := range h.slots {
			if oldest == nil || s.since.Before(oldest.since) {
				oldest = s
			}
		}
		delete(h.slots, oldest)
		oldest.evicted.Store(true)
		oldest.conn.Close()
		n.reject("connection_limit", oldest.conn.RemoteAddr().String(), "handshake slots full: oldest handshake closed")
	}
	s := &hsSlot{conn: c, since: time.Now()}
	h.slots[s] = struct{}{}
	return s
}

// done releases the slot; false when it was evicted (already counted).
func (h *hsSlots) done(s *hsSlot) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.slots, s)
	return !s.evicted.Load()
}

func (n *Node) serveConn(c net.Conn, port string, hs *hsSlot) {
	defer func() {
		if r := recover(); r != nil {
			n.reject("malformed", c.RemoteAddr().String(), fmt.Sprintf("panic on input: %v", r))
			c.Close()
		}
	}()
	max := n.m.Limits.MaxMessageBytes
	if port == "client" {
		max = maxClientMessage
	}
	s, err := link.Server(c, link.Params{M: n.m, Static: n.static, SelfID: n.self.ID, Port: port, MaxMessage: max, Accepted: hs.since})
	if !n.hsSlots[port].done(hs) {
		c.Close()
		return
	}
	if err != nil {
		reason := "handshake_failed"
		var he *link.HelloError
		if errors.As(err, &he) {
			reason = he.Reason
		}
		n.reject(reason, c.RemoteAddr().String(), err.Error())
		c.Close()
		return
	}
	id := n.newConnID()
	oc := newOutConn(id, s)
	oc.client = port == "client"
	if oc.client {
		n.watchStall(oc)
	}
	n.conns.Store(id, oc)
	go oc.writer()
	defer func() {
		n.conns.Delete(id)
		oc.close()
		if port == "client" {
			n.push(core.ClientGone{Conn: id})
		} else {
			n.push(core.ConnGone{Conn: id})
		}
	}()
	if port == "client" {
		s.Budget, s.BudgetLimit = &n.clientBuffered, 32<<20
		n.clientN.Add(1)
		defer n.clientN.Add(-1)
		n.readClient(s, id, oc)
		return
	}
	// A newer inbound connection from a node replaces an older one (13).
	n.sessMu.Lock()
	if n.inbound == nil {
		n.inbound = map[string]*outConn{}
	}
	if old := n.inbound[s.Remote.ID]; old != nil {
		old.close()
	}
	n.inbound[s.Remote.ID] = oc
	n.sessMu.Unlock()
	defer func() {
		n.sessMu.Lock()
		if n.inbound[s.Remote.ID] == oc {
			delete(n.inbound, s.Remote.ID)
		}
		n.sessMu.Unlock()
	}()
	n.readPeer(s, s.Remote.ID, id)
}

func (n *Node) readErr(err error, peer string) {
	var re *link.ReadError
	if errors.As(err, &re) {
		n.reject(re.Reason, peer, err.Error())
	}
}

func (n *Node) readPeer(s *link.Session, from string, id core.ConnID) {
	for {
		b, err := s.Read()
		if err != nil {
			n.readErr(err, from)
			return
		}
		m, err := wire.DecodePeerMessage(b)
		if err != nil {
			n.reject(wire.Reason(err), from, "peer message: "+err.Error())
			return
		}
		n.push(core.PeerIn{From: from, Conn: id, Msg: m})
	}
}

type unboundSess struct {
	since time.Time
	sess  *link.Session
}

// Session limits of SPEC 13.1 for the client port.
const (
	maxUnbound     = 64
	unboundIdle    = 10 * time.Second
	maxBoundPerKey = 64
)

func (n *Node) addUnbound(id core.ConnID, s *link.Session) {
	n.sessMu.Lock()
	defer n.sessMu.Unlock()
	if len(n.unbound) >= maxUnbound {
		var oldest core.ConnID
		var t time.Time
		for k, u := range n.unbound {
			if oldest == 0 || u.since.Before(t) {
				oldest, t = k, u.since
			}
		}
		n.unbound[oldest].sess.Close()
		delete(n.unbound, oldest)
		n.countReject("connection_limit")
	}
	n.unbound[id] = &unboundSess{since: time.Now(), sess: s}
}

// bind binds a session to a client key; false when the key has too many sessions.
func (n *Node) bind(id core.ConnID, key string) bool {
	n.sessMu.Lock()
	defer n.sessMu.Unlock()
	if n.boundBy[key] >= maxBoundPerKey {
		return false
	}
	delete(n.unbound, id)
	n.boundBy[key]++
	return true
}

func (n *Node) release(id core.ConnID, key string) {
	n.sessMu.Lock()
	defer n.sessMu.Unlock()
	delete(n.unbound, id)
	if key != "" {
		n.boundBy[key]--
		if n.boundBy[key] <= 0 {
			delete(n.boundBy, key)
		}
	}
}

func (n *Node) readClient(s *link.Session, id core.ConnID, oc *outConn) {
	n.addUnbound(id, s)
	bound := ""
	defer func() { n.release(id, bound) }()
	for {
		// Stop reading while more than 1 MiB of replies wait (13.1 backpressure).
		for oc.queued.Load() > clientReadStop {
			select {
			case <-oc.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		if bound == "" {
			s.Conn().SetReadDeadline(time.Now().Add(unboundIdle))
		} else {
			s.Conn().SetReadDeadline(time.Time{})
		}
		b, err := s.Read()
		if err != nil {
			var ne net.Error
			if bound == "" && errors.As(err, &ne) && ne.Timeout() {
				n.reject("slow_peer", "client", "unbound client session idle")
				return
			}
			n.readErr(err, "client")
			return
		}
		m, err := wire.DecodeClientMessage(b)
		if err != nil {
			n.reject(wire.Reason(err), "client", "client message: "+err.Error())
			return
		}
		var key []byte
		var id0 uint64
		ok := false
		// Verify signatures here, off the core goroutine: the core then hits the cache.
		if r := m.Submit; r != nil {
			key, id0 = r.ClientKey, r.RequestID
			if n.m.ClientByKey(r.ClientKey) != nil {
				u := *r
				u.Signature = nil
				ok = n.cache.Verify(r.ClientKey, sig.DomainClientRequest, n.m.NetworkID, wire.Encode(&u), r.Signature)
			}
		}
		if r := m.Fetch; r != nil {
			key, id0 = r.ClientKey, r.RequestID
			if n.m.ClientByKey(r.ClientKey) != nil {
				u := *r
				u.Signature = nil
				ok = n.cache.Verify(r.ClientKey, sig.DomainClientRequest, n.m.NetworkID, wire.Encode(&u), r.Signature)
			}
		}
		if b := m.SubmitBundle; b != nil {
			key = b.ClientKey
			if len(b.Items) > 0 {
				id0 = b.Items[0].RequestID
			}
			if n.m.ClientByKey(b.ClientKey) != nil && len(b.Items) <= rsm.MaxBundleItems {
				u := *b
				u.Signature = nil
				ok = n.cache.Verify(b.ClientKey, sig.DomainClientBundle, n.m.NetworkID, wire.Encode(&u), b.Signature)
			}
		}
		if bound != "" && string(key) != bound {
			n.reject("unauthorised_client", "client", "session bound to another client key")
			oc.enqueue(wire.Encode(&wire.ClientReply{Error: &wire.ClientError{Code: wire.ClientErrorUnauthorised, RequestID: id0, Message: "session bound to another client key"}}))
			continue
		}
		if bound == "" && ok {
			if !n.bind(id, string(key)) {
				n.reject("connection_limit", "client", "too many sessions for one client key")
				oc.enqueue(wire.Encode(&wire.ClientReply{Error: &wire.ClientError{Code: wire.ClientErrorOverloaded, RequestID: id0, Message: "too many sessions for this client key"}}))
				// Lingering close after the answer (errata AD-7).
				for i := 0; i < 100 && oc.queued.Load() > 0; i++ {
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(10 * time.Millisecond)
				linger.Close(s.Conn())
				return
			}
			bound = string(key)
		}
		n.push(core.ClientIn{Conn: id, Msg: m})
	}
}
