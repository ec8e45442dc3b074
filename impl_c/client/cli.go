package client

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"heraclius/impl_c/manifest"
	"heraclius/impl_c/wire"
)

func readKey(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if perm := st.Mode().Perm(); perm != 0o600 && perm != 0o400 {
		return nil, fmt.Errorf("key file %s: mode %o, must be 0600 or 0400", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) != 65 || b[64] != '\n' || strings.ToLower(string(b[:64])) != string(b[:64]) {
		return nil, fmt.Errorf("key file %s is malformed", path)
	}
	return hex.DecodeString(string(b[:64]))
}

func printJSON(v any) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

// Main runs the SPEC 4.1 client command line.
func Main(args []string) int {
	fs := flag.NewFlagSet("heraclius-client", flag.ContinueOnError)
	mf := fs.String("manifest", "", "manifest file")
	kf := fs.String("key", "", "client key file")
	cluster := fs.String("cluster", "", "coordinator cluster")
	timeoutMs := fs.Int("timeout-ms", 10000, "deadline per operation")
	hexMode := fs.Bool("hex", false, "KEY and VALUE are hex")
	if err := fs.Parse(args); err != nil || *mf == "" || *kf == "" || fs.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: heraclius-client --manifest FILE --key FILE [--cluster ID] [--timeout-ms N] [--hex] get|put|workload ...")
		return 2
	}
	m, err := manifest.LoadFile(*mf)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	seed, err := readKey(*kf)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	c, err := New(m, seed, *cluster)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	timeout := time.Duration(*timeoutMs) * time.Millisecond
	rest := fs.Args()
	dec := func(s string) ([]byte, error) {
		if *hexMode {
			return hex.DecodeString(s)
		}
		return []byte(s), nil
	}
	enc := func(b []byte) string {
		if *hexMode {
			return hex.EncodeToString(b)
		}
		return string(b)
	}
	switch rest[0] {
	case "get", "put":
		op := rest[0]
		if (op == "get" && len(rest) != 2) || (op == "put" && len(rest) != 3) {
			fmt.Fprintln(os.Stderr, "get KEY | put KEY VALUE")
			return 2
		}
		key, err := dec(rest[1])
		if err != nil {
			printJSON(map[string]any{"op": op, "error": "bad hex key"})
			return 1
		}
		var value []byte
		kind := wire.OpKindGet
		if op == "put" {
			kind = wire.OpKindPut
			if value, err = dec(rest[2]); err != nil {
				printJSON(map[string]any{"op": op, "error": "bad hex value"})
				return 1
			}
		}
		u := c.NewUser()
		defer u.Close()
		res, err := u.Do(c.NewRequest(kind, key, value), timeout)
		if err != nil {
			printJSON(map[string]any{"op": op, "error": err.Error()})
			return 1
		}
		out := map[string]any{"op": op, "key": rest[1], "found": res.Found, "cluster": c.Cluster.ID, "height": res.Height,
			"node": res.Node, "shard": res.Shard, "shard_height": res.ShardHeight}
		if op == "put" {
			out["value"] = enc(value)
		} else if res.Found {
			out["value"] = enc(res.Value)
		} else {
			out["value"] = nil
		}
		printJSON(out)
		return 0
	case "workload":
		return workload(c, *kf, timeout, rest[1:])
	}
	fmt.Fprintln(os.Stderr, "unknown command", rest[0])
	return 2
}

type histLine struct {
	Process    string  `json:"process"`
	Op         string  `json:"op"`
	Key        string  `json:"key"`
	Value      *string `json:"value"`
	InvokeMs   float64 `json:"invoke_ms"`
	CompleteMs float64 `json:"complete_ms"`
	Result     string  `json:"result"`
	RequestID  uint64  `json:"request_id"`
}

func workload(c *Client, keyFile string, timeout time.Duration, args []string) int {
	fs := flag.NewFlagSet("workload", flag.ContinueOnError)
	ops := fs.Int("ops", 100, "operations")
	conc := fs.Int("concurrency", 8, "users")
	nkeys := fs.Int("keys", 16, "keys")
	ratio := fs.Float64("put-ratio", 0.5, "PUT probability")
	seed := fs.Int64("seed", 0, "seed")
	dur := fs.Float64("duration-s", 0, "duration")
	prefix := fs.String("key-prefix", "k", "key prefix")
	keyBytes := fs.Int("key-bytes", 0, "key bytes")
	preload := fs.Bool("preload", false, "PUT each key once")
	pattern := fs.String("pattern", "uniform", "uniform|payments")
	history := fs.String("history", "", "history file")
	samples := fs.String("samples", "", "samples file")
	bundle := fs.Int("bundle", 1, "impl_c extension: send each user's operations in signed bundles of this many items (SPEC 14.6)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	keyOf := func(i int) []byte {
		if *keyBytes > 0 {
			d := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(*prefix), uint64(i)))
			n := *keyBytes
			if n > 32 {
				n = 32
			}
			return d[:n]
		}
		return []byte(*prefix + strconv.Itoa(i))
	}
	process := strings.TrimSuffix(filepath.Base(keyFile), filepath.Ext(keyFile))
	var hmu sync.Mutex
	var hist *os.File
	if *history != "" {
		f, err := os.OpenFile(*history, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer f.Close()
		hist = f
	}
	total := *ops
	if *preload {
		total = *nkeys
	}
	var mu sync.Mutex
	issued, okN, failN := 0, 0, 0
	var lats []float64
	start := time.Now()
	stopAt := time.Time{}
	if *dur > 0 {
		stopAt = start.Add(time.Duration(*dur * float64(time.Second)))
	}
	peek := func() (bool, int) {
		mu.Lock()
		defer mu.Unlock()
		return issued < total && (stopAt.IsZero() || time.Now().Before(stopAt)), 0
	}
	type done struct {
		at  time.Time
		ok  bool
		lat float64
	}
	var dones []done
	record := func(w int, t0, t1 time.Time, kind wire.OpKind, key, val []byte, res *Result, err error, id uint64) {
		mu.Lock()
		dones = append(dones, done{t1, err == nil, float64(t1.Sub(t0).Microseconds()) / 1000})
		if err == nil {
			okN++
			lats = append(lats, float64(t1.Sub(t0).Microseconds())/1000)
		} else {
			failN++
		}
		mu.Unlock()
		if hist == nil {
			return
		}
		h := histLine{Process: fmt.Sprintf("%s-%d", process, w), Key: hex.EncodeToString(key),
			InvokeMs: float64(t0.UnixMicro()) / 1000, CompleteMs: float64(t1.UnixMicro()) / 1000, RequestID: id}
		if kind == wire.OpKindPut {
			h.Op = "put"
			v := hex.EncodeToString(val)
			h.Value = &v
		} else {
			h.Op = "get"
			if res != nil && res.Found {
				v := hex.EncodeToString(res.Value)
				h.Value = &v
			}
		}
		switch {
		case err == nil:
			h.Result = "ok"
		case kind == wire.OpKindGet:
			h.Result = "fail"
		default:
			h.Result = "unknown"
			if _, final := err.(*ErrFinal); final {
				h.Result = "fail"
			}
		}
		b, _ := json.Marshal(h)
		hmu.Lock()
		hist.Write(append(b, '\n'))
		hmu.Unlock()
	}
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if issued >= total || (!stopAt.IsZero() && time.Now().After(stopAt)) {
			return 0, false
		}
		issued++
		return issued - 1, true
	}
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(*seed*1000003 + int64(w)))
			u := c.NewUser()
			defer u.Close()
			var plan []func() (wire.OpKind, []byte, []byte)
			var pend []Op
			for {
				idx, ok := take()
				if !ok {
					if len(pend) > 0 {
						batch := pend
						pend = nil
						t0 := time.Now()
						results, errs, ids := u.DoBundle(batch, timeout)
						t1 := time.Now()
						for j, op := range batch {
							record(w, t0, t1, op.Kind, op.Key, op.Value, results[j], errs[j], ids[j])
						}
					}
					return
				}
				var kind wire.OpKind
				var key, val []byte
				switch {
				case *preload:
					kind, key = wire.OpKindPut, keyOf(idx)
					val = []byte(fmt.Sprintf("v-%s-%d-%d", process, w, idx))
				case *pattern == "payments":
					if len(plan) == 0 {
						a := rng.Intn(*nkeys)
						b := rng.Intn(*nkeys - 1)
						if b >= a {
							b++
						}
						ka, kb := keyOf(a), keyOf(b)
						va := []byte(fmt.Sprintf("v-%s-%d-%d-a", process, w, idx))
						vb := []byte(fmt.Sprintf("v-%s-%d-%d-b", process, w, idx))
						plan = []func() (wire.OpKind, []byte, []byte){
							func() (wire.OpKind, []byte, []byte) { return wire.OpKindGet, ka, nil },
							func() (wire.OpKind, []byte, []byte) { return wire.OpKindGet, kb, nil },
							func() (wire.OpKind, []byte, []byte) { return wire.OpKindPut, ka, va },
							func() (wire.OpKind, []byte, []byte) { return wire.OpKindPut, kb, vb },
						}
					}
					kind, key, val = plan[0]()
					plan = plan[1:]
				default:
					key = keyOf(rng.Intn(*nkeys))
					if rng.Float64() < *ratio {
						kind = wire.OpKindPut
						val = []byte(fmt.Sprintf("v-%s-%d-%d", process, w, idx))
					} else {
						kind = wire.OpKindGet
					}
				}
				pend = append(pend, Op{kind, key, val})
				if len(pend) < *bundle {
					if more, _ := peek(); more {
						continue
					}
				}
				batch := pend
				pend = nil
				t0 := time.Now()
				var results []*Result
				var errs []error
				var ids []uint64
				if len(batch) == 1 {
					r := c.NewRequest(batch[0].Kind, batch[0].Key, batch[0].Value)
					res, err := u.Do(r, timeout)
					results, errs, ids = []*Result{res}, []error{err}, []uint64{r.RequestID}
				} else {
					results, errs, ids = u.DoBundle(batch, timeout)
				}
				t1 := time.Now()
				for j, op := range batch {
					record(w, t0, t1, op.Kind, op.Key, op.Value, results[j], errs[j], ids[j])
				}
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	if *samples != "" {
		writeSamples(*samples, start, func(yield func(time.Time, bool, float64)) {
			for _, d := range dones {
				yield(d.at, d.ok, d.lat)
			}
		})
	}
	sort.Float64s(lats)
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		i := int(p * float64(len(lats)-1))
		return lats[i]
	}
	mean := 0.0
	for _, l := range lats {
		mean += l
	}
	if len(lats) > 0 {
		mean /= float64(len(lats))
	}
	max := 0.0
	if len(lats) > 0 {
		max = lats[len(lats)-1]
	}
	printJSON(map[string]any{"ops": okN + failN, "ok": okN, "failed": failN, "elapsed_s": elapsed,
		"ops_per_s": float64(okN+failN) / elapsed, "latency_ms": map[string]any{"mean": mean, "p50": pct(0.5), "p99": pct(0.99), "max": max}})
	if failN > 0 {
		return 1
	}
	return 0
}

// writeSamples writes one JSON line per wall-clock second of the run (SPEC 4.1 --samples).
func writeSamples(path string, start time.Time, each func(func(time.Time, bool, float64))) {
	type bucket struct {
		ok, failed int
		lats       []float64
	}
	buckets := map[int64]*bucket{}
	var keys []int64
	each(func(at time.Time, ok bool, lat float64) {
		sec := at.UnixMilli() / 1000 * 1000
		b := buckets[sec]
		if b == nil {
			b = &bucket{}
			buckets[sec] = b
			keys = append(keys, sec)
		}
		if ok {
			b.ok++
			b.lats = append(b.lats, lat)
		} else {
			b.failed++
		}
	})
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	for _, k := range keys {
		b := buckets[k]
		sort.Float64s(b.lats)
		pick := func(p float64) float64 {
			if len(b.lats) == 0 {
				return 0
			}
			return b.lats[int(p*float64(len(b.lats)-1))]
		}
		max := 0.0
		if len(b.lats) > 0 {
			max = b.lats[len(b.lats)-1]
		}
		line, _ := json.Marshal(map[string]any{"t_ms": k, "ok": b.ok, "failed": b.failed,
			"latency_ms": map[string]any{"p50": pick(0.5), "p99": pick(0.99), "max": max}})
		f.Write(append(line, '\n'))
	}
	_ = start
}
