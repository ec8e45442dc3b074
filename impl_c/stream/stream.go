// Package stream frames application messages inside the decrypted Noise
// payload stream of a link (SPEC 13): u32be(len) || message, with the
// length checked from the prefix alone and the buffer growing only as bytes
// actually arrive.
package stream

import (
	"encoding/binary"
	"errors"
)

// MaxPayload is the largest Noise transport plaintext (65535 - 16).
const MaxPayload = 65519

// ErrOversized is a frame length of 0 or above the limit.
var (
	ErrOversized = errors.New("oversized")
	ErrEmpty     = errors.New("malformed: zero-length frame")
)

// Parser reassembles frames from payload chunks.
type Parser struct {
	Max  int
	buf  []byte
	need int // body length of the frame being read, or -1
}

// NewParser returns a parser with the max_message_bytes limit.
func NewParser(max int) *Parser { return &Parser{Max: max, need: -1} }

// Buffered returns how many bytes are held.
func (p *Parser) Buffered() int { return len(p.buf) }

// Feed appends a chunk and returns every complete message.
func (p *Parser) Feed(chunk []byte) ([][]byte, error) {
	p.buf = append(p.buf, chunk...)
	var out [][]byte
	for {
		if p.need < 0 {
			if len(p.buf) < 4 {
				return out, nil
			}
			l := binary.BigEndian.Uint32(p.buf[:4])
			if l == 0 {
				return out, ErrEmpty
			}
			if uint64(l) > uint64(p.Max) {
				return out, ErrOversized
			}
			p.need = int(l)
			p.buf = p.buf[4:]
		}
		if len(p.buf) < p.need {
			return out, nil
		}
		msg := make([]byte, p.need)
		copy(msg, p.buf[:p.need])
		p.buf = p.buf[p.need:]
		p.need = -1
		out = append(out, msg)
		if len(p.buf) == 0 {
			p.buf = nil
		}
	}
}

// Frame returns u32be(len(m)) || m.
func Frame(m []byte) []byte {
	b := make([]byte, 4, 4+len(m))
	binary.BigEndian.PutUint32(b, uint32(len(m)))
	return append(b, m...)
}

// Split cuts a stream into payloads of 1..MaxPayload bytes.
func Split(s []byte) [][]byte {
	var out [][]byte
	for len(s) > 0 {
		n := len(s)
		if n > MaxPayload {
			n = MaxPayload
		}
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}
