package node

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"

	"heraclius/impl_c/internal/testkit"
	"heraclius/impl_c/link"
	"heraclius/impl_c/noise"
)

// clientSession is the node side of a client-port session over a pipe; the
// client end reads readFirst bytes, then nothing.
func clientSession(t *testing.T, net0 *testkit.Net, readFirst int64) *link.Session {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	srvKP, err := noise.NewKeyPair(net0.X["c0-n0"])
	if err != nil {
		t.Fatal(err)
	}
	seed := make([]byte, 32)
	rand.Read(seed)
	cliKP, err := noise.NewKeyPair(seed)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := link.Client(b, link.Params{M: net0.M, Static: cliKP, Port: "client", Dialled: "c0-n0", MaxMessage: 1 << 24})
		if err == nil {
			io.CopyN(io.Discard, b, readFirst)
		}
		done <- err
	}()
	s, err := link.Server(a, link.Params{M: net0.M, Static: srvKP, SelfID: "c0-n0", Port: "client", MaxMessage: maxClientMessage, Accepted: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	return s
}

func shortStall(t *testing.T) {
	st, sp := link.StallTimeout, link.StallPoll
	link.StallTimeout, link.StallPoll = 500*time.Millisecond, 20*time.Millisecond
	t.Cleanup(func() { link.StallTimeout, link.StallPoll = st, sp })
}

// SPEC 13.1 / errata AD-6: a client connection with more than 1 MiB queued
// whose socket took nothing for 10 s (here StallTimeout) is closed, and the
// rejection is counted slow_peer at once; with 1 MiB or less it stays open.
func TestNeverReadingClientClosedSlowPeer(t *testing.T) {
	shortStall(t)
	tk, err := testkit.New("stall-net", 41100, nil)
	if err != nil {
		t.Fatal(err)
	}
	answer := make([]byte, 60000)
	for _, tc := range []struct {
		name    string
		answers int
		closed  bool
	}{
		{"over 1 MiB queued", 20, true}, // 1.2 MB
		{"under 1 MiB queued", 15, false},
	} {
		var logbuf bytes.Buffer
		n := &Node{m: tk.M, self: tk.M.Node("c0-n0"), log: NewLogger(&logbuf, "c0-n0", "info"), rejected: map[string]uint64{}}
		oc := newOutConn(1, clientSession(t, tk, 100000))
		oc.client = true
		n.watchStall(oc)
		go oc.writer()
		start := time.Now()
		for i := 0; i < tc.answers; i++ {
			if !oc.enqueue(answer) {
				t.Fatalf("%s: enqueue %d refused", tc.name, i)
			}
		}
		var closedAt time.Duration
		select {
		case <-oc.done:
			closedAt = time.Since(start)
		case <-time.After(3 * link.StallTimeout):
		}
		n.rejMu.Lock()
		slow := n.rejected["slow_peer"]
		n.rejMu.Unlock()
		if (closedAt != 0) != tc.closed {
			t.Fatalf("%s: closed %v (after %v), want %v", tc.name, closedAt != 0, closedAt, tc.closed)
		}
		if tc.closed {
			if closedAt < link.StallTimeout || closedAt > link.StallTimeout+300*time.Millisecond {
				t.Fatalf("%s: closed %v after the queue stalled, want about %v", tc.name, closedAt, link.StallTimeout)
			}
			if slow != 1 {
				t.Fatalf("%s: slow_peer %d when closed, want 1", tc.name, slow)
			}
		} else {
			if slow != 0 {
				t.Fatalf("%s: slow_peer %d, want 0", tc.name, slow)
			}
			oc.close()
		}
	}
}
