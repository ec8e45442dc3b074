// Package linger is the lingering close of SPEC 15.1/13.1 (errata AD-7):
// after an answer followed by a close, shut down the sending side, read and
// discard what the peer still sends for up to 1 s or 64 KiB, then close, so
// that a TCP reset does not destroy the answer.
package linger

import (
	"io"
	"net"
	"sync/atomic"
	"time"
)

// MaxLingering bounds the connections lingering at once (per process), so
// that a flood of refused connections cannot hold file descriptors; beyond
// it a connection is shut down for writing and closed at once.
const MaxLingering = 32

var lingering atomic.Int64

// Close closes c lingering.
func Close(c net.Conn) {
	defer c.Close()
	if lingering.Add(1) > MaxLingering {
		lingering.Add(-1)
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		return
	}
	defer lingering.Add(-1)
	type closeWriter interface{ CloseWrite() error }
	cw, ok := c.(closeWriter)
	if !ok {
		return
	}
	if cw.CloseWrite() != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}
