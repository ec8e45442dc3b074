package node

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

var levels = map[string]int{"debug": 0, "info": 1, "warning": 2, "error": 3}

// Logger writes SPEC 4 JSON log lines; rejections are rate limited per
// (reason, peer) to one per 10 s.
type Logger struct {
	mu      sync.Mutex
	w       io.Writer
	min     int
	node    string
	limited map[string]time.Time
}

// NewLogger returns a logger at level.
func NewLogger(w io.Writer, node, level string) *Logger {
	return &Logger{w: w, min: levels[level], node: node, limited: map[string]time.Time{}}
}

// Log writes one line.
func (l *Logger) Log(level, event, msg string, fields map[string]any) {
	if l == nil || levels[level] < l.min {
		return
	}
	now := time.Now().UTC()
	l.mu.Lock()
	defer l.mu.Unlock()
	if event == "rejected" {
		k := ""
		if fields != nil {
			k, _ = fields["reason"].(string)
			p, _ := fields["peer"].(string)
			k += "|" + p
		}
		if t, ok := l.limited[k]; ok && now.Sub(t) < 10*time.Second {
			return
		}
		if len(l.limited) > 10000 {
			l.limited = map[string]time.Time{}
		}
		l.limited[k] = now
	}
	rec := map[string]any{}
	for k, v := range fields {
		rec[k] = v
	}
	rec["ts"] = now.Format("2006-01-02T15:04:05.000Z")
	rec["level"] = level
	rec["node"] = l.node
	rec["event"] = event
	rec["msg"] = msg
	b, _ := json.Marshal(rec)
	l.w.Write(append(b, '\n'))
}
