package link

import (
	"net"
	"testing"

	"heraclius/impl_c/internal/testkit"
	"heraclius/impl_c/noise"
)

func keypair(t *testing.T, n *testkit.Net, id string) noise.KeyPair {
	kp, err := noise.NewKeyPair(n.X[id])
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func TestPeerHandshakeAndMessages(t *testing.T) {
	n, err := testkit.New("link-net", 40000, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		claim    string // initiator's Hello node id
		key      string // initiator's static key owner
		dialled  string // who the initiator thinks it dials
		server   string // responder identity
		wantFail bool
	}{
		{"good", "c0-n0", "c0-n0", "c0-n1", "c0-n1", false},
		{"wrong key for claimed id", "c0-n2", "c0-n0", "c0-n1", "c0-n1", true},
		{"unknown node", "zz", "c0-n0", "c0-n1", "c0-n1", true},
		{"responder is not the dialled node", "c0-n0", "c0-n0", "c0-n1", "c0-n2", true},
	}
	for _, tc := range cases {
		a, b := net.Pipe()
		errs := make(chan error, 2)
		var srv *Session
		go func() {
			s, err := Server(b, Params{M: n.M, Static: keypair(t, n, tc.server), SelfID: tc.server, Port: "peer", MaxMessage: 1 << 20})
			srv = s
			if err != nil {
				b.Close()
			}
			errs <- err
		}()
		cl, cerr := Client(a, Params{M: n.M, Static: keypair(t, n, tc.key), SelfID: tc.claim, Port: "peer", Dialled: tc.dialled, MaxMessage: 1 << 20})
		if cerr != nil {
			a.Close()
		}
		serr := <-errs
		failed := cerr != nil || serr != nil
		if failed != tc.wantFail {
			t.Errorf("%s: client %v, server %v", tc.name, cerr, serr)
		}
		if !failed {
			go cl.Write([]byte("hello over noise"))
			m, err := srv.Read()
			if err != nil || string(m) != "hello over noise" {
				t.Errorf("%s: read %q %v", tc.name, m, err)
			}
			if srv.Remote.ID != "c0-n0" {
				t.Errorf("remote %s", srv.Remote.ID)
			}
		}
		a.Close()
		b.Close()
	}
}

func TestHandshakeSizes(t *testing.T) {
	for _, tc := range []struct {
		i, n int
		ok   bool
	}{{1, 32, true}, {1, 33, false}, {1, 0, false}, {2, 95, false}, {2, 96, true}, {3, 63, false}, {3, 64, true}} {
		if err := CheckHandshakeSize(tc.i, tc.n); (err == nil) != tc.ok {
			t.Errorf("message %d of %d bytes: %v", tc.i, tc.n, err)
		}
	}
}
