// Package manifest loads and validates the network manifest (SPEC 3):
// the JSON schema, the eight semantic rules, defaults, and the derived
// values every component needs (members, quorum, shard map, key lookup).
package manifest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"

	"heraclius/impl_c/schema"
)

// Ports of a node.
type Ports struct {
	Peer   int `json:"peer"`
	Client int `json:"client"`
	Admin  int `json:"admin"`
}

// Fault is one SPEC 16 rule, kept raw for /status.
type Fault struct {
	Action      string          `json:"action"`
	Messages    []string        `json:"messages"`
	Targets     []string        `json:"targets"`
	Probability *float64        `json:"probability"`
	DelayMs     int64           `json:"delay_ms"`
	Seed        int64           `json:"seed"`
	Clients     []string        `json:"clients"`
	Raw         json.RawMessage `json:"-"`
}

// Node is one node entry.
type Node struct {
	ID             string            `json:"id"`
	Implementation string            `json:"implementation"`
	Region         string            `json:"region"`
	Host           string            `json:"host"`
	Bind           string            `json:"bind"`
	AdminBind      string            `json:"admin_bind"`
	Ports          Ports             `json:"ports"`
	Ed25519Hex     string            `json:"ed25519_public"`
	X25519Hex      string            `json:"x25519_public"`
	FaultsRaw      []json.RawMessage `json:"faults"`
	Faults         []Fault           `json:"-"`
	Ed25519        []byte            `json:"-"`
	X25519         []byte            `json:"-"`
	Cluster        *Cluster          `json:"-"`
	Index          int               `json:"-"`
}

// Cluster is one cluster entry.
type Cluster struct {
	ID    string  `json:"id"`
	Role  string  `json:"role"`
	Nodes []*Node `json:"nodes"`
}

// N, F and Q of the cluster.
func (c *Cluster) N() int { return len(c.Nodes) }
func (c *Cluster) F() int { return (len(c.Nodes) - 1) / 3 }
func (c *Cluster) Q() int { return 2*c.F() + 1 }

// Member returns the node with that id, or nil.
func (c *Cluster) Member(id string) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Client is an authorised client.
type Client struct {
	ID         string `json:"id"`
	Ed25519Hex string `json:"ed25519_public"`
}

// Timeouts in milliseconds.
type Timeouts struct {
	HeartbeatInterval int64 `json:"heartbeat_interval"`
	HeartbeatTimeout  int64 `json:"heartbeat_timeout"`
	RequestForward    int64 `json:"request_forward"`
	Censorship        int64 `json:"censorship"`
	ViewChange        int64 `json:"view_change"`
	QueueLongPoll     int64 `json:"queue_long_poll"`
	SyncRetry         int64 `json:"sync_retry"`
	ClientTimeout     int64 `json:"client_timeout"`
	BatchWait         int64 `json:"batch_wait"`
}

// Limits of SPEC 3.
type Limits struct {
	MaxBatchInputs     int `json:"max_batch_inputs"`
	MaxBatchBytes      int `json:"max_batch_bytes"`
	MaxMessageBytes    int `json:"max_message_bytes"`
	MaxKeyBytes        int `json:"max_key_bytes"`
	MaxValueBytes      int `json:"max_value_bytes"`
	MaxPendingRequests int `json:"max_pending_requests"`
}

// Manifest is a validated manifest with derived lookups.
type Manifest struct {
	Version   int        `json:"version"`
	NetworkID string     `json:"network_id"`
	Testbed   bool       `json:"testbed"`
	Regions   []string   `json:"regions"`
	Clusters  []*Cluster `json:"clusters"`
	ShardMap  struct {
		Function string   `json:"function"`
		Shards   []string `json:"shards"`
	} `json:"shard_map"`
	Clients  []*Client `json:"clients"`
	Timeouts Timeouts  `json:"timeouts_ms"`
	Limits   Limits    `json:"limits"`

	clusters map[string]*Cluster
	nodes    map[string]*Node
	clientBy map[string]*Client // by raw public key bytes
}

// Error is a validation failure; Stage is "schema" or "semantic", Rule 1..8 for semantic.
type Error struct {
	Stage string
	Rule  int
	Msg   string
}

func (e *Error) Error() string {
	if e.Stage == "semantic" {
		return fmt.Sprintf("manifest rule %d: %s", e.Rule, e.Msg)
	}
	return "manifest " + e.Stage + ": " + e.Msg
}

var validator *schema.Validator

func init() {
	v, err := schema.New(schema.ManifestSchema)
	if err != nil {
		panic(err)
	}
	validator = v
}

// LoadFile reads and validates a manifest file.
func LoadFile(path string) (*Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Stage: "read", Msg: err.Error()}
	}
	return Parse(b)
}

// Parse validates a manifest document (schema, then SPEC 3 rules 1 to 8).
func Parse(b []byte) (*Manifest, error) {
	doc, err := schema.ParseJSON(b)
	if err != nil {
		return nil, &Error{Stage: "schema", Msg: "not JSON: " + err.Error()}
	}
	if err := validator.Validate(doc); err != nil {
		return nil, &Error{Stage: "schema", Msg: err.Error()}
	}
	m := &Manifest{Timeouts: Timeouts{250, 2000, 1000, 4000, 3000, 1000, 500, 5000, 2},
		Limits: Limits{1024, 4194304, 16777216, 1024, 65536, 100000}}
	// JSON Schema integers include 1.0 and values beyond int64 where the schema
	// sets no maximum: normalise them before filling the typed struct.
	norm, _ := json.Marshal(normaliseNumbers(doc))
	if err := json.Unmarshal(norm, m); err != nil {
		return nil, &Error{Stage: "schema", Msg: err.Error()}
	}
	if err := m.semantic(); err != nil {
		return nil, err
	}
	return m, nil
}

func sem(rule int, format string, a ...any) error {
	return &Error{Stage: "semantic", Rule: rule, Msg: fmt.Sprintf(format, a...)}
}

func (m *Manifest) semantic() error {
	m.clusters = map[string]*Cluster{}
	m.nodes = map[string]*Node{}
	m.clientBy = map[string]*Client{}
	ids := map[string]bool{}
	for _, c := range m.Clusters {
		if ids[c.ID] {
			return sem(1, "cluster id %q appears twice", c.ID)
		}
		ids[c.ID] = true
		m.clusters[c.ID] = c
	}
	for _, c := range m.Clusters {
		for i, n := range c.Nodes {
			if ids[n.ID] {
				if m.clusters[n.ID] != nil {
					return sem(1, "node id %q equals a cluster id", n.ID)
				}
				return sem(1, "node id %q appears twice", n.ID)
			}
			ids[n.ID] = true
			n.Cluster, n.Index = c, i
			m.nodes[n.ID] = n
			n.Ed25519, _ = hex.DecodeString(n.Ed25519Hex)
			n.X25519, _ = hex.DecodeString(n.X25519Hex)
			if n.Bind == "" {
				n.Bind = n.Host
			}
			if n.AdminBind == "" {
				n.AdminBind = n.Bind
			}
			for _, raw := range n.FaultsRaw {
				var f Fault
				_ = json.Unmarshal(raw, &f)
				f.Raw = raw
				n.Faults = append(n.Faults, f)
			}
		}
	}
	cids := map[string]bool{}
	for _, c := range m.Clients {
		if cids[c.ID] {
			return sem(1, "client id %q appears twice", c.ID)
		}
		cids[c.ID] = true
	}
	for _, c := range m.Clusters {
		n := len(c.Nodes)
		if n < 4 || (n-1)%3 != 0 {
			return sem(2, "cluster %q has %d nodes, not 3f+1", c.ID, n)
		}
	}
	var coords, shards []string
	for _, c := range m.Clusters {
		if c.Role == "coordinator" {
			coords = append(coords, c.ID)
		} else {
			shards = append(shards, c.ID)
		}
	}
	if len(coords) == 0 || len(shards) == 0 {
		return sem(3, "need at least one coordinator and one shard cluster")
	}
	seen := map[string]bool{}
	for _, s := range m.ShardMap.Shards {
		c := m.clusters[s]
		if c == nil || c.Role != "shard" {
			return sem(4, "shard_map names %q, not a shard cluster", s)
		}
		if seen[s] {
			return sem(4, "shard_map names %q twice", s)
		}
		seen[s] = true
	}
	for _, s := range shards {
		if !seen[s] {
			return sem(4, "shard cluster %q missing from shard_map", s)
		}
	}
	keys := map[string]bool{}
	addKey := func(k string) error {
		if keys[k] {
			return sem(5, "public key %s appears twice", k)
		}
		keys[k] = true
		return nil
	}
	for _, c := range m.Clusters {
		for _, n := range c.Nodes {
			if err := addKey(n.Ed25519Hex); err != nil {
				return err
			}
			if err := addKey(n.X25519Hex); err != nil {
				return err
			}
		}
	}
	for _, c := range m.Clients {
		if err := addKey(c.Ed25519Hex); err != nil {
			return err
		}
		k, _ := hex.DecodeString(c.Ed25519Hex)
		m.clientBy[string(k)] = c
	}
	hostPorts := map[string]string{}
	for _, c := range m.Clusters {
		for _, n := range c.Nodes {
			ps := []int{n.Ports.Peer, n.Ports.Client, n.Ports.Admin}
			if ps[0] == ps[1] || ps[0] == ps[2] || ps[1] == ps[2] {
				return sem(6, "node %q uses one port twice", n.ID)
			}
			for _, p := range ps {
				k := fmt.Sprintf("%s|%d", n.Host, p)
				if o, ok := hostPorts[k]; ok {
					return sem(6, "nodes %q and %q share port %d on host %s", o, n.ID, p, n.Host)
				}
				hostPorts[k] = n.ID
			}
		}
	}
	for _, c := range m.Clusters {
		for _, n := range c.Nodes {
			if len(n.FaultsRaw) > 0 && !m.Testbed {
				return sem(7, "node %q has faults but testbed is not true", n.ID)
			}
		}
	}
	t := m.Timeouts
	if t.HeartbeatTimeout <= t.HeartbeatInterval {
		return sem(8, "heartbeat_timeout <= heartbeat_interval")
	}
	if t.Censorship <= t.RequestForward {
		return sem(8, "censorship <= request_forward")
	}
	return nil
}

// Cluster returns the cluster with that id, or nil.
func (m *Manifest) Cluster(id string) *Cluster { return m.clusters[id] }

// Node returns the node with that id, or nil.
func (m *Manifest) Node(id string) *Node { return m.nodes[id] }

// ClientByKey returns the authorised client with that Ed25519 key, or nil.
func (m *Manifest) ClientByKey(k []byte) *Client { return m.clientBy[string(k)] }

// Coordinators returns the coordinator cluster ids in manifest order.
func (m *Manifest) Coordinators() []string {
	var out []string
	for _, c := range m.Clusters {
		if c.Role == "coordinator" {
			out = append(out, c.ID)
		}
	}
	return out
}

// ShardOf is SPEC 3's shard map.
func ShardOf(shards []string, key []byte) (string, uint64, int) {
	d := sha256.Sum256(key)
	u := binary.BigEndian.Uint64(d[:8])
	i := int(u % uint64(len(shards)))
	return shards[i], u, i
}

// ShardOf maps a key to its shard cluster id.
func (m *Manifest) ShardOf(key []byte) string {
	s, _, _ := ShardOf(m.ShardMap.Shards, key)
	return s
}

// normaliseNumbers rewrites integral numbers as plain integers, clamped to
// the int64 range (only fields without a schema maximum can exceed it).
func normaliseNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return t
		}
		if i, err := t.Int64(); err == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		if f == math.Trunc(f) {
			if f >= math.MaxInt64 {
				return json.Number(strconv.FormatInt(math.MaxInt64, 10))
			}
			if f <= math.MinInt64 {
				return json.Number(strconv.FormatInt(math.MinInt64, 10))
			}
			return json.Number(strconv.FormatInt(int64(f), 10))
		}
		return t
	case []any:
		out := make([]any, len(t))
		for i := range t {
			out[i] = normaliseNumbers(t[i])
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range t {
			out[k] = normaliseNumbers(e)
		}
		return out
	}
	return v
}
