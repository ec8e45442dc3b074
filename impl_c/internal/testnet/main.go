// Command testnet writes a small local test network: a manifest with one
// coordinator and one shard cluster of 4 nodes, keys derived as in
// wire_spec/vectors/README.md (secret = SHA-256("heraclius vector key " +
// name)), one key directory per node and one client key.
//
//	go run ./internal/testnet -dir DIR -impls c,c,a,a,c,c,b,b [-port 27000] [-network impl-c-net]
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"heraclius/impl_c/noise"
	"heraclius/impl_c/sig"
)

func secret(name string) []byte {
	s := sha256.Sum256([]byte("heraclius vector key " + name))
	return s[:]
}

func writeKey(path string, k []byte) {
	if err := os.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		panic(err)
	}
}

func main() {
	dir := flag.String("dir", "", "output directory")
	impls := flag.String("impls", "c,c,c,c,c,c,c,c", "implementation letter per node: c0-n0..n3, s0-n0..n3")
	port := flag.Int("port", 27000, "base port")
	network := flag.String("network", "impl-c-net", "network id")
	testbed := flag.Bool("testbed", false, "testbed manifest")
	flag.Parse()
	letters := strings.Split(*impls, ",")
	if *dir == "" || len(letters) != 8 {
		fmt.Fprintln(os.Stderr, "need -dir and 8 implementation letters")
		os.Exit(2)
	}
	os.MkdirAll(*dir, 0o755)
	var clusters []any
	i := 0
	for _, cl := range []struct{ id, role string }{{"c0", "coordinator"}, {"s0", "shard"}} {
		var nodes []any
		for j := 0; j < 4; j++ {
			id := fmt.Sprintf("%s-n%d", cl.id, j)
			ed := secret(*network + "/" + id + "/ed25519")
			x := secret(*network + "/" + id + "/x25519")
			kp, _ := noise.NewKeyPair(x)
			kd := filepath.Join(*dir, "keys", id)
			os.MkdirAll(kd, 0o700)
			writeKey(filepath.Join(kd, "ed25519.key"), ed)
			writeKey(filepath.Join(kd, "x25519.key"), x)
			p := *port + i*10
			nodes = append(nodes, map[string]any{"id": id, "implementation": "impl_" + letters[i], "region": "local",
				"host": "127.0.0.1", "ports": map[string]any{"peer": p, "client": p + 1, "admin": p + 2},
				"ed25519_public": hex.EncodeToString(sig.NewSigner(ed).Pub), "x25519_public": hex.EncodeToString(kp.Pub)})
			i++
		}
		clusters = append(clusters, map[string]any{"id": cl.id, "role": cl.role, "nodes": nodes})
	}
	var clients []any
	for _, c := range []string{"client-a", "client-b", "client-c"} {
		k := secret(*network + "/client/" + c + "/ed25519")
		writeKey(filepath.Join(*dir, c+".key"), k)
		clients = append(clients, map[string]any{"id": c, "ed25519_public": hex.EncodeToString(sig.NewSigner(k).Pub)})
	}
	m := map[string]any{"version": 1, "network_id": *network, "regions": []string{"local"}, "clusters": clusters,
		"shard_map": map[string]any{"function": "sha256-u64-mod", "shards": []string{"s0"}}, "clients": clients}
	if *testbed {
		m["testbed"] = true
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(*dir, "manifest.json"), b, 0o644); err != nil {
		panic(err)
	}
}
