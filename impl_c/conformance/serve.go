package conformance

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strings"
	"unicode/utf8"

	"heraclius/impl_c/manifest"
	"heraclius/impl_c/merkle"
	"heraclius/impl_c/rsm"
	"heraclius/impl_c/sig"
	"heraclius/impl_c/wire"
)

// MaxServeLine is the SPEC 17.1 request line limit.
const MaxServeLine = 64 << 20

type serveErr string

func (e serveErr) Error() string { return string(e) }

// Serve runs the SPEC 17.1 differential adapter: one JSON request per line
// in, one JSON answer per line out.
func Serve(in io.Reader, out io.Writer) error {
	r := bufio.NewReaderSize(in, 1<<16)
	w := bufio.NewWriter(out)
	for {
		line, tooLong, err := readServeLine(r)
		if err == io.EOF && line == nil {
			return w.Flush()
		}
		var ans map[string]any
		if tooLong {
			ans = map[string]any{"id": nil, "ok": false, "error": "request line over 64 MiB"}
		} else {
			ans = serveOne(line)
		}
		b, _ := json.Marshal(ans)
		w.Write(append(b, '\n'))
		if err := w.Flush(); err != nil {
			return err
		}
		if err == io.EOF {
			return nil
		}
	}
}

func readServeLine(r *bufio.Reader) ([]byte, bool, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > MaxServeLine+1 {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			if len(buf) == 0 && !tooLong {
				return nil, false, io.EOF
			}
			return bytes.TrimRight(buf, "\r\n"), tooLong, io.EOF
		}
		if err != nil {
			return nil, false, err
		}
		return bytes.TrimRight(buf, "\r\n"), tooLong, nil
	}
}

// checkNumbers refuses numbers that overflow a double.
func checkNumbers(v any) error {
	switch t := v.(type) {
	case json.Number:
		f, err := t.Float64()
		if err != nil || math.IsInf(f, 0) {
			return errors.New("number overflows a double")
		}
	case []any:
		for _, e := range t {
			if err := checkNumbers(e); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, e := range t {
			if err := checkNumbers(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func serveOne(line []byte) (ans map[string]any) {
	var req map[string]any
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	if !utf8.Valid(line) {
		return map[string]any{"id": nil, "ok": false, "error": "bad JSON: not UTF-8"}
	}
	if err := d.Decode(&req); err != nil || d.More() || req == nil || checkNumbers(req) != nil || checkDuplicateKeys(line) != nil {
		return map[string]any{"id": nil, "ok": false, "error": "bad JSON"}
	}
	// Echo id as the same JSON text (e.g. lone surrogate escapes survive).
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(line, &raw)
	var id any = req["id"]
	if r, ok := raw["id"]; ok {
		id = r
	}
	defer func() {
		if r := recover(); r != nil {
			ans = map[string]any{"id": id, "ok": false, "error": fmt.Sprint(r)}
		}
	}()
	res, err := serveOp(req)
	if err != nil {
		return map[string]any{"id": id, "ok": false, "error": err.Error()}
	}
	res["id"] = id
	res["ok"] = true
	return res
}

func field(req map[string]any, k string) (any, error) {
	v, ok := req[k]
	if !ok {
		return nil, serveErr("missing field " + k)
	}
	return v, nil
}

func str(req map[string]any, k string) (string, error) {
	v, err := field(req, k)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", serveErr(k + " is not a string")
	}
	return s, nil
}

func hexField(req map[string]any, k string) ([]byte, error) {
	s, err := str(req, k)
	if err != nil {
		return nil, err
	}
	return strictHex(s, k)
}

func strictHex(s, k string) ([]byte, error) {
	if strings.ToLower(s) != s || len(s)%2 != 0 {
		return nil, serveErr(k + ": not lowercase even-length hex")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, serveErr(k + ": bad hex")
	}
	return b, nil
}

// intField reads a JSON integer; range tells whether it is below 0 (-1),
// within uint64 (0) or above 2^64-1 (+1).
func intField(req map[string]any, k string) (uint64, int, error) {
	v, err := field(req, k)
	if err != nil {
		return 0, 0, err
	}
	n, ok := v.(json.Number)
	if !ok || strings.ContainsAny(n.String(), ".eE+") {
		return 0, 0, serveErr(k + " is not an integer")
	}
	bi, ok := new(big.Int).SetString(n.String(), 10)
	if !ok {
		return 0, 0, serveErr(k + " is not an integer")
	}
	switch {
	case bi.Sign() < 0:
		return 0, -1, nil
	case !bi.IsUint64():
		return ^uint64(0), 1, nil
	}
	return bi.Uint64(), 0, nil
}

func hexList(req map[string]any, k string) ([][]byte, error) {
	v, err := field(req, k)
	if err != nil {
		return nil, err
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, serveErr(k + " is not a list")
	}
	out := [][]byte{}
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, serveErr(k + " holds a non-string")
		}
		b, err := strictHex(s, k)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func manifestField(req map[string]any) (*manifest.Manifest, error) {
	v, err := field(req, "manifest")
	if err != nil {
		return nil, err
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, serveErr("manifest is not an object")
	}
	b, _ := json.Marshal(v)
	return manifest.Parse(b)
}

func reject(reason string) map[string]any {
	r := map[string]any{"verdict": "reject"}
	if reason != "" {
		r["reason"] = reason
	}
	return r
}

func verdictOf(ok bool) map[string]any {
	if ok {
		return map[string]any{"verdict": "accept"}
	}
	return map[string]any{"verdict": "reject"}
}

var domainMessage = map[string]string{"client-request": "ClientRequest", "client-bundle": "RequestBundle", "decision": "DecisionHeader",
	"proposal": "Proposal", "prepare": "Prepare", "view-change": "ViewChange", "view-data": "ViewData", "new-view": "NewView"}

func serveOp(req map[string]any) (map[string]any, error) {
	op, err := str(req, "op")
	if err != nil {
		return nil, err
	}
	switch op {
	case "decode":
		name, err := str(req, "message")
		if err != nil {
			return nil, err
		}
		if wire.NewByName(name) == nil {
			return nil, serveErr("unknown message " + name)
		}
		b, err := hexField(req, "hex")
		if err != nil {
			return nil, err
		}
		m, err := wire.DecodeByName(name, b)
		if err != nil {
			return reject(wire.Reason(err)), nil
		}
		return map[string]any{"verdict": "accept", "json": m.JSON(), "hex": hex.EncodeToString(wire.Encode(m))}, nil
	case "encode":
		name, err := str(req, "message")
		if err != nil {
			return nil, err
		}
		if wire.NewByName(name) == nil {
			return nil, serveErr("unknown message " + name)
		}
		v, err := field(req, "json")
		if err != nil {
			return nil, err
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return reject(""), nil
		}
		m, err := wire.FromJSONByName(name, obj)
		if err != nil {
			return reject(""), nil
		}
		enc := wire.Encode(m)
		if _, err := wire.DecodeByName(name, enc); err != nil {
			return reject(""), nil
		}
		return map[string]any{"hex": hex.EncodeToString(enc)}, nil
	case "ed25519_verify":
		pub, err := hexField(req, "public")
		if err != nil {
			return nil, err
		}
		msg, err := hexField(req, "message")
		if err != nil {
			return nil, err
		}
		sg, err := hexField(req, "signature")
		if err != nil {
			return nil, err
		}
		return verdictOf(sig.Verify(pub, msg, sg)), nil
	case "signing_bytes":
		domain, err := str(req, "domain")
		if err != nil {
			return nil, err
		}
		typ, ok := domainMessage[domain]
		if !ok {
			return nil, serveErr("unknown domain " + domain)
		}
		network, err := str(req, "network_id")
		if err != nil {
			return nil, err
		}
		b, err := hexField(req, "hex")
		if err != nil {
			return nil, err
		}
		body, _, err := stripSignature(typ, b)
		if err != nil {
			return reject(wire.Reason(err)), nil
		}
		return map[string]any{"hex": hex.EncodeToString(sig.SigningBytes(domain, network, body))}, nil
	case "merkle_root":
		leaves, err := hexList(req, "leaves")
		if err != nil {
			return nil, err
		}
		return map[string]any{"root": hex.EncodeToString(merkle.Root(leaves))}, nil
	case "merkle_verify":
		var lh []byte
		_, hasLeaf := req["leaf"]
		_, hasHash := req["leaf_hash"]
		if !hasLeaf && !hasHash {
			return nil, serveErr("missing field leaf or leaf_hash")
		}
		if hasLeaf {
			l, err := hexField(req, "leaf")
			if err != nil {
				return nil, err
			}
			lh = merkle.LeafHash(l)
		}
		if hasHash {
			h, err := hexField(req, "leaf_hash")
			if err != nil {
				return nil, err
			}
			if lh != nil && !bytes.Equal(lh, h) {
				return reject(""), nil
			}
			lh = h
		}
		idx, ir, err := intField(req, "index")
		if err != nil {
			return nil, err
		}
		cnt, cr, err := intField(req, "count")
		if err != nil {
			return nil, err
		}
		proof, err := hexList(req, "proof")
		if err != nil {
			return nil, err
		}
		root, err := hexField(req, "root")
		if err != nil {
			return nil, err
		}
		if ir != 0 || cr != 0 {
			return reject(""), nil // outside the protocol's integers: no valid proof
		}
		return verdictOf(merkle.Verify(lh, idx, cnt, proof, root)), nil
	case "qc_verify":
		m, err := manifestField(req)
		if err != nil {
			return nil, err
		}
		cluster, err := str(req, "cluster")
		if err != nil {
			return nil, err
		}
		hb, err := hexField(req, "header")
		if err != nil {
			return nil, err
		}
		qb, err := hexField(req, "qc")
		if err != nil {
			return nil, err
		}
		h, err := wire.DecodeDecisionHeader(hb)
		if err != nil {
			return reject(wire.Reason(err)), nil
		}
		qc, err := wire.DecodeQuorumCert(qb)
		if err != nil {
			return reject(wire.Reason(err)), nil
		}
		if h.ClusterID != cluster || m.Cluster(cluster) == nil {
			return reject("wrong_cluster"), nil
		}
		if r := rsm.VerifyQC(m, nil, h, qc); r != "" {
			return reject(r), nil
		}
		return verdictOf(true), nil
	case "compact_verify":
		m, err := manifestField(req)
		if err != nil {
			return nil, err
		}
		src, err := str(req, "source")
		if err != nil {
			return nil, err
		}
		dst, err := str(req, "destination")
		if err != nil {
			return nil, err
		}
		next, nr, err := intField(req, "next_seq")
		if err != nil {
			return nil, err
		}
		cb, err := hexField(req, "compact")
		if err != nil {
			return nil, err
		}
		cd, err := wire.DecodeCompactDecision(cb)
		if err != nil {
			return reject(wire.Reason(err)), nil
		}
		if nr < 0 {
			next = 0
		}
		r := rsm.VerifyCompact(m, nil, cd, src, dst, next)
		if r == "" && nr < 0 {
			r = "out_of_order" // every seq is above a negative next_seq
		}
		if r == "" && nr > 0 {
			r = "replay" // every seq is below a next_seq above 2^64-1
		}
		if r != "" {
			return reject(r), nil
		}
		return verdictOf(true), nil
	case "execute":
		m, err := manifestField(req)
		if err != nil {
			return nil, err
		}
		cluster, err := str(req, "cluster")
		if err != nil {
			return nil, err
		}
		if m.Cluster(cluster) == nil {
			return nil, serveErr("cluster not in the manifest")
		}
		batches, err := hexList(req, "batches")
		if err != nil {
			return nil, err
		}
		st := rsm.NewState(m, cluster, nil)
		out := []any{}
		for _, bb := range batches {
			b, err := wire.DecodeBatch(bb)
			if err != nil {
				out = append(out, map[string]any{"verdict": "reject"})
				break
			}
			res, err := st.Execute(b)
			if err != nil {
				out = append(out, map[string]any{"verdict": "reject"})
				break
			}
			out = append(out, hex.EncodeToString(wire.Encode(res.Decision)))
			st.Apply(res)
		}
		return map[string]any{"decisions": out}, nil
	case "shard_of":
		m, err := manifestField(req)
		if err != nil {
			return nil, err
		}
		k, err := hexField(req, "key")
		if err != nil {
			return nil, err
		}
		return map[string]any{"shard": m.ShardOf(k)}, nil
	case "manifest_validate":
		v, err := field(req, "manifest")
		if err != nil {
			return nil, err
		}
		b, _ := json.Marshal(v)
		_, err = manifest.Parse(b)
		if err == nil {
			return verdictOf(true), nil
		}
		var me *manifest.Error
		if errors.As(err, &me) {
			r := map[string]any{"verdict": "reject", "stage": me.Stage, "rule": nil}
			if me.Stage == "semantic" {
				r["rule"] = me.Rule
			} else {
				r["stage"] = "schema"
			}
			return r, nil
		}
		return map[string]any{"verdict": "reject", "stage": "schema", "rule": nil}, nil
	}
	return nil, serveErr("unknown op " + op)
}
