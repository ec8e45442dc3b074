// Package admin is the admin port of an impl_c node: a small HTTP/1.x
// server that follows the SPEC 15.1 parsing table exactly, over a Source
// of status, metrics and decisions.
package admin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Admin port limits of SPEC 15.1.
const (
	adminMaxConns   = 64
	adminLineMax    = 8192
	adminHeaderMax  = 16384
	adminHeaderRows = 100
	adminDeadline   = 5 * time.Second
)

// Source is what the admin port serves.
type Source interface {
	Ready() bool
	Status() []byte      // JSON, nil if not available yet
	Metrics() []byte     // Prometheus text, nil if not available yet
	Log(h uint64) []byte // canonical Decision without qc, nil if not decided
	Count(reason string)
}

// Answer is the node's answer to one request.
type Answer = httpAnswer

type httpAnswer struct {
	status  int
	ctype   string
	body    []byte
	allow   bool
	close   bool
	counted string // rejection reason to count, "" for none
}

var statusText = map[int]string{200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
	408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
	503: "Service Unavailable"}

func textAnswer(status int, msg string, close bool) httpAnswer {
	reason := "bad_http_request"
	if status == 503 {
		reason = "connection_limit"
	}
	if status < 400 {
		reason = ""
	}
	return httpAnswer{status: status, ctype: "text/plain; charset=utf-8", body: []byte(msg + "\n"), close: close, counted: reason}
}

func writeAnswer(w *bufio.Writer, a httpAnswer, head bool) error {
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\n", a.status, statusText[a.status])
	if a.ctype != "" {
		fmt.Fprintf(w, "Content-Type: %s\r\n", a.ctype)
	}
	fmt.Fprintf(w, "Content-Length: %d\r\n", len(a.body))
	if a.allow {
		w.WriteString("Allow: GET, HEAD\r\n")
	}
	if a.close {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	if !head {
		w.Write(a.body)
	}
	return w.Flush()
}

var errTooLong = errors.New("line too long")

// readLine reads one LF-ended line of at most max bytes (CR stripped).
func readLine(r *bufio.Reader, max int) (string, int, error) {
	var b []byte
	for {
		c, err := r.ReadByte()
		if err != nil {
			return "", len(b), err
		}
		if c == '\n' {
			n := len(b) + 1
			if len(b) > 0 && b[len(b)-1] == '\r' {
				b = b[:len(b)-1]
			}
			return string(b), n, nil
		}
		b = append(b, c)
		if len(b) > max {
			return "", len(b), errTooLong
		}
	}
}

// Serve runs the admin port on l until ctx ends.
func Serve(ctx context.Context, l net.Listener, src Source) {
	n := &server{src: src}
	n.serve(ctx, l)
}

type server struct{ src Source }

func (n *server) countReject(reason string) { n.src.Count(reason) }

func (n *server) serve(ctx context.Context, l net.Listener) {
	var open atomic.Int64
	go func() { <-ctx.Done(); l.Close() }()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if open.Add(1) > adminMaxConns {
			open.Add(-1)
			n.countReject("connection_limit")
			go func() {
				c.SetDeadline(time.Now().Add(time.Second))
				writeAnswer(bufio.NewWriter(c), textAnswer(503, "too many admin connections", true), false)
				c.Close()
			}()
			continue
		}
		go func() {
			defer open.Add(-1)
			defer c.Close()
			defer func() { recover() }()
			n.adminConn(c)
		}()
	}
}

func (n *server) adminConn(c net.Conn) {
	r := bufio.NewReaderSize(c, 4096)
	w := bufio.NewWriter(c)
	for {
		c.SetReadDeadline(time.Now().Add(adminDeadline))
		a, head, err := n.adminRequest(r)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				n.countReject("slow_peer")
				c.SetWriteDeadline(time.Now().Add(time.Second))
				writeAnswer(w, httpAnswer{status: 408, ctype: "text/plain", body: []byte("timeout\n"), close: true}, false)
			}
			return
		}
		if a.counted != "" {
			n.countReject(a.counted)
		}
		c.SetWriteDeadline(time.Now().Add(adminDeadline))
		if writeAnswer(w, a, head) != nil || a.close {
			return
		}
	}
}

// adminRequest parses one request (SPEC 15.1, first matching row wins).
func (n *server) adminRequest(r *bufio.Reader) (httpAnswer, bool, error) {
	line, _, err := readLine(r, adminLineMax)
	if err == errTooLong {
		return textAnswer(414, "request line too long", true), false, nil
	}
	if err != nil {
		return httpAnswer{}, false, err
	}
	parts := strings.Split(line, " ")
	ascii := true
	for i := 0; i < len(line); i++ {
		if line[i] < 0x20 || line[i] > 0x7e {
			ascii = false
		}
	}
	if !ascii || len(parts) != 3 || parts[0] == "" || parts[1] == "" || (parts[2] != "HTTP/1.0" && parts[2] != "HTTP/1.1") {
		return textAnswer(400, "bad request line", true), false, nil
	}
	method, target, version := parts[0], parts[1], parts[2]
	total, rows := 0, 0
	closeAfter := version == "HTTP/1.0"
	badBody := false
	for {
		h, nb, err := readLine(r, adminHeaderMax)
		total += nb
		if err == errTooLong || total > adminHeaderMax {
			return textAnswer(431, "headers too large", true), false, nil
		}
		if err != nil {
			return httpAnswer{}, false, err
		}
		if h == "" {
			break
		}
		rows++
		if rows > adminHeaderRows {
			return textAnswer(431, "too many header lines", true), false, nil
		}
		i := strings.IndexByte(h, ':')
		if i <= 0 {
			return textAnswer(400, "bad header line", true), false, nil
		}
		name, value := strings.ToLower(strings.TrimSpace(h[:i])), strings.TrimSpace(h[i+1:])
		switch name {
		case "content-length":
			if value != "0" {
				badBody = true
			}
		case "transfer-encoding":
			badBody = true
		case "connection":
			if strings.EqualFold(value, "close") {
				closeAfter = true
			} else if strings.EqualFold(value, "keep-alive") && version == "HTTP/1.0" {
				closeAfter = false
			}
		}
	}
	if badBody {
		return textAnswer(400, "request bodies are not accepted", true), false, nil
	}
	head := method == "HEAD"
	if method != "GET" && !head {
		a := textAnswer(405, "method not allowed", closeAfter)
		a.allow = true
		return a, false, nil
	}
	if !strings.HasPrefix(target, "/") {
		return textAnswer(400, "target must start with /", closeAfter), head, nil
	}
	path := target
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	a := n.route(path)
	a.close = a.close || closeAfter
	return a, head, nil
}

func (n *server) route(path string) httpAnswer {
	switch {
	case path == "/health":
		if !n.src.Ready() {
			return textAnswer(503, "starting", false)
		}
		return httpAnswer{status: 200, ctype: "text/plain; charset=utf-8", body: []byte("ok\n")}
	case path == "/status":
		b := n.src.Status()
		if b == nil {
			return textAnswer(503, "starting", false)
		}
		return httpAnswer{status: 200, ctype: "application/json", body: b}
	case path == "/metrics":
		b := n.src.Metrics()
		if b == nil {
			return textAnswer(503, "starting", false)
		}
		return httpAnswer{status: 200, ctype: "text/plain; version=0.0.4; charset=utf-8", body: b}
	case strings.HasPrefix(path, "/log/"):
		hs := strings.TrimPrefix(path, "/log/")
		if !validHeight(hs) {
			return textAnswer(400, "bad height", false)
		}
		hv, err := strconv.ParseUint(hs, 10, 64)
		if err != nil {
			return textAnswer(400, "bad height", false)
		}
		if hv == 0 {
			return httpAnswer{status: 404, ctype: "text/plain; charset=utf-8", body: []byte("not decided\n")}
		}
		b := n.src.Log(hv)
		if b == nil {
			return httpAnswer{status: 404, ctype: "text/plain; charset=utf-8", body: []byte("not decided\n")}
		}
		return httpAnswer{status: 200, ctype: "application/octet-stream", body: b}
	}
	return textAnswer(404, "not found", false)
}

func validHeight(s string) bool {
	if s == "0" {
		return true
	}
	if len(s) < 1 || len(s) > 20 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Handle parses one request from r with src (for tests and the conformance
// runner): the answer bytes as written, whether the connection closes, and
// whether the request was complete.
func Handle(r *bufio.Reader, src Source) (answer []byte, close bool, err error) {
	n := &server{src: src}
	a, head, err := n.adminRequest(r)
	if err != nil {
		return nil, false, err
	}
	var b bytesWriter
	w := bufio.NewWriter(&b)
	writeAnswer(w, a, head)
	return b.b, a.close, nil
}

type bytesWriter struct{ b []byte }

func (w *bytesWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
