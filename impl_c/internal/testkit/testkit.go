// Package testkit builds in-memory test networks (manifest and keys derived
// as in wire_spec/vectors/README.md) for unit tests.
package testkit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"heraclius/impl_c/manifest"
	"heraclius/impl_c/noise"
	"heraclius/impl_c/sig"
)

// Secret is SHA-256("heraclius vector key " + name).
func Secret(name string) []byte {
	s := sha256.Sum256([]byte("heraclius vector key " + name))
	return s[:]
}

// Net is a generated network.
type Net struct {
	M       *manifest.Manifest
	JSON    []byte
	Ed      map[string][]byte // node id -> Ed25519 seed
	X       map[string][]byte // node id -> X25519 secret
	Clients map[string][]byte // client id -> Ed25519 seed
}

// New builds c0 (coordinator) and s0 (shard), 4 nodes each, on 127.0.0.1 from port.
func New(network string, port int, extra func(map[string]any)) (*Net, error) {
	return NewN(network, port, 4, extra)
}

// NewN is New with size nodes per cluster (3f + 1).
func NewN(network string, port, size int, extra func(map[string]any)) (*Net, error) {
	n := &Net{Ed: map[string][]byte{}, X: map[string][]byte{}, Clients: map[string][]byte{}}
	var clusters []any
	i := 0
	for _, cl := range []struct{ id, role string }{{"c0", "coordinator"}, {"s0", "shard"}} {
		var nodes []any
		for j := 0; j < size; j++ {
			id := fmt.Sprintf("%s-n%d", cl.id, j)
			ed := Secret(network + "/" + id + "/ed25519")
			x := Secret(network + "/" + id + "/x25519")
			n.Ed[id], n.X[id] = ed, x
			kp, _ := noise.NewKeyPair(x)
			p := port + i*10
			nodes = append(nodes, map[string]any{"id": id, "implementation": "impl_c", "region": "local",
				"host": "127.0.0.1", "ports": map[string]any{"peer": p, "client": p + 1, "admin": p + 2},
				"ed25519_public": hex.EncodeToString(sig.NewSigner(ed).Pub), "x25519_public": hex.EncodeToString(kp.Pub)})
			i++
		}
		clusters = append(clusters, map[string]any{"id": cl.id, "role": cl.role, "nodes": nodes})
	}
	var clients []any
	for _, c := range []string{"client-a", "client-b"} {
		k := Secret(network + "/client/" + c + "/ed25519")
		n.Clients[c] = k
		clients = append(clients, map[string]any{"id": c, "ed25519_public": hex.EncodeToString(sig.NewSigner(k).Pub)})
	}
	doc := map[string]any{"version": 1, "network_id": network, "clusters": clusters,
		"shard_map": map[string]any{"function": "sha256-u64-mod", "shards": []string{"s0"}}, "clients": clients}
	if extra != nil {
		extra(doc)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	n.JSON = b
	n.M, err = manifest.Parse(b)
	return n, err
}
