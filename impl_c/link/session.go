package link

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"heraclius/impl_c/manifest"
	"heraclius/impl_c/noise"
	"heraclius/impl_c/stream"
	"heraclius/impl_c/wire"
)

// Protocol is the SPEC 13 Noise protocol name.
const Protocol = "Noise_XX_25519_ChaChaPoly_BLAKE2b"

// HandshakeTimeout is the SPEC 13 deadline.
const HandshakeTimeout = 5 * time.Second

// FirstMessageTimeout is the SPEC 13.1 deadline for message 1 (errata AD-3).
const FirstMessageTimeout = 1 * time.Second

// Prologue returns "heraclius/v1" || 0x00 || network_id.
func Prologue(network string) []byte {
	return append([]byte("heraclius/v1\x00"), network...)
}

// Session is an established, encrypted link.
type Session struct {
	conn   net.Conn
	send   *noise.CipherState
	recv   *noise.CipherState
	parser *stream.Parser
	queue  [][]byte
	wmu    sync.Mutex
	// Remote is the authenticated remote node (nil for a client).
	Remote *manifest.Node
	// RemoteStatic is the remote static key.
	RemoteStatic []byte
	// Budget, when set, counts the bytes of partial messages held by all
	// sessions sharing it; Read waits while it is above BudgetLimit (13.1).
	Budget      *atomic.Int64
	BudgetLimit int64
	held        int64
	hmu         sync.Mutex
	// OnStall, when set, is asked every StallPoll while a write is blocked,
	// with the time the socket last accepted bytes of this session (or the
	// write began): true keeps waiting, false fails the write (ErrStalled).
	// Unset, a write that took nothing for StallTimeout fails.
	OnStall   func(lastTaken time.Time) bool
	lastTaken atomic.Int64 // unix ns: socket last accepted bytes (or a write began)
	closed    bool
}

// ErrFrame is a bad Noise frame.
var ErrFrame = errors.New("bad frame")

func readFrame(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint16(l[:])
	if n == 0 {
		return nil, ErrFrame
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

func writeFrame(w io.Writer, b []byte) error {
	if len(b) == 0 || len(b) > 65535 {
		return ErrFrame
	}
	f := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(f, uint16(len(b)))
	copy(f[2:], b)
	_, err := w.Write(f)
	return err
}

func randomKey() ([]byte, error) {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	return b, err
}

// Params of a handshake.
type Params struct {
	M          *manifest.Manifest
	Static     noise.KeyPair
	SelfID     string    // "" for a client
	Port       string    // "peer" or "client"
	Dialled    string    // initiator: the node dialled
	MaxMessage int       // application message limit for what we receive
	Accepted   time.Time // responder: when the connection was accepted
}

func (p *Params) hello() []byte {
	return wire.Encode(&wire.Hello{ProtocolVersion: 1, NetworkID: p.M.NetworkID, NodeID: p.SelfID})
}

// Client runs the initiator side on conn.
func Client(conn net.Conn, p Params) (*Session, error) {
	conn.SetDeadline(time.Now().Add(HandshakeTimeout))
	defer conn.SetDeadline(time.Time{})
	hs, err := noise.NewHandshake(noise.Config{Protocol: Protocol, Initiator: true, Prologue: Prologue(p.M.NetworkID), Static: p.Static, Random: randomKey})
	if err != nil {
		return nil, err
	}
	m1, err := hs.WriteMessage(nil)
	if err != nil {
		return nil, err
	}
	if err := writeFrame(conn, m1); err != nil {
		return nil, err
	}
	m2, err := readFrame(conn)
	if err != nil {
		return nil, refuse("handshake_failed", "message 2: %v", err)
	}
	if err := CheckHandshakeSize(2, len(m2)); err != nil {
		return nil, err
	}
	pl, err := hs.ReadMessage(m2)
	if err != nil {
		return nil, refuse("handshake_failed", "message 2: %v", err)
	}
	h, err := wire.DecodeHello(pl)
	if err != nil {
		return nil, refuse("handshake_failed", "Hello: %v", err)
	}
	node, err := CheckHello(p.M, p.Port, true, p.Dialled, h, hs.RemoteStatic())
	if err != nil {
		return nil, err
	}
	m3, err := hs.WriteMessage(p.hello())
	if err != nil {
		return nil, err
	}
	if err := writeFrame(conn, m3); err != nil {
		return nil, err
	}
	s, r := hs.Split(true)
	return &Session{conn: conn, send: s, recv: r, parser: stream.NewParser(p.MaxMessage), Remote: node, RemoteStatic: hs.RemoteStatic()}, nil
}

// Server runs the responder side on conn.
func Server(conn net.Conn, p Params) (*Session, error) {
	start := p.Accepted
	if start.IsZero() {
		start = time.Now()
	}
	conn.SetDeadline(start.Add(FirstMessageTimeout))
	defer conn.SetDeadline(time.Time{})
	hs, err := noise.NewHandshake(noise.Config{Protocol: Protocol, Initiator: false, Prologue: Prologue(p.M.NetworkID), Static: p.Static, Random: randomKey})
	if err != nil {
		return nil, err
	}
	m1, err := readFrame(conn)
	if err != nil {
		return nil, refuse("handshake_failed", "message 1: %v", err)
	}
	if err := CheckHandshakeSize(1, len(m1)); err != nil {
		return nil, err
	}
	if _, err := hs.ReadMessage(m1); err != nil {
		return nil, refuse("handshake_failed", "message 1: %v", err)
	}
	conn.SetDeadline(start.Add(HandshakeTimeout))
	m2, err := hs.WriteMessage(p.hello())
	if err != nil {
		return nil, refuse("handshake_failed", "message 2: %v", err)
	}
	if err := writeFrame(conn, m2); err != nil {
		return nil, err
	}
	m3, err := readFrame(conn)
	if err != nil {
		return nil, refuse("handshake_failed", "message 3: %v", err)
	}
	if err := CheckHandshakeSize(3, len(m3)); err != nil {
		return nil, err
	}
	pl, err := hs.ReadMessage(m3)
	if err != nil {
		return nil, refuse("handshake_failed", "message 3: %v", err)
	}
	h, err := wire.DecodeHello(pl)
	if err != nil {
		return nil, refuse("handshake_failed", "Hello: %v", err)
	}
	node, err := CheckHello(p.M, p.Port, false, "", h, hs.RemoteStatic())
	if err != nil {
		return nil, err
	}
	s, r := hs.Split(true)
	return &Session{conn: conn, send: s, recv: r, parser: stream.NewParser(p.MaxMessage), Remote: node, RemoteStatic: hs.RemoteStatic()}, nil
}

// Write sends one application message (safe for concurrent use).
func (s *Session) Write(msg []byte) error {
	frame := stream.Frame(msg)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	out := make([]byte, 0, len(frame)+len(frame)/stream.MaxPayload*18+18)
	for _, chunk := range stream.Split(frame) {
		ct, err := s.send.EncryptWithAd(nil, chunk)
		if err != nil {
			return err
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(ct)))
		out = append(out, ct...)
	}
	// The socket is polled every StallPoll; the caller decides, from the
	// time it last took bytes, whether a stall ends the write (SPEC 13.1,
	// errata AD-6).
	s.lastTaken.Store(time.Now().UnixNano())
	for len(out) > 0 {
		s.conn.SetWriteDeadline(time.Now().Add(StallPoll))
		k, err := s.conn.Write(out)
		out = out[k:]
		if k > 0 {
			s.lastTaken.Store(time.Now().UnixNano())
		}
		if err == nil {
			continue
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return err
		}
		last := time.Unix(0, s.lastTaken.Load())
		if s.OnStall != nil {
			if !s.OnStall(last) {
				return ErrStalled
			}
		} else if time.Since(last) >= StallTimeout {
			return ErrStalled
		}
	}
	return nil
}

// LastTaken is when the socket last accepted bytes of a write (or a write began).
func (s *Session) LastTaken() time.Time { return time.Unix(0, s.lastTaken.Load()) }

// StallTimeout is how long a write may take nothing before it is a stall.
var StallTimeout = 10 * time.Second

// StallPoll is how often a blocked write looks at its progress.
var StallPoll = 250 * time.Millisecond

// ErrStalled is a write that took nothing for StallTimeout.
var ErrStalled = errors.New("peer took nothing for 10 s")

// ReadError carries the SPEC 15 reason of a failed read.
type ReadError struct {
	Reason string
	Err    error
}

func (e *ReadError) Error() string { return e.Reason + ": " + e.Err.Error() }

// Read returns the next application message (raw encoding).
func (s *Session) Read() ([]byte, error) {
	for len(s.queue) == 0 {
		for s.Budget != nil && s.Budget.Load() > s.BudgetLimit && s.heldNow() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		f, err := readFrame(s.conn)
		if err != nil {
			if errors.Is(err, ErrFrame) {
				return nil, &ReadError{"malformed", err}
			}
			return nil, err
		}
		p, err := s.recv.DecryptWithAd(nil, f)
		if err != nil {
			return nil, &ReadError{"decrypt_failed", err}
		}
		msgs, err := s.parser.Feed(p)
		if s.Budget != nil {
			now := int64(s.parser.Buffered())
			s.hmu.Lock()
			if !s.closed {
				s.Budget.Add(now - s.held)
				s.held = now
			}
			s.hmu.Unlock()
		}
		s.queue = append(s.queue, msgs...)
		if err != nil {
			if len(s.queue) == 0 {
				reason := "malformed"
				if errors.Is(err, stream.ErrOversized) {
					reason = "oversized"
				}
				return nil, &ReadError{reason, err}
			}
			s.queue = append(s.queue, nil) // error marker after the good ones
		}
	}
	m := s.queue[0]
	s.queue = s.queue[1:]
	if m == nil {
		return nil, &ReadError{"malformed", errors.New("bad application frame")}
	}
	return m, nil
}

// Close closes the connection (and releases its share of the budget).
func (s *Session) Close() error {
	s.hmu.Lock()
	if s.Budget != nil && s.held != 0 {
		s.Budget.Add(-s.held)
		s.held = 0
	}
	s.closed = true
	s.hmu.Unlock()
	return s.conn.Close()
}

func (s *Session) heldNow() int64 {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	return s.held
}

// Conn returns the TCP connection.
func (s *Session) Conn() net.Conn { return s.conn }
