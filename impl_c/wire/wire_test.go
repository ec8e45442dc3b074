package wire

import (
	"bytes"
	"testing"
)

func TestDecodeTable(t *testing.T) {
	cases := []struct {
		name   string
		in     []byte
		reason string // "" = accept
	}{
		{"empty Operation", nil, ""},
		{"GET key k", []byte{0x08, 0x01, 0x12, 0x01, 'k'}, ""},
		{"default kind written", []byte{0x08, 0x00}, "non_canonical"},
		{"out of order", []byte{0x12, 0x01, 'k', 0x08, 0x01}, "non_canonical"},
		{"duplicate field", []byte{0x08, 0x01, 0x08, 0x02}, "non_canonical"},
		{"non-minimal varint", []byte{0x08, 0x81, 0x00}, "non_canonical"},
		{"unknown field", []byte{0x20, 0x01}, "non_canonical"},
		{"enum out of range", []byte{0x08, 0x03}, "non_canonical"},
		{"wrong wire type", []byte{0x0a, 0x00}, "non_canonical"},
		{"truncated varint", []byte{0x08, 0x81}, "malformed"},
		{"length past end", []byte{0x12, 0x05, 'k'}, "malformed"},
		{"field number zero", []byte{0x02, 0x00}, "non_canonical"},
	}
	for _, tc := range cases {
		_, err := DecodeOperation(tc.in)
		switch {
		case tc.reason == "" && err != nil:
			t.Errorf("%s: rejected: %v", tc.name, err)
		case tc.reason != "" && err == nil:
			t.Errorf("%s: accepted", tc.name)
		case tc.reason != "" && Reason(err) != tc.reason:
			t.Errorf("%s: reason %s, want %s", tc.name, Reason(err), tc.reason)
		}
	}
}

func TestRoundTripNested(t *testing.T) {
	big := bytes.Repeat([]byte{7}, 300) // forces a two-byte length inside a nested message
	m := &PeerMessage{Proposal: &Proposal{ClusterID: "c0", View: 3, Height: 9, Header: &DecisionHeader{ClusterID: "c0", Height: 9},
		Batch: &Batch{Inputs: []*Input{{Client: &ClientRequest{RequestID: 1, Op: &Operation{Kind: OpKindPut, Key: []byte("k"), Value: big}}}}}}}
	b := Encode(m)
	d, err := DecodePeerMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(Encode(d), b) {
		t.Fatal("re-encoding differs")
	}
}

func TestEmptyOneofRejected(t *testing.T) {
	if _, err := DecodeInput(nil); err == nil {
		t.Fatal("empty Input accepted")
	}
	if _, err := DecodeClientReply([]byte{0x0a, 0x00, 0x12, 0x00}); err == nil {
		t.Fatal("two oneof members accepted")
	}
}

func FuzzDecodePeerMessage(f *testing.F) {
	f.Add(Encode(&PeerMessage{Heartbeat: &Heartbeat{ClusterID: "c0", View: 1, Height: 2, LeaderID: "n"}}))
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodePeerMessage(b)
		if err == nil && !bytes.Equal(Encode(m), b) {
			t.Fatal("accepted bytes that do not re-encode identically")
		}
	})
}

func FuzzDecodeClientMessage(f *testing.F) {
	f.Add(Encode(&ClientMessage{Submit: &ClientRequest{RequestID: 1}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeClientMessage(b)
		if err == nil && !bytes.Equal(Encode(m), b) {
			t.Fatal("accepted bytes that do not re-encode identically")
		}
	})
}
