package conformance

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"heraclius/impl_c/manifest"
	"heraclius/impl_c/merkle"
	"heraclius/impl_c/rsm"
	"heraclius/impl_c/sig"
	"heraclius/impl_c/stream"
	"heraclius/impl_c/wire"
)

func isValid(dir string) bool { return filepath.Base(filepath.Dir(dir)) == "valid" }

func init() {
	for _, d := range []string{"client-request", "client-bundle", "decision", "proposal", "prepare", "view-change", "view-data", "new-view"} {
		register("signing", d, signingCase)
	}
	register("crypto", "ed25519_verify", ed25519Case)
	register("merkle", "root", merkleRootCase)
	register("merkle", "proof", merkleProofCase)
	register("qc", "verify", qcCase)
	register("compact", "verify", compactCase)
	register("shard", "map", shardCase)
	register("manifest", "validate", manifestCase)
	register("execution", "coordinator", executionCase)
	register("execution", "shard", executionCase)
	register("transport", "stream", streamCase)
}

func codecCase(dir string, meta map[string]any) error {
	name, _ := meta["message"].(string)
	enc := readFile(dir, "encoded.bin")
	m, err := wire.DecodeByName(name, enc)
	if isValid(dir) {
		if err != nil {
			return fmt.Errorf("decode: %v", err)
		}
		var want any
		if err := readJSON(filepath.Join(dir, "decoded.json"), &want); err != nil {
			return err
		}
		if canonJSON(m.JSON()) != canonJSON(want) {
			return fmt.Errorf("JSON differs: got %s want %s", canonJSON(m.JSON()), canonJSON(want))
		}
		if !bytes.Equal(wire.Encode(m), enc) {
			return fmt.Errorf("re-encoding differs")
		}
		back, err := wire.FromJSONByName(name, want.(map[string]any))
		if err != nil {
			return fmt.Errorf("decoded.json does not encode: %v", err)
		}
		if !bytes.Equal(wire.Encode(back), enc) {
			return fmt.Errorf("encoding decoded.json differs")
		}
		return nil
	}
	if err == nil {
		return fmt.Errorf("accepted a non-canonical encoding")
	}
	if r := wire.Reason(err); r != meta["reason"] {
		return fmt.Errorf("reason %s, want %v (%v)", r, meta["reason"], err)
	}
	return nil
}

// stripSignature decodes msg as typ and clears its signature field.
func stripSignature(typ string, b []byte) (body []byte, signature []byte, err error) {
	m, err := wire.DecodeByName(typ, b)
	if err != nil {
		return nil, nil, err
	}
	switch x := m.(type) {
	case *wire.ClientRequest:
		signature, x.Signature = x.Signature, nil
	case *wire.RequestBundle:
		signature, x.Signature = x.Signature, nil
	case *wire.Proposal:
		signature, x.Signature = x.Signature, nil
	case *wire.Prepare:
		signature, x.Signature = x.Signature, nil
	case *wire.ViewChange:
		signature, x.Signature = x.Signature, nil
	case *wire.ViewData:
		signature, x.Signature = x.Signature, nil
	case *wire.NewView:
		signature, x.Signature = x.Signature, nil
	case *wire.DecisionHeader:
	default:
		return nil, nil, fmt.Errorf("no signature field in %s", typ)
	}
	return wire.Encode(m), signature, nil
}

func signingCase(dir string, meta map[string]any) error {
	var in map[string]any
	if err := readJSON(filepath.Join(dir, "input.json"), &in); err != nil {
		return err
	}
	domain := meta["domain"].(string)
	network := in["network_id"].(string)
	pub := hx(in["public_key"])
	body := readFile(dir, "body.bin")
	signature := readFile(dir, "signature.bin")
	if !isValid(dir) {
		if sig.VerifyDomain(pub, domain, network, body, signature) {
			return fmt.Errorf("signature accepted")
		}
		return nil
	}
	typ := meta["message_type"].(string)
	got, field, err := stripSignature(typ, readFile(dir, "message.bin"))
	if err != nil {
		return err
	}
	if !bytes.Equal(got, body) {
		return fmt.Errorf("body differs")
	}
	sb := sig.SigningBytes(domain, network, body)
	if !bytes.Equal(sb, readFile(dir, "signing_bytes.bin")) {
		return fmt.Errorf("signing bytes differ")
	}
	s := sig.NewSigner(hx(in["signer_seed"]))
	if !bytes.Equal(s.Pub, pub) {
		return fmt.Errorf("public key differs")
	}
	if !bytes.Equal(s.SignRaw(sb), signature) {
		return fmt.Errorf("signature differs")
	}
	if domain != "decision" && !bytes.Equal(field, signature) {
		return fmt.Errorf("message signature field differs")
	}
	if !sig.Verify(pub, sb, signature) {
		return fmt.Errorf("signature rejected")
	}
	return nil
}

func ed25519Case(dir string, meta map[string]any) error {
	var in map[string]any
	if err := readJSON(filepath.Join(dir, "input.json"), &in); err != nil {
		return err
	}
	got := sig.Verify(hx(in["public_key"]), hx(in["message"]), hx(in["signature"]))
	if got != isValid(dir) {
		return fmt.Errorf("verify = %v", got)
	}
	return nil
}

func merkleRootCase(dir string, meta map[string]any) error {
	var in, exp map[string]any
	_ = readJSON(filepath.Join(dir, "input.json"), &in)
	_ = readJSON(filepath.Join(dir, "expected.json"), &exp)
	var leaves [][]byte
	for _, l := range in["leaves"].([]any) {
		leaves = append(leaves, hx(l))
	}
	if !bytes.Equal(merkle.Root(leaves), hx(exp["root"])) {
		return fmt.Errorf("root differs")
	}
	for i := range leaves {
		if !merkle.Verify(merkle.LeafHash(leaves[i]), uint64(i), uint64(len(leaves)), merkle.Proof(leaves, i), hx(exp["root"])) {
			return fmt.Errorf("own proof of leaf %d rejected", i)
		}
	}
	return nil
}

func merkleProofCase(dir string, meta map[string]any) error {
	var in map[string]any
	_ = readJSON(filepath.Join(dir, "input.json"), &in)
	var proof [][]byte
	for _, p := range in["proof"].([]any) {
		proof = append(proof, hx(p))
	}
	lh := hx(in["leaf_hash"])
	ok := merkle.Verify(lh, num(in["leaf_index"]), num(in["leaf_count"]), proof, hx(in["root"]))
	if l, has := in["leaf"]; has && !bytes.Equal(merkle.LeafHash(hx(l)), lh) {
		ok = false
	}
	if ok != isValid(dir) {
		return fmt.Errorf("verify = %v", ok)
	}
	return nil
}

func loadManifest(dir string) (*manifest.Manifest, error) {
	return manifest.LoadFile(filepath.Join(dir, "manifest.json"))
}

func qcCase(dir string, meta map[string]any) error {
	m, err := loadManifest(dir)
	if err != nil {
		return err
	}
	h, err := wire.DecodeDecisionHeader(readFile(dir, "header.bin"))
	if err != nil {
		return err
	}
	qc, err := wire.DecodeQuorumCert(readFile(dir, "qc.bin"))
	if err != nil {
		return err
	}
	r := rsm.VerifyQC(m, nil, h, qc)
	return verdict(dir, meta, r)
}

func verdict(dir string, meta map[string]any, reason string) error {
	if isValid(dir) {
		if reason != "" {
			return fmt.Errorf("rejected: %s", reason)
		}
		return nil
	}
	if reason == "" {
		return fmt.Errorf("accepted")
	}
	if want, ok := meta["reason"].(string); ok && want != reason {
		return fmt.Errorf("reason %s, want %s", reason, want)
	}
	return nil
}

func compactCase(dir string, meta map[string]any) error {
	m, err := loadManifest(dir)
	if err != nil {
		return err
	}
	cd, err := wire.DecodeCompactDecision(readFile(dir, "compact.bin"))
	if err != nil {
		return err
	}
	var ctx map[string]any
	_ = readJSON(filepath.Join(dir, "context.json"), &ctx)
	r := rsm.VerifyCompact(m, nil, cd, ctx["source"].(string), ctx["destination"].(string), num(ctx["next_seq"]))
	return verdict(dir, meta, r)
}

func shardCase(dir string, meta map[string]any) error {
	var in, exp map[string]any
	_ = readJSON(filepath.Join(dir, "input.json"), &in)
	_ = readJSON(filepath.Join(dir, "expected.json"), &exp)
	var shards []string
	for _, s := range in["shards"].([]any) {
		shards = append(shards, s.(string))
	}
	for i, r := range exp["results"].([]any) {
		e := r.(map[string]any)
		s, u, idx := manifest.ShardOf(shards, hx(e["key"]))
		if s != e["shard"] || u != num(e["u64"]) || uint64(idx) != num(e["index"]) {
			return fmt.Errorf("key %d: got %s/%d/%d", i, s, u, idx)
		}
	}
	return nil
}

func manifestCase(dir string, meta map[string]any) error {
	_, err := loadManifest(dir)
	exp := meta["expected"].(map[string]any)
	if exp["valid"] == true {
		if err != nil {
			return fmt.Errorf("rejected: %v", err)
		}
		return nil
	}
	if err == nil {
		return fmt.Errorf("accepted")
	}
	var me *manifest.Error
	if !errors.As(err, &me) {
		return err
	}
	if me.Stage != exp["stage"] {
		return fmt.Errorf("stage %s, want %v (%v)", me.Stage, exp["stage"], err)
	}
	if me.Stage == "semantic" && uint64(me.Rule) != num(exp["rule"]) {
		return fmt.Errorf("rule %d, want %v (%v)", me.Rule, exp["rule"], err)
	}
	return nil
}

func executionCase(dir string, meta map[string]any) error {
	m, err := loadManifest(dir)
	if err != nil {
		return err
	}
	st := rsm.NewState(m, meta["cluster"].(string), nil)
	steps := int(num(meta["steps"]))
	invalid := 0
	if v, ok := meta["invalid_step"]; ok && v != nil {
		invalid = int(num(v))
	}
	for i := 1; i <= steps; i++ {
		bb := readFile(dir, fmt.Sprintf("batch_%03d.bin", i))
		batch, err := wire.DecodeBatch(bb)
		if err != nil {
			if i == invalid {
				return nil
			}
			return fmt.Errorf("step %d: batch: %v", i, err)
		}
		res, err := st.Execute(batch)
		if i == invalid {
			if err == nil {
				return fmt.Errorf("step %d: invalid batch accepted", i)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("step %d: %v", i, err)
		}
		want := readFile(dir, fmt.Sprintf("decision_%03d.bin", i))
		if got := wire.Encode(res.Decision); !bytes.Equal(got, want) {
			return fmt.Errorf("step %d: decision differs", i)
		}
		st.Apply(res)
	}
	if invalid != 0 {
		return fmt.Errorf("no invalid step reached")
	}
	if _, err := os.Stat(filepath.Join(dir, "final_state.json")); err == nil {
		var fsj map[string]any
		_ = readJSON(filepath.Join(dir, "final_state.json"), &fsj)
		if num(fsj["height"]) != st.Height || fsj["head_hash"] != hex.EncodeToString(st.HeadHash) {
			return fmt.Errorf("final height/head differ")
		}
		for _, k := range []string{"next_in", "next_out"} {
			src := st.NextIn
			if k == "next_out" {
				src = st.NextOut
			}
			got := map[string]any{}
			for d, v := range src {
				if v != 1 {
					got[d] = v
				}
			}
			if w, ok := fsj[k]; ok && canonJSON(got) != canonJSON(w) {
				return fmt.Errorf("final %s differs: %s vs %s", k, canonJSON(got), canonJSON(w))
			}
		}
		if w, ok := fsj["kv"]; ok {
			got := map[string]any{}
			for k, v := range st.KV {
				got[hex.EncodeToString([]byte(k))] = hex.EncodeToString(v)
			}
			if canonJSON(got) != canonJSON(w) {
				return fmt.Errorf("final kv differs")
			}
		}
		if w, ok := fsj["pending"]; ok {
			var got []any
			for k := range st.Pending {
				got = append(got, []any{hex.EncodeToString([]byte(k.Client)), k.ID})
			}
			sortPairs(got)
			if canonJSON(got) != canonJSON(w) && !(len(got) == 0 && len(w.([]any)) == 0) {
				return fmt.Errorf("final pending differs: %s vs %s", canonJSON(got), canonJSON(w))
			}
		}
		if w, ok := fsj["dedup"]; ok {
			got := map[string]any{}
			for k, v := range st.Dedup() {
				ids := v[1].([]uint64)
				l := []any{}
				for _, id := range ids {
					l = append(l, id)
				}
				got[k] = map[string]any{"max_id": v[0], "ids": l}
			}
			if canonJSON(got) != canonJSON(w) {
				return fmt.Errorf("final dedup differs: %s vs %s", canonJSON(got), canonJSON(w))
			}
		}
	}
	return nil
}

func sortPairs(l []any) {
	key := func(x any) string {
		p := x.([]any)
		return fmt.Sprintf("%s/%020d", p[0], p[1])
	}
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && key(l[j]) < key(l[j-1]); j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

func streamCase(dir string, meta map[string]any) error {
	typ := meta["message_type"].(string)
	max := int(num(meta["max_message_bytes"]))
	chunks := int(num(meta["chunks"]))
	p := stream.NewParser(max)
	var msgs [][]byte
	var ferr error
	for i := 1; i <= chunks && ferr == nil; i++ {
		c := readFile(dir, fmt.Sprintf("chunk_%03d.bin", i))
		if len(c) < 1 || len(c) > stream.MaxPayload {
			return fmt.Errorf("chunk %d has %d bytes", i, len(c))
		}
		out, err := p.Feed(c)
		for _, m := range out {
			if ferr != nil {
				break
			}
			if _, err := wire.DecodeByName(typ, m); err != nil {
				ferr = fmt.Errorf("message %d: %v", len(msgs)+1, err)
				break
			}
			msgs = append(msgs, m)
		}
		if err != nil && ferr == nil {
			ferr = fmt.Errorf("message %d: %v", len(msgs)+1, err)
		}
	}
	if isValid(dir) {
		if ferr != nil {
			return ferr
		}
		if p.Buffered() != 0 {
			return fmt.Errorf("bytes left over")
		}
		n := int(num(meta["messages"]))
		if len(msgs) != n {
			return fmt.Errorf("%d messages, want %d", len(msgs), n)
		}
		var s []byte
		for i := 1; i <= n; i++ {
			want := readFile(dir, fmt.Sprintf("message_%03d.bin", i))
			if !bytes.Equal(want, msgs[i-1]) {
				return fmt.Errorf("message %d differs", i)
			}
			s = append(s, stream.Frame(want)...)
		}
		if !bytes.Equal(s, readFile(dir, "stream.bin")) {
			return fmt.Errorf("stream differs")
		}
		var again []byte
		for _, c := range stream.Split(s) {
			if len(c) < 1 || len(c) > stream.MaxPayload {
				return fmt.Errorf("own split has a bad payload")
			}
			again = append(again, c...)
		}
		if !bytes.Equal(again, s) {
			return fmt.Errorf("own split differs")
		}
		return nil
	}
	fm := int(num(meta["failing_message"]))
	if ferr == nil {
		return fmt.Errorf("accepted")
	}
	if len(msgs) != fm-1 {
		return fmt.Errorf("failed at message %d, want %d (%v)", len(msgs)+1, fm, ferr)
	}
	return nil
}

var _ = binary.BigEndian
var _ = strings.Contains
