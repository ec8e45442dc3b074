package wire

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

func badJSON(field string) error { return fmt.Errorf("not a canonical rendering at %q", field) }

// jsonUint accepts a JSON integer (json.Number without fraction or exponent) below 2^bits.
func jsonUint(v any, bits uint) (uint64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("not a number")
	}
	s := n.String()
	if s == "" || strings.ContainsAny(s, ".eE+-") || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("not a non-negative integer")
	}
	var u uint64
	for _, c := range s {
		d := uint64(c - '0')
		if u > (^uint64(0)-d)/10 {
			return 0, fmt.Errorf("out of range")
		}
		u = u*10 + d
	}
	if bits < 64 && u >= 1<<bits {
		return 0, fmt.Errorf("out of range")
	}
	return u, nil
}

// jsonHex accepts lowercase even-length hex.
func jsonHex(v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok || strings.ToLower(s) != s {
		return nil, fmt.Errorf("not lowercase hex")
	}
	return hex.DecodeString(s)
}

func enumValue[T ~int32](names map[T]string, name string) (T, bool) {
	for v, n := range names {
		if n == name {
			return v, true
		}
	}
	return 0, false
}

// FromJSONByName builds a message from its JSON rendering.
func FromJSONByName(name string, j map[string]any) (Message, error) {
	m := NewByName(name)
	if m == nil {
		return nil, errUnknownMessage(name)
	}
	if err := m.(interface{ FromJSON(map[string]any) error }).FromJSON(j); err != nil {
		return nil, err
	}
	return m, nil
}
