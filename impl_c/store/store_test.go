package store

import (
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"heraclius/impl_c/core"
	"heraclius/impl_c/wire"
)

func dec(h uint64) []byte {
	return wire.Encode(&wire.Decision{Header: &wire.DecisionHeader{ClusterID: "c0", Height: h}, Batch: &wire.Batch{}})
}

func TestWriteLoadTornCorrupt(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	for h := uint64(1); h <= 3; h++ {
		if err := s.Write([]core.Record{{Kind: core.RecDecision, Height: h, Data: dec(h)}, {Kind: core.RecView, View: h}}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := s.Load()
	if err != nil || len(r.Decisions) != 3 || r.View != 3 {
		t.Fatalf("load: %v %+v", err, r)
	}
	damage := func(h uint64) {
		s.db.Update(func(tx *bolt.Tx) error {
			v := append([]byte{}, tx.Bucket(bDecisions).Get(u64(h))...)
			v[len(v)-1] ^= 1
			return tx.Bucket(bDecisions).Put(u64(h), v)
		})
	}
	damage(3) // torn tail: discarded
	r, err = s.Load()
	if err != nil || len(r.Decisions) != 2 {
		t.Fatalf("torn tail: %v, %d decisions", err, len(r.Decisions))
	}
	damage(1) // before the last one: fatal
	var ce *CorruptError
	if _, err := s.Load(); !errors.As(err, &ce) {
		t.Fatalf("corrupt record: %v", err)
	}
	s.Close()
}

func TestAnswerIndex(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := make([]byte, 32)
	key[0] = 7
	d := &wire.Decision{Header: &wire.DecisionHeader{ClusterID: "c0", Height: 9}, Batch: &wire.Batch{},
		Outputs: []*wire.OutputLeaf{{Destination: "client:07" + strings.Repeat("00", 31), Responses: []*wire.ClientResponse{{RequestID: 42}}}}}
	if err := s.Write([]core.Record{{Kind: core.RecDecision, Height: 9, Data: wire.Encode(d)}}); err != nil {
		t.Fatal(err)
	}
	if h, ok, err := s.Answer(key, 42); err != nil || !ok || h != 9 {
		t.Fatalf("answer: %d %v %v", h, ok, err)
	}
	if _, ok, _ := s.Answer(key, 43); ok {
		t.Fatal("unknown request answered")
	}
}
