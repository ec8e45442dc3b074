// Package wire is the hand-written canonical protobuf codec of Heraclius
// (SPEC 5): typed messages generated from heraclius.proto by
// internal/codegen, a strict decoder that rejects every non-canonical
// encoding, and helpers for hashing and signing bytes.
package wire

//go:generate sh -c "go run ../internal/codegen ../../wire_spec/heraclius.proto > messages.gen.go && gofmt -w messages.gen.go"

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
)

// Message is any generated message.
type Message interface {
	AppendTo(b []byte) []byte
	JSON() map[string]any
	unmarshal(b []byte) error
}

// DecodeError is a rejected encoding; Reason is "malformed" or "non_canonical".
type DecodeError struct {
	Reason string
	Detail string
}

func (e *DecodeError) Error() string { return e.Reason + ": " + e.Detail }

func nonCanonical(format string, a ...any) error {
	return &DecodeError{Reason: "non_canonical", Detail: fmt.Sprintf(format, a...)}
}

func malformed(format string, a ...any) error {
	return &DecodeError{Reason: "malformed", Detail: fmt.Sprintf(format, a...)}
}

// Reason returns the SPEC 15 rejection reason of a decode error ("malformed" by default).
func Reason(err error) string {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	return "malformed"
}

func errUnknownMessage(name string) error { return fmt.Errorf("unknown message %q", name) }

func hexs(b []byte) string { return hex.EncodeToString(b) }

// Encode returns the canonical encoding of m.
func Encode(m Message) []byte { return m.AppendTo(nil) }

func decodeStrict(m Message, b []byte) error {
	if err := m.unmarshal(b); err != nil {
		return err
	}
	if !bytes.Equal(m.AppendTo(make([]byte, 0, len(b))), b) {
		return nonCanonical("re-encoding differs")
	}
	return nil
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func appendMessage(b []byte, m Message) []byte {
	// Reserve one length byte, encode, then fix up the length in place.
	start := len(b)
	b = append(b, 0)
	b = m.AppendTo(b)
	n := len(b) - start - 1
	if n < 0x80 {
		b[start] = byte(n)
		return b
	}
	extra := varintLen(uint64(n)) - 1
	b = append(b, make([]byte, extra)...)
	copy(b[start+1+extra:], b[start+1:start+1+n])
	lv := appendVarint(nil, uint64(n))
	copy(b[start:], lv)
	return b
}

// readVarint reads a varint: truncated -> malformed; longer than 10 bytes
// or above 2^64-1 -> non_canonical. Non-minimal forms are caught by re-encoding.
func readVarint(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; ; i++ {
		if i >= len(b) {
			return 0, 0, malformed("truncated varint")
		}
		if i >= 10 {
			return 0, 0, nonCanonical("varint longer than 10 bytes")
		}
		c := b[i]
		if i == 9 && c > 1 {
			if c&0x80 != 0 {
				return 0, 0, nonCanonical("varint longer than 10 bytes")
			}
			return 0, 0, nonCanonical("varint above 2^64-1")
		}
		v |= uint64(c&0x7f) << (7 * uint(i))
		if c < 0x80 {
			if i > 0 && c == 0 {
				return 0, 0, nonCanonical("non-minimal varint")
			}
			return v, i + 1, nil
		}
	}
}

func readTag(b []byte) (uint64, int, int, error) {
	v, n, err := readVarint(b)
	if err != nil {
		return 0, 0, 0, err
	}
	num, wt := v>>3, int(v&7)
	if num == 0 || num > 1<<29-1 {
		return 0, 0, 0, nonCanonical("field number %d", num)
	}
	if wt == 3 || wt == 4 {
		return 0, 0, 0, nonCanonical("group wire type")
	}
	return num, wt, n, nil
}

func readLen(b []byte) ([]byte, int, error) {
	l, n, err := readVarint(b)
	if err != nil {
		return nil, 0, err
	}
	if l > uint64(len(b)-n) {
		return nil, 0, malformed("length %d runs past the end", l)
	}
	return b[n : n+int(l)], n + int(l), nil
}
