package link

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"heraclius/impl_c/noise"
)

// stallPair is a session whose remote end reads want bytes, then nothing.
func stallPair(t *testing.T, want int) (*Session, net.Conn) {
	a, b := net.Pipe()
	s := &Session{conn: a, send: noise.NewCipherState(make([]byte, 32), 0, false)}
	go func() { io.CopyN(io.Discard, b, int64(want)) }()
	t.Cleanup(func() { a.Close(); b.Close() })
	return s, b
}

func shortStall(t *testing.T) {
	st, sp := StallTimeout, StallPoll
	StallTimeout, StallPoll = 300*time.Millisecond, 20*time.Millisecond
	t.Cleanup(func() { StallTimeout, StallPoll = st, sp })
}

// A write whose socket takes nothing is asked about every StallPoll with the
// time bytes were last taken; false ends it with ErrStalled (errata AD-6).
func TestWriteStallAsksWithLastTaken(t *testing.T) {
	shortStall(t)
	s, _ := stallPair(t, 10000)
	begin := time.Now()
	var asked []time.Time
	s.OnStall = func(last time.Time) bool {
		asked = append(asked, last)
		return time.Since(last) < StallTimeout
	}
	err := s.Write(make([]byte, 60000))
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("write: %v, want ErrStalled", err)
	}
	if len(asked) < 2 {
		t.Fatalf("asked %d times, want several polls", len(asked))
	}
	last := asked[len(asked)-1]
	if !last.After(begin) || !last.Equal(s.LastTaken()) {
		t.Fatalf("last taken %v: want after %v (the 10000 bytes read) and equal to LastTaken %v", last, begin, s.LastTaken())
	}
	if d := time.Since(last); d < StallTimeout || d > StallTimeout+200*time.Millisecond {
		t.Fatalf("ended %v after the last bytes were taken, want about %v", d, StallTimeout)
	}
}

// Partial progress resets the stall clock; a write that keeps progressing
// is never a stall, whatever its length.
func TestWriteSlowProgressIsNoStall(t *testing.T) {
	shortStall(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	s := &Session{conn: a, send: noise.NewCipherState(make([]byte, 32), 0, false)}
	go func() {
		buf := make([]byte, 4096)
		for {
			time.Sleep(100 * time.Millisecond) // < StallTimeout between reads
			if _, err := b.Read(buf); err != nil {
				return
			}
		}
	}()
	s.OnStall = func(last time.Time) bool { return time.Since(last) < StallTimeout }
	if err := s.Write(make([]byte, 30000)); err != nil { // about 0.8 s of reads
		t.Fatalf("slowly read write failed: %v", err)
	}
}

// Without OnStall (peer links) a write that took nothing for StallTimeout fails.
func TestWriteStallWithoutHook(t *testing.T) {
	shortStall(t)
	s, _ := stallPair(t, 0)
	start := time.Now()
	if err := s.Write(make([]byte, 1000)); !errors.Is(err, ErrStalled) {
		t.Fatalf("write: %v, want ErrStalled", err)
	}
	if d := time.Since(start); d < StallTimeout {
		t.Fatalf("failed after %v, before StallTimeout", d)
	}
}
