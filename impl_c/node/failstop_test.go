package node

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"heraclius/impl_c/core"
	"heraclius/impl_c/internal/testkit"
	"heraclius/impl_c/wire"
)

type failingStore struct{}

func (failingStore) Write([]core.Record) error { return errors.New("no space left on device") }
func (failingStore) Decision(uint64) (*wire.Decision, error) {
	return nil, errors.New("read failed")
}

func TestStorageFailureIsFailStop(t *testing.T) {
	net, err := testkit.New("failstop-net", 41000, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logbuf bytes.Buffer
	n := &Node{m: net.M, self: net.M.Node("c0-n0"), log: NewLogger(&logbuf, "c0-n0", "info"), st: failingStore{},
		peers: map[string]*peerLink{}, rejected: map[string]uint64{}}
	p := &peerLink{n: n, peer: net.M.Node("c0-n1"), ch: make(chan []byte, 4)}
	n.peers["c0-n1"] = p
	codes := []int{}
	exitNow = func(code int) { codes = append(codes, code); panic("exit") }
	defer func() { exitNow = func(int) {} }()
	func() {
		defer func() { recover() }()
		n.handle(core.Ready{Persist: []core.Record{{Kind: core.RecView, View: 1}},
			Send: []core.Out{{To: "c0-n1", Msg: &wire.PeerMessage{Heartbeat: &wire.Heartbeat{ClusterID: "c0"}}}}})
	}()
	if len(codes) != 1 || codes[0] != 5 {
		t.Fatalf("exit codes %v, want [5]", codes)
	}
	if len(p.ch) != 0 {
		t.Fatal("a message was sent after a failed durable write")
	}
	if !strings.Contains(logbuf.String(), `"event":"storage_failed"`) || !strings.Contains(logbuf.String(), `"level":"error"`) {
		t.Fatalf("no storage_failed error line: %s", logbuf.String())
	}
}
