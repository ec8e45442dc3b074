"""Network manifest: load, schema-check (jsonschema), semantic validation (SPEC 3) and derived values."""

from __future__ import annotations

import json
import pathlib
import struct
from dataclasses import dataclass, field

from impl_a.crypto import sha256
from impl_a.errors import LocalError

SCHEMA = pathlib.Path(__file__).resolve().parent.parent / "wire_spec" / "manifest.schema.json"

TIMEOUT_DEFAULTS = {
    "heartbeat_interval": 250, "heartbeat_timeout": 2000, "request_forward": 1000, "censorship": 4000,
    "view_change": 3000, "queue_long_poll": 1000, "sync_retry": 500, "client_timeout": 5000, "batch_wait": 2,
}
LIMIT_DEFAULTS = {
    "max_batch_inputs": 1024, "max_batch_bytes": 4194304, "max_message_bytes": 16777216,
    "max_key_bytes": 1024, "max_value_bytes": 65536, "max_pending_requests": 100000,
}


@dataclass
class Node:
    id: str
    cluster: str
    index: int
    host: str
    bind: str
    peer_port: int
    client_port: int
    admin_port: int
    ed25519_public: bytes
    x25519_public: bytes
    implementation: str
    faults: list = field(default_factory=list)
    admin_bind: str = ""


@dataclass
class Cluster:
    id: str
    role: str
    nodes: list[Node]

    @property
    def n(self) -> int:
        return len(self.nodes)

    @property
    def f(self) -> int:
        return (self.n - 1) // 3

    @property
    def q(self) -> int:
        return 2 * self.f + 1

    def leader(self, view: int) -> Node:
        return self.nodes[view % self.n]


class Manifest:
    """A validated manifest with lookup tables."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.network_id: str = doc["network_id"]
        self.testbed: bool = bool(doc.get("testbed", False))
        self.timeouts = {**TIMEOUT_DEFAULTS, **doc.get("timeouts_ms", {})}
        self.limits = {**LIMIT_DEFAULTS, **doc.get("limits", {})}
        self.clusters: dict[str, Cluster] = {}
        self.nodes: dict[str, Node] = {}
        for c in doc["clusters"]:
            nodes = []
            for i, n in enumerate(c["nodes"]):
                node = Node(n["id"], c["id"], i, n["host"], n.get("bind", n["host"]), n["ports"]["peer"],
                            n["ports"]["client"], n["ports"]["admin"], bytes.fromhex(n["ed25519_public"]),
                            bytes.fromhex(n["x25519_public"]), n["implementation"], list(n.get("faults", [])),
                            n.get("admin_bind", n.get("bind", n["host"])))
                nodes.append(node)
                self.nodes.setdefault(node.id, node)
            self.clusters.setdefault(c["id"], Cluster(c["id"], c["role"], nodes))
        self.shards: list[str] = list(doc["shard_map"]["shards"])
        self.coordinators = [c.id for c in self.clusters.values() if c.role == "coordinator"]
        self.clients = {bytes.fromhex(c["ed25519_public"]): c["id"] for c in doc["clients"]}

    def shard_of(self, key: bytes) -> str:
        (x,) = struct.unpack(">Q", sha256(key)[:8])
        return self.shards[x % len(self.shards)]

    def coordinator_for(self, client_key: bytes) -> str:
        (x,) = struct.unpack(">Q", sha256(client_key)[:8])
        return self.coordinators[x % len(self.coordinators)]

    def role_of(self, cluster_id: str) -> str:
        return self.clusters[cluster_id].role


def semantic_problem(doc: dict) -> tuple[int, str] | None:
    """The first SPEC 3 semantic problem of a schema-valid manifest as (rule number, text), or None."""
    # Rule 1: ids are unique per kind, and a node id must not equal a cluster id; a client id may
    # equal a node or cluster id (clients are named by key on the wire).
    clusters = doc["clusters"]
    cluster_ids: set[str] = set()
    for c in clusters:
        if c["id"] in cluster_ids:
            return 1, f"duplicate cluster id {c['id']}"
        cluster_ids.add(c["id"])
    node_ids: set[str] = set()
    for c in clusters:
        for n in c["nodes"]:
            if n["id"] in node_ids:
                return 1, f"duplicate node id {n['id']}"
            if n["id"] in cluster_ids:
                return 1, f"node id {n['id']} equals a cluster id"
            node_ids.add(n["id"])
    client_ids: set[str] = set()
    for cl in doc["clients"]:
        if cl["id"] in client_ids:
            return 1, f"duplicate client id {cl['id']}"
        client_ids.add(cl["id"])
    for c in clusters:
        n = len(c["nodes"])
        if n < 4 or (n - 1) % 3:
            return 2, f"cluster {c['id']} has {n} nodes, not 3f+1"
    roles = {c["role"] for c in clusters}
    if "coordinator" not in roles:
        return 3, "no coordinator cluster"
    if "shard" not in roles:
        return 3, "no shard cluster"
    shard_ids = [c["id"] for c in clusters if c["role"] == "shard"]
    shards = doc["shard_map"]["shards"]
    if len(shards) != len(set(shards)) or sorted(shards) != sorted(shard_ids):
        return 4, "shard_map.shards is not exactly the list of shard clusters"
    keys: set[str] = set()
    for c in clusters:
        for n in c["nodes"]:
            for k in (n["ed25519_public"], n["x25519_public"]):
                if k in keys:
                    return 5, f"public key {k} appears twice"
                keys.add(k)
    for cl in doc["clients"]:
        if cl["ed25519_public"] in keys:
            return 5, f"public key {cl['ed25519_public']} appears twice"
        keys.add(cl["ed25519_public"])
    used: set[tuple[str, int]] = set()
    for c in clusters:
        for n in c["nodes"]:
            ports = [n["ports"]["peer"], n["ports"]["client"], n["ports"]["admin"]]
            if len(set(ports)) != 3:
                return 6, f"node {n['id']} uses a port twice"
            for p in ports:
                if (n["host"], p) in used:
                    return 6, f"port {p} on host {n['host']} used twice"
                used.add((n["host"], p))
    if not doc.get("testbed", False):
        for c in clusters:
            for n in c["nodes"]:
                if n.get("faults"):
                    return 7, f"node {n['id']} has faults but testbed is not true"
    t = {**TIMEOUT_DEFAULTS, **doc.get("timeouts_ms", {})}
    if t["heartbeat_timeout"] <= t["heartbeat_interval"]:
        return 8, "heartbeat_timeout <= heartbeat_interval"
    if t["censorship"] <= t["request_forward"]:
        return 8, "censorship <= request_forward"
    return None


def validate(doc: object) -> Manifest:
    """Schema + semantic validation; LocalError(exit_code=2) names the first problem."""
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    try:
        jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(p) for p in exc.absolute_path)
        raise LocalError(f"manifest schema violation at /{path}: {exc.message[:200]}", 2) from None
    problem = semantic_problem(doc)
    if problem:
        raise LocalError(f"invalid manifest (SPEC 3 rule {problem[0]}): {problem[1]}", 2)
    return Manifest(doc)


def load(path: str | pathlib.Path) -> Manifest:
    try:
        doc = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LocalError(f"cannot read manifest {path}: {exc}", 2) from None
    return validate(doc)
