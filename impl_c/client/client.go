// Package client is the impl_c client library (SPEC 14): it signs
// requests, talks Noise to a coordinator's client port, validates answers
// as compact decisions and retries across members.
package client

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"heraclius/impl_c/link"
	"heraclius/impl_c/manifest"
	"heraclius/impl_c/noise"
	"heraclius/impl_c/rsm"
	"heraclius/impl_c/sig"
	"heraclius/impl_c/wire"
)

// Client is shared by the users of one process.
type Client struct {
	M       *manifest.Manifest
	Cluster *manifest.Cluster
	Signer  *sig.Signer
	Dest    string
	cache   *rsm.SigCache
	nextID  atomic.Uint64
}

// New builds a client for coordinator cluster (empty = SPEC 14.1 default).
func New(m *manifest.Manifest, seed []byte, cluster string) (*Client, error) {
	s := sig.NewSigner(seed)
	if m.ClientByKey(s.Pub) == nil {
		return nil, errors.New("client key is not in manifest.clients")
	}
	if cluster == "" {
		cs := m.Coordinators()
		d := sha256.Sum256(s.Pub)
		cluster = cs[binary.BigEndian.Uint64(d[:8])%uint64(len(cs))]
	}
	cl := m.Cluster(cluster)
	if cl == nil || cl.Role != "coordinator" {
		return nil, fmt.Errorf("%q is not a coordinator cluster", cluster)
	}
	c := &Client{M: m, Cluster: cl, Signer: s, Dest: rsm.ClientDest(s.Pub), cache: rsm.NewSigCache()}
	c.nextID.Store(uint64(time.Now().UnixMicro()))
	return c, nil
}

// Result of one operation.
type Result struct {
	Found       bool
	Value       []byte
	Height      uint64
	Node        string
	Shard       string
	ShardHeight uint64
	RequestID   uint64
}

// User is one closed-loop user: its own connection, one request at a time.
type User struct {
	c        *Client
	sess     *link.Session
	member   int
	mu       sync.Mutex
	failedAt map[int]time.Time     // last connection failure per member
	backoff  map[int]time.Duration // reconnect backoff per member (100 ms doubling to 2 s)
}

// NewUser returns a user that starts at a random member.
func (c *Client) NewUser() *User {
	return &User{c: c, member: mrand.Intn(c.Cluster.N()), failedAt: map[int]time.Time{}, backoff: map[int]time.Duration{}}
}

// Close closes the user's connection.
func (u *User) Close() {
	if u.sess != nil {
		u.sess.Close()
		u.sess = nil
	}
}

func (u *User) connect(deadline time.Time) error {
	if u.sess != nil {
		return nil
	}
	node := u.c.Cluster.Nodes[u.member]
	if t, ok := u.failedAt[u.member]; ok {
		// SPEC 14.5: not sooner than the transport's reconnect backoff.
		if wait := time.Until(t.Add(u.backoff[u.member])); wait > 0 {
			if time.Now().Add(wait).After(deadline) {
				return errors.New("reconnect backoff runs past the deadline")
			}
			time.Sleep(wait)
		}
	}
	fail := func() {
		b := u.backoff[u.member]
		if b == 0 {
			b = 100 * time.Millisecond
		} else if b *= 2; b > 2*time.Second {
			b = 2 * time.Second
		}
		u.backoff[u.member], u.failedAt[u.member] = b, time.Now()
	}
	d := net.Dialer{Deadline: deadline}
	conn, err := d.Dial("tcp", net.JoinHostPort(node.Host, strconv.Itoa(node.Ports.Client)))
	if err != nil {
		fail()
		return err
	}
	priv := make([]byte, 32)
	rand.Read(priv)
	kp, _ := noise.NewKeyPair(priv)
	s, err := link.Client(conn, link.Params{M: u.c.M, Static: kp, Port: "client", Dialled: node.ID, MaxMessage: u.c.M.Limits.MaxMessageBytes})
	if err != nil {
		conn.Close()
		fail()
		return err
	}
	delete(u.failedAt, u.member)
	delete(u.backoff, u.member)
	u.sess = s
	return nil
}

// NewRequest signs a request with a fresh id.
func (c *Client) NewRequest(kind wire.OpKind, key, value []byte) *wire.ClientRequest {
	r := &wire.ClientRequest{ClientKey: c.Signer.Pub, RequestID: c.nextID.Add(1), ClusterID: c.Cluster.ID,
		Op: &wire.Operation{Kind: kind, Key: key, Value: value}}
	r.Signature = c.Signer.Sign(sig.DomainClientRequest, c.M.NetworkID, wire.Encode(r))
	return r
}

var finalCodes = map[wire.ClientErrorCode]bool{wire.ClientErrorMalformed: true, wire.ClientErrorBadSignature: true,
	wire.ClientErrorUnauthorised: true, wire.ClientErrorWrongCluster: true, wire.ClientErrorTooLarge: true, wire.ClientErrorStale: true}

// ErrFinal is a final error (f + 1 members agree).
type ErrFinal struct{ Code string }

func (e *ErrFinal) Error() string { return "request refused: " + e.Code }

// Do runs one request to completion or deadline (SPEC 14.4, 14.5).
func (u *User) Do(r *wire.ClientRequest, timeout time.Duration) (*Result, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	deadline := time.Now().Add(timeout)
	n := u.c.Cluster.N()
	last := make([]string, n)
	codes := map[wire.ClientErrorCode]map[int]bool{}
	msg := wire.Encode(&wire.ClientMessage{Submit: r})
	round := 0
	tried := 0
	for time.Now().Before(deadline) {
		res, err := u.try(msg, r, deadline)
		if err == nil {
			return res, nil
		}
		var ce *codeErr
		if errors.As(err, &ce) && finalCodes[ce.code] {
			if codes[ce.code] == nil {
				codes[ce.code] = map[int]bool{}
			}
			codes[ce.code][u.member] = true
			if len(codes[ce.code]) >= u.c.Cluster.F()+1 {
				return nil, &ErrFinal{wire.ClientErrorCodeNames[ce.code]}
			}
		}
		last[u.member] = err.Error()
		u.Close()
		u.member = (u.member + 1) % n
		tried++
		if tried%n == 0 {
			round++
			b := 50 << uint(round-1)
			if b > 1000 {
				b = 1000
			}
			wait := time.Duration(b/2+mrand.Intn(b/2+1)) * time.Millisecond
			if time.Now().Add(wait).After(deadline) {
				break
			}
			time.Sleep(wait)
		}
	}
	var parts []string
	for i, l := range last {
		if l != "" {
			parts = append(parts, u.c.Cluster.Nodes[i].ID+": "+l)
		}
	}
	return nil, fmt.Errorf("cluster %s, request %d: no valid answer before the deadline (%s)", u.c.Cluster.ID, r.RequestID, strings.Join(parts, "; "))
}

type codeErr struct {
	code wire.ClientErrorCode
	msg  string
}

func (e *codeErr) Error() string { return wire.ClientErrorCodeNames[e.code] + " " + e.msg }

func (u *User) try(msg []byte, r *wire.ClientRequest, deadline time.Time) (*Result, error) {
	if err := u.connect(deadline); err != nil {
		return nil, err
	}
	s := u.sess
	if err := s.Write(msg); err != nil {
		return nil, err
	}
	// Wait at most client_timeout plus a margin on one member.
	wait := time.Now().Add(time.Duration(u.c.M.Timeouts.ClientTimeout+1000) * time.Millisecond)
	if wait.After(deadline) {
		wait = deadline
	}
	s.Conn().SetReadDeadline(wait)
	defer s.Conn().SetReadDeadline(time.Time{})
	for {
		b, err := s.Read()
		if err != nil {
			return nil, err
		}
		rep, err := wire.DecodeClientReply(b)
		if err != nil {
			return nil, err
		}
		if e := rep.Error; e != nil {
			if e.RequestID != r.RequestID {
				continue
			}
			return nil, &codeErr{e.Code, e.Message}
		}
		cd := rep.Answer
		if reason := rsm.VerifyAnswer(u.c.M, u.c.cache, cd, u.c.Cluster.ID, u.c.Dest); reason != "" {
			return nil, fmt.Errorf("invalid answer: %s", reason)
		}
		for _, resp := range cd.Leaf.Responses {
			if resp.RequestID == r.RequestID && resp.Kind == r.Op.Kind {
				return &Result{Found: resp.Found, Value: resp.Value, Height: cd.Header.Height,
					Node: u.c.Cluster.Nodes[u.member].ID, Shard: resp.ShardID, ShardHeight: resp.ShardHeight, RequestID: r.RequestID}, nil
			}
		}
	}
}
