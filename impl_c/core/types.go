// Package core is the pure consensus and execution core of an impl_c node
// (SPEC 10 to 12, 14.3): a state machine driven by Step(now, event) that
// returns a Ready of records to make durable, messages to send and client
// replies. It does no I/O and reads no clock: time is the now argument.
// The driver (package node) must persist Ready.Persist durably before it
// sends Ready.Send and Ready.Client.
package core

import "heraclius/impl_c/wire"

// ConnID names a connection owned by the driver.
type ConnID uint64

// Events.
type (
	// Tick lets timers fire.
	Tick struct{}
	// PeerIn is a message from an authenticated manifest node on connection Conn.
	PeerIn struct {
		From string
		Conn ConnID
		Msg  *wire.PeerMessage
	}
	// ClientIn is a decoded client-port message on connection Conn.
	// SigOK tells that the driver already verified its signature.
	ClientIn struct {
		Conn ConnID
		Msg  *wire.ClientMessage
	}
	// ClientGone tells that a client connection closed.
	ClientGone struct{ Conn ConnID }
	// LinkUp tells that the outbound link to a peer is established.
	LinkUp struct{ Peer string }
	// LinkDown tells that the outbound link to a peer is down (closed, or a dial failed).
	LinkDown struct{ Peer string }
	// ConnGone tells that an inbound/outbound connection was closed.
	ConnGone struct{ Conn ConnID }
)

// RecordKind is the kind of a durable record.
type RecordKind int

// Durable record kinds.
const (
	RecView     RecordKind = iota + 1 // View: the view entered
	RecVote                           // Data: encoded Proposal accepted (and voted) at (View, Height)
	RecPrepared                       // Data: encoded PreparedCert; Sig: decision signature
	RecDecision                       // Data: encoded Decision with QC at Height
	RecNewView                        // Data: encoded NewView that installed View
)

// Record is one durable write.
type Record struct {
	Kind   RecordKind
	View   uint64
	Height uint64
	Data   []byte
	Sig    []byte
}

// Out is a peer message: to node To on its outbound link, or back on the
// connection Conn when Conn != 0.
type Out struct {
	To   string
	Conn ConnID
	Msg  *wire.PeerMessage
}

// ClientOut is a reply on a client connection.
type ClientOut struct {
	Conn  ConnID
	Reply *wire.ClientReply
}

// LogLine is a structured log event.
type LogLine struct {
	Level  string
	Event  string
	Msg    string
	Fields map[string]any
}

// Ready is what one Step produced.
type Ready struct {
	Persist []Record
	Send    []Out
	Client  []ClientOut
	Logs    []LogLine
	// WakeAt, when not 0, is the Unix ms at which the core wants a Tick
	// (sooner than the driver's periodic one, e.g. at the end of batch_wait).
	WakeAt int64
}

// Merge appends o to r (group commit of several steps).
func (r *Ready) Merge(o Ready) {
	r.Persist = append(r.Persist, o.Persist...)
	r.Send = append(r.Send, o.Send...)
	r.Client = append(r.Client, o.Client...)
	r.Logs = append(r.Logs, o.Logs...)
	if o.WakeAt != 0 && (r.WakeAt == 0 || o.WakeAt < r.WakeAt) {
		r.WakeAt = o.WakeAt
	}
}

func (r *Ready) empty() bool {
	return len(r.Persist) == 0 && len(r.Send) == 0 && len(r.Client) == 0 && len(r.Logs) == 0
}

// Evidence is a Byzantine evidence record (SPEC 15).
type Evidence struct {
	ID       string
	Node     string
	Kind     string
	Detail   string
	TimeMs   int64
	Messages [][]byte
}

// Restored is the durable state loaded at start (SPEC 12.9).
type Restored struct {
	Decisions []*wire.Decision
	View      uint64
	Vote      *wire.Proposal
	Prepared  *wire.PreparedCert
	PrepSig   []byte
	NewView   *wire.NewView
}

type coreError string

func (e coreError) Error() string { return string(e) }

const errReplay = coreError("replayed decision does not re-execute to its header")
