// Command attack sends hostile inputs to one node's ports (SPEC 13, 13.1,
// 14, 15.1) and then checks that it still answers /status and decides.
//
//	go run ./internal/attack -manifest M -node ID -key CLIENTKEY
package main

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"heraclius/impl_c/link"
	"heraclius/impl_c/manifest"
	"heraclius/impl_c/noise"
	"heraclius/impl_c/wire"
)

func main() {
	mf := flag.String("manifest", "", "manifest")
	id := flag.String("node", "", "node id")
	flag.Parse()
	m, err := manifest.LoadFile(*mf)
	if err != nil {
		panic(err)
	}
	n := m.Node(*id)
	peer := net.JoinHostPort(n.Host, strconv.Itoa(n.Ports.Peer))
	client := net.JoinHostPort(n.Host, strconv.Itoa(n.Ports.Client))
	adminAddr := net.JoinHostPort(n.AdminBind, strconv.Itoa(n.Ports.Admin))
	raw := func(addr string, b []byte) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			fmt.Println("dial", err)
			return
		}
		c.Write(b)
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		io.ReadAll(c)
		c.Close()
	}
	junk := make([]byte, 4096)
	rand.Read(junk)
	for _, addr := range []string{peer, client} {
		raw(addr, junk)
		raw(addr, []byte{0, 0})
		raw(addr, []byte{0xff, 0xff, 1, 2, 3})
		raw(addr, append([]byte{0, 32}, make([]byte, 32)...)) // zero ephemeral
	}
	// Client sessions with hostile application messages.
	session := func() *link.Session {
		c, err := net.DialTimeout("tcp", client, time.Second)
		if err != nil {
			return nil
		}
		k := make([]byte, 32)
		rand.Read(k)
		kp, _ := noise.NewKeyPair(k)
		s, err := link.Client(c, link.Params{M: m, Static: kp, Port: "client", Dialled: n.ID, MaxMessage: 1 << 20})
		if err != nil {
			fmt.Println("handshake", err)
			return nil
		}
		return s
	}
	sendRaw := func(s *link.Session, app []byte) {
		s.Write(app) // framed as a whole message
	}
	if s := session(); s != nil {
		sendRaw(s, []byte{0xff, 0x00}) // non-canonical
		s.Close()
	}
	if s := session(); s != nil {
		big := make([]byte, 300000) // over max_client_message_bytes
		sendRaw(s, big)
		s.Close()
	}
	if s := session(); s != nil {
		bad := wire.Encode(&wire.ClientMessage{Submit: &wire.ClientRequest{ClientKey: make([]byte, 32), RequestID: 1, ClusterID: n.Cluster.ID,
			Op: &wire.Operation{Kind: wire.OpKindGet, Key: []byte("k")}, Signature: make([]byte, 64)}})
		sendRaw(s, bad)
		s.Conn().SetReadDeadline(time.Now().Add(time.Second))
		if b, err := s.Read(); err == nil {
			r, _ := wire.DecodeClientReply(b)
			if r != nil && r.Error != nil {
				fmt.Println("unauthorised request answered:", wire.ClientErrorCodeNames[r.Error.Code])
			}
		}
		s.Close()
	}
	// 70 idle connections: the handshake limit closes some.
	var idle []net.Conn
	for i := 0; i < 70; i++ {
		if c, err := net.Dial("tcp", client); err == nil {
			idle = append(idle, c)
		}
	}
	time.Sleep(200 * time.Millisecond)
	for _, c := range idle {
		c.Close()
	}
	// Admin garbage.
	for _, req := range []string{"GARBAGE\r\n\r\n", "GET /log/01 HTTP/1.1\r\n\r\n", "POST /status HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
		"GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\n\r\n", "GET /log/%C2%B2 HTTP/1.1\r\n\r\n"} {
		raw(adminAddr, []byte(req))
	}
	// The node must still answer /status.
	resp, err := http.Get("http://" + adminAddr + "/status")
	if err != nil {
		fmt.Println("STATUS FAILED:", err)
		os.Exit(1)
	}
	var st map[string]any
	json.NewDecoder(resp.Body).Decode(&st)
	fmt.Println("height", st["height"], "rejected", st["rejected"])
	_ = hex.EncodeToString
	_ = binary.BigEndian
}
