package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"heraclius/impl_c/admin"
)

func init() { register("admin", "request", adminCase) }

type fakeSource struct{ decided uint64 }

func (f fakeSource) Ready() bool     { return true }
func (f fakeSource) Status() []byte  { return []byte(`{"height":5}`) }
func (f fakeSource) Metrics() []byte { return []byte("heraclius_height 5\n") }
func (f fakeSource) Count(string)    {}
func (f fakeSource) Log(h uint64) []byte {
	if h >= 1 && h <= f.decided {
		return []byte{0x0a, 0x00}
	}
	return nil
}

// parseAnswer returns status, headers (lowercased names) and body length.
func parseAnswer(b []byte) (int, map[string]string, []byte, error) {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		return 0, nil, nil, fmt.Errorf("incomplete answer")
	}
	lines := strings.Split(string(b[:i]), "\r\n")
	parts := strings.SplitN(lines[0], " ", 3)
	if len(parts) < 2 || !strings.HasPrefix(parts[0], "HTTP/1.") {
		return 0, nil, nil, fmt.Errorf("bad status line %q", lines[0])
	}
	st, err := strconv.Atoi(parts[1])
	if err != nil {
		return 0, nil, nil, err
	}
	h := map[string]string{}
	for _, l := range lines[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok {
			h[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	return st, h, b[i+4:], nil
}

func adminCase(dir string, meta map[string]any) error {
	req := readFile(dir, "request.bin")
	src := fakeSource{decided: num(meta["decided_height"])}
	r := bufio.NewReader(bytes.NewReader(append(append([]byte{}, req...), "GET /health HTTP/1.1\r\n\r\n"...)))
	ans, closeConn, err := admin.Handle(r, src)
	if err != nil {
		return fmt.Errorf("no answer: %v", err)
	}
	st, h, body, err := parseAnswer(ans)
	if err != nil {
		return err
	}
	if uint64(st) != num(meta["status"]) {
		return fmt.Errorf("status %d, want %v", st, meta["status"])
	}
	if _, ok := h["content-length"]; !ok {
		return fmt.Errorf("no Content-Length")
	}
	if st == 405 && h["allow"] != "GET, HEAD" {
		return fmt.Errorf("405 without Allow: GET, HEAD")
	}
	if want := meta["close"] == true; closeConn != want {
		return fmt.Errorf("close = %v, want %v", closeConn, want)
	}
	switch meta["body"] {
	case "nonempty":
		if len(body) == 0 {
			return fmt.Errorf("empty body")
		}
	case "empty":
		if len(body) != 0 {
			return fmt.Errorf("HEAD answer with a body")
		}
	}
	if !closeConn {
		ans2, _, err := admin.Handle(r, src)
		if err != nil {
			return fmt.Errorf("no second answer: %v", err)
		}
		if st2, _, _, err := parseAnswer(ans2); err != nil || st2 != 200 {
			return fmt.Errorf("follow-up /health answered %d (%v)", st2, err)
		}
	}
	return nil
}
