// Package store is the durable log of an impl_c node on bbolt (SPEC 12.8,
// 12.9): decisions by height and the consensus metadata (view, vote,
// prepared certificate, installing NewView). Every value carries a CRC-32C
// so that a damaged record is detected; each Write is one fsynced bbolt
// transaction.
package store

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"heraclius/impl_c/core"
	"heraclius/impl_c/wire"
)

var (
	bDecisions = []byte("decisions")
	bMeta      = []byte("meta")
	bAnswers   = []byte("answers")
	crcTable   = crc32.MakeTable(crc32.Castagnoli)
)

// ErrLocked is returned when another process holds the data directory.
var ErrLocked = errors.New("data directory locked by another process")

// CorruptError is a damaged record before the last one (exit 4).
type CorruptError struct{ Msg string }

func (e *CorruptError) Error() string { return "corrupted record: " + e.Msg }

// Store is an open data directory.
type Store struct {
	db *bolt.DB
}

// Open opens (creating) dir/log.db with an exclusive lock.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(dir, "log.db"), 0o600, &bolt.Options{Timeout: 200 * time.Millisecond, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, ErrLocked
		}
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bDecisions); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bAnswers); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(bMeta)
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func seal(b []byte) []byte {
	out := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(out, crc32.Checksum(b, crcTable))
	return append(out, b...)
}

func unseal(v []byte) ([]byte, bool) {
	if len(v) < 4 {
		return nil, false
	}
	b := v[4:]
	return append([]byte{}, b...), binary.BigEndian.Uint32(v[:4]) == crc32.Checksum(b, crcTable)
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// Write makes records durable in one fsynced transaction.
func (s *Store) Write(recs []core.Record) error {
	if len(recs) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		dec, meta := tx.Bucket(bDecisions), tx.Bucket(bMeta)
		for _, r := range recs {
			var err error
			switch r.Kind {
			case core.RecDecision:
				err = dec.Put(u64(r.Height), seal(r.Data))
				if err == nil {
					err = indexAnswers(tx.Bucket(bAnswers), r)
				}
			case core.RecView:
				err = meta.Put([]byte("view"), seal(u64(r.View)))
			case core.RecVote:
				err = meta.Put([]byte("vote"), seal(r.Data))
			case core.RecPrepared:
				err = meta.Put([]byte("prepared"), seal(append(append([]byte{}, r.Sig...), r.Data...)))
			case core.RecNewView:
				err = meta.Put([]byte("newview"), seal(r.Data))
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Decision reads the decision at height h (nil if absent).
func (s *Store) Decision(h uint64) (*wire.Decision, error) {
	var out *wire.Decision
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bDecisions).Get(u64(h))
		if v == nil {
			return nil
		}
		b, ok := unseal(v)
		if !ok {
			return &CorruptError{fmt.Sprintf("decision %d checksum", h)}
		}
		d, err := wire.DecodeDecision(b)
		if err != nil {
			return &CorruptError{fmt.Sprintf("decision %d: %v", h, err)}
		}
		out = d
		return nil
	})
	return out, err
}

// Load reads everything for replay. A damaged last decision (torn tail) is
// discarded and deleted; a damaged earlier one is a CorruptError.
func (s *Store) Load() (*core.Restored, error) {
	r := &core.Restored{}
	var torn []uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bDecisions).Cursor()
		var want uint64 = 1
		var bad error
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			h := binary.BigEndian.Uint64(k)
			if bad != nil {
				return bad // a damaged record before the last one
			}
			b, ok := unseal(v)
			var d *wire.Decision
			var err error
			if ok {
				d, err = wire.DecodeDecision(b)
			}
			if !ok || err != nil || h != want || d.Header == nil || d.Header.Height != h {
				bad = &CorruptError{fmt.Sprintf("decision at height %d", h)}
				torn = append(torn, h)
				continue
			}
			r.Decisions = append(r.Decisions, d)
			want++
		}
		meta := tx.Bucket(bMeta)
		if v := meta.Get([]byte("view")); v != nil {
			if b, ok := unseal(v); ok && len(b) == 8 {
				r.View = binary.BigEndian.Uint64(b)
			} else {
				return &CorruptError{"view record"}
			}
		}
		if v := meta.Get([]byte("vote")); v != nil {
			if b, ok := unseal(v); ok {
				r.Vote, _ = wire.DecodeProposal(b)
			}
		}
		if v := meta.Get([]byte("prepared")); v != nil {
			if b, ok := unseal(v); ok && len(b) >= 64 {
				r.PrepSig = b[:64]
				r.Prepared, _ = wire.DecodePreparedCert(b[64:])
			}
		}
		if v := meta.Get([]byte("newview")); v != nil {
			if b, ok := unseal(v); ok {
				r.NewView, _ = wire.DecodeNewView(b)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(torn) > 0 {
		if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bDecisions).Delete(u64(torn[0])) }); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// indexAnswers records (client key, request id) -> height for every
// ClientResponse of a decision (the SPEC 14.3 answer index).
func indexAnswers(b *bolt.Bucket, r core.Record) error {
	d, err := wire.DecodeDecision(r.Data)
	if err != nil {
		return err
	}
	for _, l := range d.Outputs {
		if len(l.Responses) == 0 || !strings.HasPrefix(l.Destination, "client:") {
			continue
		}
		key, err := hex.DecodeString(l.Destination[len("client:"):])
		if err != nil {
			continue
		}
		for _, resp := range l.Responses {
			if err := b.Put(append(append([]byte{}, key...), u64(resp.RequestID)...), u64(r.Height)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Answer looks up the answer index.
func (s *Store) Answer(client []byte, id uint64) (uint64, bool, error) {
	var h uint64
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bAnswers).Get(append(append([]byte{}, client...), u64(id)...))
		if len(v) == 8 {
			h, ok = binary.BigEndian.Uint64(v), true
		}
		return nil
	})
	return h, ok, err
}
