package admin

import (
	"bufio"
	"strings"
	"testing"
)

type src struct{}

func (src) Ready() bool     { return true }
func (src) Status() []byte  { return []byte("{}") }
func (src) Metrics() []byte { return []byte("m 1\n") }
func (src) Count(string)    {}
func (src) Log(h uint64) []byte {
	if h == 1 {
		return []byte{1}
	}
	return nil
}

func TestRequestTable(t *testing.T) {
	cases := []struct {
		req    string
		status string
		close  bool
	}{
		{"GET /health HTTP/1.1\r\n\r\n", "200", false},
		{"HEAD /status HTTP/1.1\r\n\r\n", "200", false},
		{"GET /log/1 HTTP/1.0\r\n\r\n", "200", true},
		{"GET /log/2 HTTP/1.1\r\n\r\n", "404", false},
		{"GET /log/01 HTTP/1.1\r\n\r\n", "400", false},
		{"GET /log/18446744073709551616 HTTP/1.1\r\n\r\n", "400", false},
		{"POST /status HTTP/1.1\r\n\r\n", "405", false},
		{"get /status HTTP/1.1\r\n\r\n", "405", false},
		{"GET status HTTP/1.1\r\n\r\n", "400", false},
		{"GET  /status HTTP/1.1\r\n\r\n", "400", true},
		{"GET /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "400", true},
		{"GET /x HTTP/1.1\r\nbad header\r\n\r\n", "400", true},
		{"GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\n\r\n", "414", true},
		{"GET /status?x=1 HTTP/1.1\r\nConnection: close\r\n\r\n", "200", true},
		{"GET /nothing HTTP/1.1\n\n", "404", false},
	}
	for _, tc := range cases {
		ans, closeConn, err := Handle(bufio.NewReader(strings.NewReader(tc.req)), src{})
		if err != nil {
			t.Errorf("%q: %v", tc.req[:20], err)
			continue
		}
		if got := strings.SplitN(string(ans), " ", 3)[1]; got != tc.status || closeConn != tc.close {
			t.Errorf("%.30q: status %s close %v, want %s %v", tc.req, got, closeConn, tc.status, tc.close)
		}
	}
}

func FuzzAdminRequest(f *testing.F) {
	f.Add([]byte("GET /log/3 HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("HEAD /status?x HTTP/1.0\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(strings.NewReader(string(b)))
		for i := 0; i < 4; i++ {
			ans, closeConn, err := Handle(r, src{})
			if err != nil || closeConn {
				return
			}
			if !strings.HasPrefix(string(ans), "HTTP/1.1 ") {
				t.Fatalf("bad answer %q", ans)
			}
		}
	})
}
