package stream

import (
	"bytes"
	"testing"
)

func TestParser(t *testing.T) {
	s := append(Frame([]byte("hello")), Frame([]byte("w"))...)
	for split := 1; split < len(s); split++ {
		p := NewParser(100)
		a, err1 := p.Feed(s[:split])
		b, err2 := p.Feed(s[split:])
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		all := append(a, b...)
		if len(all) != 2 || string(all[0]) != "hello" || string(all[1]) != "w" {
			t.Fatalf("split %d: %q", split, all)
		}
	}
	cases := []struct {
		name string
		in   []byte
		err  error
	}{
		{"zero length", []byte{0, 0, 0, 0}, ErrEmpty},
		{"over limit from prefix alone", []byte{0, 0, 0, 101}, ErrOversized},
		{"0xffffffff", []byte{0xff, 0xff, 0xff, 0xff}, ErrOversized},
	}
	for _, tc := range cases {
		if _, err := NewParser(100).Feed(tc.in); err != tc.err {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestSplit(t *testing.T) {
	s := bytes.Repeat([]byte{1}, 3*MaxPayload+5)
	var got []byte
	for _, c := range Split(s) {
		if len(c) < 1 || len(c) > MaxPayload {
			t.Fatal("bad payload size")
		}
		got = append(got, c...)
	}
	if !bytes.Equal(got, s) {
		t.Fatal("split differs")
	}
}

func FuzzParser(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := NewParser(1 << 16)
		for len(b) > 0 {
			n := int(b[0])%7 + 1
			if n > len(b) {
				n = len(b)
			}
			if _, err := p.Feed(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
	})
}
