package node

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"heraclius/impl_c/core"
	"heraclius/impl_c/link"
	"heraclius/impl_c/manifest"
	"heraclius/impl_c/wire"
)

// peerLink is the outbound link to one node, owned by its dial goroutine.
type peerLink struct {
	n        *Node
	peer     *manifest.Node
	ch       chan []byte
	up       atomic.Bool
	downSent atomic.Bool
	lastSeen atomic.Int64
}

func (p *peerLink) enqueue(b []byte) {
	select {
	case p.ch <- b:
	default: // full: drop (retransmissions cover it)
	}
}

func (n *Node) startPeers(ctx context.Context) {
	want := map[string]*manifest.Node{}
	for _, m := range n.self.Cluster.Nodes {
		if m.ID != n.self.ID {
			want[m.ID] = m
		}
	}
	for _, c := range n.m.Clusters {
		if c.Role != n.self.Cluster.Role {
			for _, m := range c.Nodes {
				want[m.ID] = m
			}
		}
	}
	for id, m := range want {
		p := &peerLink{n: n, peer: m, ch: make(chan []byte, peerQueuedMessages)}
		n.peers[id] = p
	}
	for _, p := range n.peers {
		go p.run(ctx)
	}
}

func (p *peerLink) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if p.session(ctx) {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff *= 2
		if backoff > 2*time.Second {
			backoff = 2 * time.Second
		}
	}
}

// session dials, runs one connection and returns whether it was established.
func (p *peerLink) session(ctx context.Context) bool {
	n := p.n
	d := net.Dialer{Timeout: 3 * time.Second}
	if ip := net.ParseIP(n.self.Bind); ip != nil {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(p.peer.Host, strconv.Itoa(p.peer.Ports.Peer)))
	if err != nil && d.LocalAddr != nil {
		d.LocalAddr = nil
		c, err = d.DialContext(ctx, "tcp", net.JoinHostPort(p.peer.Host, strconv.Itoa(p.peer.Ports.Peer)))
	}
	if err != nil {
		p.signalDown()
		return false
	}
	s, err := link.Client(c, link.Params{M: n.m, Static: n.static, SelfID: n.self.ID, Port: "peer", Dialled: p.peer.ID, MaxMessage: n.m.Limits.MaxMessageBytes})
	if err != nil {
		n.reject("handshake_failed", p.peer.ID, "outbound handshake: "+err.Error())
		c.Close()
		p.signalDown()
		return false
	}
	id := n.newConnID()
	oc := newOutConn(id, s)
	n.conns.Store(id, oc)
	p.up.Store(true)
	p.downSent.Store(false)
	p.lastSeen.Store(nowMs())
	n.log.Log("info", "peer_up", "outbound link established", map[string]any{"peer": p.peer.ID})
	n.push(core.LinkUp{Peer: p.peer.ID})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				n.reject("malformed", p.peer.ID, "panic on input")
			}
		}()
		for {
			b, err := s.Read()
			if err != nil {
				n.readErr(err, p.peer.ID)
				return
			}
			m, err := wire.DecodePeerMessage(b)
			if err != nil {
				n.reject(wire.Reason(err), p.peer.ID, "peer message: "+err.Error())
				return
			}
			p.lastSeen.Store(nowMs())
			n.push(core.PeerIn{From: p.peer.ID, Conn: id, Msg: m})
		}
	}()
	for {
		select {
		case <-ctx.Done():
			s.Close()
			<-done
			p.down(id)
			return true
		case <-done:
			s.Close()
			p.down(id)
			return true
		case b := <-p.ch:
			if err := s.Write(b); err != nil {
				s.Close()
				<-done
				p.down(id)
				return true
			}
		case b := <-oc.ch:
			oc.queued.Add(-int64(len(b)))
			if err := s.Write(b); err != nil {
				s.Close()
				<-done
				p.down(id)
				return true
			}
		}
	}
}

func (p *peerLink) down(id core.ConnID) {
	p.up.Store(false)
	p.n.conns.Delete(id)
	p.n.log.Log("info", "peer_down", "outbound link closed", map[string]any{"peer": p.peer.ID})
	select {
	case p.n.events <- core.ConnGone{Conn: id}:
	default:
	}
	p.signalDown()
}

// signalDown tells the core once per outage that this link is down.
func (p *peerLink) signalDown() {
	if p.downSent.Swap(true) {
		return
	}
	select {
	case p.n.events <- core.LinkDown{Peer: p.peer.ID}:
	default:
		p.downSent.Store(false)
	}
}
