package conformance

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"

	"heraclius/impl_c/link"
	"heraclius/impl_c/manifest"
	"heraclius/impl_c/merkle"
	"heraclius/impl_c/noise"
	"heraclius/impl_c/sig"
	"heraclius/impl_c/stream"
	"heraclius/impl_c/wire"
)

func init() {
	register("noise", "handshake", handshakeCase)
	register("noise", "rekey", rekeyCase)
	register("noise", "transport", transportCase)
}

type noiseVector struct {
	Protocol   string `json:"protocol_name"`
	InitPro    string `json:"init_prologue"`
	InitStatic string `json:"init_static"`
	InitEph    string `json:"init_ephemeral"`
	InitRS     string `json:"init_remote_static"`
	RespPro    string `json:"resp_prologue"`
	RespStatic string `json:"resp_static"`
	RespEph    string `json:"resp_ephemeral"`
	RespRS     string `json:"resp_remote_static"`
	HH         string `json:"handshake_hash"`
	Messages   []struct {
		Payload    string `json:"payload"`
		Ciphertext string `json:"ciphertext"`
	} `json:"messages"`
}

func kp(h string) *noise.KeyPair {
	if h == "" {
		return nil
	}
	k, err := noise.NewKeyPair(hx(h))
	if err != nil {
		panic(err)
	}
	return &k
}

func newSide(v *noiseVector, initiator bool) (*noise.HandshakeState, error) {
	c := noise.Config{Protocol: v.Protocol, Initiator: initiator}
	if initiator {
		c.Prologue, c.Ephemeral = hx(v.InitPro), kp(v.InitEph)
		if s := kp(v.InitStatic); s != nil {
			c.Static = *s
		}
		if v.InitRS != "" {
			c.RemoteS = hx(v.InitRS)
		}
	} else {
		c.Prologue, c.Ephemeral = hx(v.RespPro), kp(v.RespEph)
		if s := kp(v.RespStatic); s != nil {
			c.Static = *s
		}
		if v.RespRS != "" {
			c.RemoteS = hx(v.RespRS)
		}
	}
	return noise.NewHandshake(c)
}

// playVector runs both roles of a Noise test vector; it returns the
// transport payloads (index in messages) after the handshake.
func playVector(v *noiseVector, schedule bool) (map[int][]byte, error) {
	ini, err := newSide(v, true)
	if err != nil {
		return nil, err
	}
	res, err := newSide(v, false)
	if err != nil {
		return nil, err
	}
	var iSend, iRecv, rSend, rRecv *noise.CipherState
	out := map[int][]byte{}
	for i, m := range v.Messages {
		fromInit := i%2 == 0
		w, r := ini, res
		if !fromInit {
			w, r = res, ini
		}
		var ct, pt []byte
		if !ini.Done() {
			ct, err = w.WriteMessage(hx(m.Payload))
			if err != nil {
				return nil, fmt.Errorf("message %d write: %v", i+1, err)
			}
			pt, err = r.ReadMessage(ct)
			if err != nil {
				return nil, fmt.Errorf("message %d read: %v", i+1, err)
			}
			if ini.Done() {
				if v.HH != "" && !bytes.Equal(ini.HandshakeHash(), hx(v.HH)) {
					return nil, fmt.Errorf("handshake hash differs")
				}
				if !bytes.Equal(ini.HandshakeHash(), res.HandshakeHash()) {
					return nil, fmt.Errorf("sides disagree on handshake hash")
				}
				iSend, iRecv = ini.Split(schedule)
				rSend, rRecv = res.Split(schedule)
			}
		} else {
			s, rc := iSend, rRecv
			if !fromInit {
				s, rc = rSend, iRecv
			}
			ct, err = s.EncryptWithAd(nil, hx(m.Payload))
			if err != nil {
				return nil, err
			}
			pt, err = rc.DecryptWithAd(nil, ct)
			if err != nil {
				return nil, fmt.Errorf("message %d decrypt: %v", i+1, err)
			}
			out[i] = pt
		}
		if !bytes.Equal(ct, hx(m.Ciphertext)) {
			return nil, fmt.Errorf("message %d ciphertext differs", i+1)
		}
		if !bytes.Equal(pt, hx(m.Payload)) {
			return nil, fmt.Errorf("message %d payload differs", i+1)
		}
	}
	return out, nil
}

func loadVector(path string) (*noiseVector, error) {
	var f struct {
		Vectors []noiseVector `json:"vectors"`
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	if len(f.Vectors) != 1 {
		return nil, fmt.Errorf("%d vectors", len(f.Vectors))
	}
	return &f.Vectors[0], nil
}

func handshakeCase(dir string, meta map[string]any) error {
	m, err := loadManifest(dir)
	if err != nil {
		return err
	}
	v, err := loadVector(filepath.Join(dir, "vectors.json"))
	if err != nil {
		return err
	}
	port, _ := meta["port"].(string)
	initNode, _ := meta["initiator_node"].(string)
	respNode, _ := meta["responder_node"].(string)
	if isValid(dir) {
		payloads, err := playVector(v, true)
		if err != nil {
			return err
		}
		initPub := kp(v.InitStatic).Pub
		respPub := kp(v.RespStatic).Pub
		h2, err := wire.DecodeHello(hx(v.Messages[1].Payload))
		if err != nil {
			return fmt.Errorf("responder Hello: %v", err)
		}
		h3, err := wire.DecodeHello(hx(v.Messages[2].Payload))
		if err != nil {
			return fmt.Errorf("initiator Hello: %v", err)
		}
		if _, err := link.CheckHello(m, port, true, respNode, h2, respPub); err != nil {
			return fmt.Errorf("initiator rejects: %v", err)
		}
		if _, err := link.CheckHello(m, port, false, "", h3, initPub); err != nil {
			return fmt.Errorf("responder rejects: %v", err)
		}
		_ = initNode
		for i := 3; i < len(v.Messages); i++ {
			typ := "PeerMessage"
			if port == "client" {
				typ = "ClientMessage"
				if i%2 == 1 {
					typ = "ClientReply"
				}
			}
			p := stream.NewParser(m.Limits.MaxMessageBytes)
			msgs, err := p.Feed(payloads[i])
			if err != nil || p.Buffered() != 0 || len(msgs) == 0 {
				return fmt.Errorf("transport message %d: bad framing (%v)", i+1, err)
			}
			for _, mm := range msgs {
				if _, err := wire.DecodeByName(typ, mm); err != nil {
					return fmt.Errorf("transport message %d: %v", i+1, err)
				}
			}
		}
		return nil
	}
	role := meta["runner_role"].(string)
	failAt := int(num(meta["fails_at_message"]))
	hs, err := newSide(v, role == "initiator")
	if err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		mine := (i%2 == 0) == (role == "initiator")
		if mine {
			var payload []byte
			if i < len(v.Messages) {
				payload = hx(v.Messages[i].Payload)
			} else if i > 0 {
				self := respNode
				if role == "initiator" {
					self = initNode
				}
				payload = wire.Encode(&wire.Hello{ProtocolVersion: 1, NetworkID: m.NetworkID, NodeID: self})
			}
			if _, err := hs.WriteMessage(payload); err != nil {
				if i+1 != failAt {
					return fmt.Errorf("aborted writing message %d, want %d: %v", i+1, failAt, err)
				}
				return nil
			}
			continue
		}
		if i >= len(v.Messages) {
			return fmt.Errorf("vector has no message %d to read", i+1)
		}
		ct := hx(v.Messages[i].Ciphertext)
		var p []byte
		err := link.CheckHandshakeSize(i+1, len(ct))
		if err == nil {
			p, err = hs.ReadMessage(ct)
		}
		if err == nil && i > 0 {
			h, derr := wire.DecodeHello(p)
			if derr != nil {
				err = derr
			} else if role == "initiator" {
				_, err = link.CheckHello(m, port, true, respNode, h, hs.RemoteStatic())
			} else {
				_, err = link.CheckHello(m, port, false, "", h, hs.RemoteStatic())
			}
		}
		if err != nil {
			if i+1 != failAt {
				return fmt.Errorf("aborted at message %d, want %d: %v", i+1, failAt, err)
			}
			return nil
		}
	}
	return fmt.Errorf("handshake accepted")
}

func rekeyCase(dir string, meta map[string]any) error {
	var in, exp map[string]any
	_ = readJSON(filepath.Join(dir, "input.json"), &in)
	_ = readJSON(filepath.Join(dir, "expected.json"), &exp)
	key := hx(in["key"])
	if _, ok := in["plaintexts"]; !ok {
		r1 := noise.Rekey(key)
		r2 := noise.Rekey(r1)
		if !bytes.Equal(r1, hx(exp["rekeyed_key"])) || !bytes.Equal(r2, hx(exp["twice_rekeyed_key"])) {
			return fmt.Errorf("rekeyed key differs")
		}
		c := noise.NewCipherState(r1, num(in["nonce"]), false)
		ct, err := c.EncryptWithAd(hx(in["ad"]), hx(in["plaintext"]))
		if err != nil || !bytes.Equal(ct, hx(exp["ciphertext"])) {
			return fmt.Errorf("ciphertext differs (%v)", err)
		}
		return nil
	}
	first := num(in["first_nonce"])
	s := noise.NewCipherState(key, first, true)
	r := noise.NewCipherState(key, first, true)
	ad := hx(in["ad"])
	cts := exp["ciphertexts"].([]any)
	keys := exp["keys"].([]any)
	for i, p := range in["plaintexts"].([]any) {
		if !bytes.Equal(s.Key(), hx(keys[i])) {
			return fmt.Errorf("key %d differs", i)
		}
		ct, err := s.EncryptWithAd(ad, hx(p))
		if err != nil || !bytes.Equal(ct, hx(cts[i])) {
			return fmt.Errorf("ciphertext %d differs (%v)", i, err)
		}
		pt, err := r.DecryptWithAd(ad, ct)
		if err != nil || !bytes.Equal(pt, hx(p)) {
			return fmt.Errorf("decrypt %d failed (%v)", i, err)
		}
	}
	if !bytes.Equal(s.Key(), hx(exp["final_key"])) || s.Nonce() != num(exp["final_nonce"]) {
		return fmt.Errorf("final key/nonce differ")
	}
	return nil
}

func transportCase(dir string, meta map[string]any) error {
	var in, exp map[string]any
	_ = readJSON(filepath.Join(dir, "input.json"), &in)
	r := noise.NewCipherState(hx(in["key"]), num(in["first_nonce"]), true)
	ad := hx(in["ad"])
	var pts []any
	if isValid(dir) {
		_ = readJSON(filepath.Join(dir, "expected.json"), &exp)
		pts = exp["plaintexts"].([]any)
	}
	for i, c := range in["ciphertexts"].([]any) {
		p, err := r.DecryptWithAd(ad, hx(c))
		if err != nil {
			if isValid(dir) {
				return fmt.Errorf("message %d: %v", i+1, err)
			}
			if i+1 != int(num(meta["failing_message"])) {
				return fmt.Errorf("failed at %d", i+1)
			}
			return nil
		}
		if isValid(dir) && !bytes.Equal(p, hx(pts[i])) {
			return fmt.Errorf("plaintext %d differs", i+1)
		}
	}
	if !isValid(dir) {
		return fmt.Errorf("every message decrypted")
	}
	return nil
}

// ---------------------------------------------------------------- external

func runExternal(path string) []Result {
	slash := filepath.ToSlash(path)
	base := filepath.Base(path)
	one := func(err error) []Result { return []Result{{path, err}} }
	var out []Result
	defer func() {
		if r := recover(); r != nil {
			out = []Result{{path, fmt.Errorf("panic: %v", r)}}
		}
	}()
	out = runExternalFile(path, slash, base, one)
	return out
}

func runExternalFile(path, slash, base string, one func(error) []Result) []Result {
	switch {
	case base == "noise_xx_ik_kk_25519_chachapoly.json":
		var f struct {
			Vectors []noiseVector `json:"vectors"`
		}
		b, _ := os.ReadFile(path)
		if err := json.Unmarshal(b, &f); err != nil {
			return one(err)
		}
		var out []Result
		for i := range f.Vectors {
			_, err := playVector(&f.Vectors[i], false)
			out = append(out, Result{fmt.Sprintf("%s#%d(%s)", path, i, f.Vectors[i].Protocol), err})
		}
		return out
	case base == "speccheck_cases.json":
		var cases []map[string]string
		b, _ := os.ReadFile(path)
		_ = json.Unmarshal(b, &cases)
		var out []Result
		for i, c := range cases {
			got := sig.Verify(hx(c["pub_key"]), hx(c["message"]), hx(c["signature"]))
			var err error
			if got != (i == 3) {
				err = fmt.Errorf("case %d: verify = %v", i, got)
			}
			out = append(out, Result{fmt.Sprintf("%s#%d", path, i), err})
		}
		return out
	case base == "rfc8032_ed25519.json":
		var f struct {
			Vectors []map[string]any `json:"vectors"`
		}
		b, _ := os.ReadFile(path)
		_ = json.Unmarshal(b, &f)
		var out []Result
		for i, v := range f.Vectors {
			s := sig.NewSigner(hx(v["secret_key_seed"]))
			var err error
			msg := hx(v["message"])
			if !bytes.Equal(s.Pub, hx(v["public_key"])) || !bytes.Equal(s.SignRaw(msg), hx(v["signature"])) || !sig.Verify(s.Pub, msg, hx(v["signature"])) {
				err = fmt.Errorf("%v differs", v["name"])
			}
			out = append(out, Result{fmt.Sprintf("%s#%d", path, i), err})
		}
		return out
	case base == "ed25519_test.json":
		return wycheproof(path, func(g map[string]any, t map[string]any) (bool, error) {
			pk := hx(g["publicKey"].(map[string]any)["pk"])
			return sig.Verify(pk, hx(t["msg"]), hx(t["sig"])), nil
		})
	case base == "x25519_test.json":
		return wycheproof(path, func(g map[string]any, t map[string]any) (bool, error) {
			out, err := curve25519.X25519(hx(t["private"]), hx(t["public"]))
			if err != nil {
				return false, nil
			}
			if !bytes.Equal(out, hx(t["shared"])) {
				return false, nil
			}
			return true, nil
		})
	case base == "chacha20_poly1305_test.json":
		return wycheproof(path, func(g map[string]any, t map[string]any) (bool, error) {
			a, err := chacha20poly1305.New(hx(t["key"]))
			iv := hx(t["iv"])
			if err != nil || len(iv) != chacha20poly1305.NonceSize {
				return false, nil
			}
			ct := append(hx(t["ct"]), hx(t["tag"])...)
			sealed := a.Seal(nil, iv, hx(t["msg"]), hx(t["aad"]))
			p, err := a.Open(nil, iv, ct, hx(t["aad"]))
			if err != nil || !bytes.Equal(p, hx(t["msg"])) || !bytes.Equal(sealed, ct) {
				return false, nil
			}
			return true, nil
		})
	case base == "rfc6962_tree_hashes.json":
		return one(rfc6962(path))
	case strings.Contains(slash, "merkle/transparency-dev/inclusion/"):
		var c struct {
			LeafIdx  uint64   `json:"leafIdx"`
			TreeSize uint64   `json:"treeSize"`
			Root     []byte   `json:"root"`
			LeafHash []byte   `json:"leafHash"`
			Proof    [][]byte `json:"proof"`
			WantErr  bool     `json:"wantErr"`
		}
		b, _ := os.ReadFile(path)
		if err := json.Unmarshal(b, &c); err != nil {
			return one(err)
		}
		ok := merkle.Verify(c.LeafHash, c.LeafIdx, c.TreeSize, c.Proof, c.Root)
		if ok == c.WantErr {
			return one(fmt.Errorf("verify = %v, wantErr %v", ok, c.WantErr))
		}
		return one(nil)
	case strings.Contains(slash, "merkle/transparency-dev/consistency/"):
		return nil
	}
	return nil
}

var _ = base64.StdEncoding

func wycheproof(path string, f func(g, t map[string]any) (bool, error)) []Result {
	var doc map[string]any
	if err := readJSON(path, &doc); err != nil {
		return []Result{{path, err}}
	}
	var out []Result
	for _, gi := range doc["testGroups"].([]any) {
		g := gi.(map[string]any)
		for _, ti := range g["tests"].([]any) {
			t := ti.(map[string]any)
			ok, err := f(g, t)
			res := t["result"].(string)
			if err == nil {
				switch {
				case res == "valid" && !ok:
					err = fmt.Errorf("valid case rejected")
				case res == "invalid" && ok:
					err = fmt.Errorf("invalid case accepted")
				case res == "acceptable" && ok != !hasFlag(t, "ZeroSharedSecret"):
					if hasFlag(t, "ZeroSharedSecret") {
						err = fmt.Errorf("all-zero shared secret accepted")
					}
				}
			}
			out = append(out, Result{fmt.Sprintf("%s#tcId=%v", path, t["tcId"]), err})
		}
	}
	return out
}

func hasFlag(t map[string]any, flag string) bool {
	for _, f := range t["flags"].([]any) {
		if f == flag {
			return true
		}
	}
	return false
}

func rfc6962(path string) error {
	var d map[string]any
	if err := readJSON(path, &d); err != nil {
		return err
	}
	for _, hv := range d["hasher_vectors"].([]any) {
		h := hv.(map[string]any)
		var got []byte
		switch h["op"] {
		case "empty_root":
			got = merkle.Root(nil)
		case "hash_leaf":
			got = merkle.LeafHash(hx(h["input_hex"]))
		case "hash_children":
			got = merkle.NodeHash(hx(h["left_hex"]), hx(h["right_hex"]))
		}
		if !bytes.Equal(got, hx(h["want"])) {
			return fmt.Errorf("%v differs", h["desc"])
		}
	}
	var leaves [][]byte
	for _, l := range d["leaf_inputs_hex"].([]any) {
		leaves = append(leaves, hx(l))
	}
	roots := d["root_hashes_by_tree_size"].(map[string]any)["roots"].([]any)
	for n, r := range roots {
		if !bytes.Equal(merkle.Root(leaves[:n]), hx(r)) {
			return fmt.Errorf("root of %d leaves differs", n)
		}
	}
	levels := d["node_hashes_by_level"].(map[string]any)["levels"].([]any)
	for L, lv := range levels {
		for i, hsh := range lv.([]any) {
			size := 1 << L
			if !bytes.Equal(merkle.Root(leaves[i*size:(i+1)*size]), hx(hsh)) {
				return fmt.Errorf("node level %d index %d differs", L, i)
			}
		}
	}
	return nil
}

var _ = sha256.Sum256
var _ = binary.BigEndian
var _ manifest.Manifest
