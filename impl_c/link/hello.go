// Package link is the SPEC 13 transport: Noise XX links over TCP with
// framed application messages, Hello checks, deadlines and reconnects.
package link

import (
	"bytes"
	"errors"
	"fmt"

	"heraclius/impl_c/manifest"
	"heraclius/impl_c/wire"
)

// HelloError carries the SPEC 15 reason of a refused Hello.
type HelloError struct {
	Reason string
	Msg    string
}

func (e *HelloError) Error() string { return e.Reason + ": " + e.Msg }

func refuse(reason, format string, a ...any) error {
	return &HelloError{reason, fmt.Sprintf(format, a...)}
}

// CheckHello checks the remote party's Hello (SPEC 13). port is "peer" or
// "client"; asInitiator tells whether we dialled (then dialled names the
// node we dialled). It returns the remote node (nil for a client).
func CheckHello(m *manifest.Manifest, port string, asInitiator bool, dialled string, h *wire.Hello, remoteStatic []byte) (*manifest.Node, error) {
	if h.ProtocolVersion != 1 {
		return nil, refuse("handshake_failed", "protocol_version %d", h.ProtocolVersion)
	}
	if h.NetworkID != m.NetworkID {
		return nil, refuse("wrong_network", "network %q", h.NetworkID)
	}
	if port == "client" && !asInitiator {
		if h.NodeID != "" {
			return nil, refuse("handshake_failed", "client Hello names node %q", h.NodeID)
		}
		return nil, nil
	}
	if port == "client" && asInitiator {
		n := m.Node(dialled)
		if n == nil || !bytes.Equal(n.X25519, remoteStatic) {
			return nil, refuse("handshake_failed", "responder static key is not %s's", dialled)
		}
		return n, nil
	}
	if h.NodeID == "" {
		return nil, refuse("handshake_failed", "empty node id")
	}
	n := m.Node(h.NodeID)
	if n == nil {
		return nil, refuse("unknown_node", "unknown node %q", h.NodeID)
	}
	if !bytes.Equal(n.X25519, remoteStatic) {
		return nil, refuse("handshake_failed", "static key is not %s's", h.NodeID)
	}
	if asInitiator && h.NodeID != dialled {
		return nil, refuse("handshake_failed", "dialled %s, answered %s", dialled, h.NodeID)
	}
	return n, nil
}

var errClosed = errors.New("link closed")

// CheckHandshakeSize applies the SPEC 13 size rule to handshake message i (1..3) of n bytes.
func CheckHandshakeSize(i, n int) error {
	switch {
	case i == 1 && n != 32:
		return refuse("handshake_failed", "message 1 has %d bytes, not 32", n)
	case i == 2 && n < 32+48+16:
		return refuse("handshake_failed", "message 2 has %d bytes, below 96", n)
	case i == 3 && n < 48+16:
		return refuse("handshake_failed", "message 3 has %d bytes, below 64", n)
	}
	return nil
}
