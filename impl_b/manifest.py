"""Network manifest loading, schema and semantic validation (SPEC 3) and derived values."""

import hashlib
import json
import os
from dataclasses import dataclass, field

import jsonschema

_SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "..", "wire_spec", "manifest.schema.json")

TIMEOUT_DEFAULTS = {
    "heartbeat_interval": 250, "heartbeat_timeout": 2000, "request_forward": 1000, "censorship": 4000,
    "view_change": 3000, "queue_long_poll": 1000, "sync_retry": 500, "client_timeout": 5000, "batch_wait": 2,
}
LIMIT_DEFAULTS = {
    "max_batch_inputs": 1024, "max_batch_bytes": 4194304, "max_message_bytes": 16777216,
    "max_key_bytes": 1024, "max_value_bytes": 65536, "max_pending_requests": 100000,
}


class ManifestError(Exception):
    """The manifest is invalid (local misuse; a node exits 2). `stage` is 'schema' or 'semantic',
    `rule` the SPEC 3 semantic rule number (None for schema or unreadable files)."""

    def __init__(self, msg: str, stage: str = "semantic", rule: int | None = None):
        super().__init__(msg)
        self.stage, self.rule = stage, rule


@dataclass
class NodeInfo:
    id: str
    cluster: str
    index: int
    host: str
    bind: str
    peer_port: int
    client_port: int
    admin_port: int
    ed25519: bytes
    x25519: bytes
    implementation: str
    faults: list = field(default_factory=list)


@dataclass
class ClusterInfo:
    id: str
    role: str
    members: list[str]

    @property
    def n(self) -> int:
        return len(self.members)

    @property
    def f(self) -> int:
        return (self.n - 1) // 3

    @property
    def q(self) -> int:
        return 2 * self.f + 1

    def leader(self, view: int) -> str:
        return self.members[view % self.n]


class Manifest:
    """A validated manifest with lookup helpers."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.network_id: str = doc["network_id"]
        self.testbed: bool = doc.get("testbed", False)
        self.timeouts = {**TIMEOUT_DEFAULTS, **doc.get("timeouts_ms", {})}
        self.limits = {**LIMIT_DEFAULTS, **doc.get("limits", {})}
        self.clusters: dict[str, ClusterInfo] = {}
        self.nodes: dict[str, NodeInfo] = {}
        for c in doc["clusters"]:
            self.clusters[c["id"]] = ClusterInfo(c["id"], c["role"], [n["id"] for n in c["nodes"]])
            for i, n in enumerate(c["nodes"]):
                self.nodes[n["id"]] = NodeInfo(
                    n["id"], c["id"], i, n["host"], n.get("bind", n["host"]), n["ports"]["peer"],
                    n["ports"]["client"], n["ports"]["admin"], bytes.fromhex(n["ed25519_public"]),
                    bytes.fromhex(n["x25519_public"]), n["implementation"], n.get("faults", []))
        self.shards: list[str] = doc["shard_map"]["shards"]
        self.coordinators = [c for c, ci in self.clusters.items() if ci.role == "coordinator"]
        self.clients: dict[bytes, str] = {bytes.fromhex(c["ed25519_public"]): c["id"] for c in doc["clients"]}

    def shard_of(self, key: bytes) -> str:
        d = hashlib.sha256(key).digest()
        return self.shards[int.from_bytes(d[:8], "big") % len(self.shards)]

    def default_coordinator(self, client_key: bytes) -> str:
        d = hashlib.sha256(client_key).digest()
        return self.coordinators[int.from_bytes(d[:8], "big") % len(self.coordinators)]

    def other_role_clusters(self, cluster_id: str) -> list[str]:
        role = self.clusters[cluster_id].role
        return [c for c, ci in self.clusters.items() if ci.role != role]


def _semantic(doc: dict) -> None:
    seen: set[str] = set()
    cluster_ids = set()
    for c in doc["clusters"]:
        if c["id"] in seen:
            raise ManifestError(f"duplicate id {c['id']!r}", rule=1)
        seen.add(c["id"])
        cluster_ids.add(c["id"])
    for c in doc["clusters"]:
        for n in c["nodes"]:
            if n["id"] in seen:
                raise ManifestError(f"duplicate id {n['id']!r} (node ids must differ from each other and from cluster ids)", rule=1)
            seen.add(n["id"])
    client_ids = set()
    for cl in doc["clients"]:
        if cl["id"] in client_ids:
            raise ManifestError(f"duplicate client id {cl['id']!r}", rule=1)
        client_ids.add(cl["id"])
    for c in doc["clusters"]:
        n = len(c["nodes"])
        if n < 4 or (n - 1) % 3:
            raise ManifestError(f"cluster {c['id']!r} has {n} nodes, not 3f+1", rule=2)
    roles = [c["role"] for c in doc["clusters"]]
    if "coordinator" not in roles or "shard" not in roles:
        raise ManifestError("need at least one coordinator cluster and one shard cluster", rule=3)
    shard_ids = [c["id"] for c in doc["clusters"] if c["role"] == "shard"]
    shards = doc["shard_map"]["shards"]
    if len(shards) != len(set(shards)) or set(shards) != set(shard_ids):
        raise ManifestError("shard_map.shards must list every shard cluster exactly once", rule=4)
    keys: set[str] = set()
    for c in doc["clusters"]:
        for n in c["nodes"]:
            for k in (n["ed25519_public"], n["x25519_public"]):
                if k in keys:
                    raise ManifestError(f"public key {k} appears twice", rule=5)
                keys.add(k)
    for cl in doc["clients"]:
        if cl["ed25519_public"] in keys:
            raise ManifestError(f"public key {cl['ed25519_public']} appears twice", rule=5)
        keys.add(cl["ed25519_public"])
    used: set[tuple[str, int]] = set()
    for c in doc["clusters"]:
        for n in c["nodes"]:
            ports = list(n["ports"].values())
            if len(set(ports)) != len(ports):
                raise ManifestError(f"node {n['id']!r} uses a port twice", rule=6)
            for p in ports:
                if (n["host"], p) in used:
                    raise ManifestError(f"port {p} on host {n['host']} used by two nodes", rule=6)
                used.add((n["host"], p))
            if n.get("faults") and not doc.get("testbed", False):
                raise ManifestError(f"node {n['id']!r} has faults but testbed is not true", rule=7)
    t = {**TIMEOUT_DEFAULTS, **doc.get("timeouts_ms", {})}
    if t["heartbeat_timeout"] <= t["heartbeat_interval"]:
        raise ManifestError("heartbeat_timeout must exceed heartbeat_interval", rule=8)
    if t["censorship"] <= t["request_forward"]:
        raise ManifestError("censorship must exceed request_forward", rule=8)


def validate(doc) -> Manifest:
    with open(_SCHEMA_PATH) as fh:
        schema = json.load(fh)
    try:
        jsonschema.validate(doc, schema)
    except jsonschema.ValidationError as e:
        path = "/".join(str(p) for p in e.absolute_path)
        raise ManifestError(f"schema: {path}: {e.message}", "schema") from None
    _semantic(doc)
    return Manifest(doc)


def load(path: str) -> Manifest:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as e:
        raise ManifestError(f"cannot read manifest {path}: {e}", "schema") from None
    return validate(doc)
