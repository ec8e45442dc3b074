"""Network manifest loading, schema and semantic validation (SPEC 3) and derived values."""

import hashlib
import json
import os
from dataclasses import dataclass

import jsonschema

_SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "..", "wire_spec", "manifest.schema.json")

# SPEC 3 defaults, written as "name=value" pairs.
TIMEOUT_DEFAULTS = {k: int(v) for k, v in (item.split("=") for item in ["heartbeat_interval=250", "heartbeat_timeout=2000", "request_forward=1000", "censorship=4000", "view_change=3000", "queue_long_poll=1000", "sync_retry=500", "client_timeout=5000", "batch_wait=2"])}
LIMIT_DEFAULTS = {k: int(v) for k, v in (item.split("=") for item in ["max_batch_inputs=1024", "max_batch_bytes=4194304", "max_message_bytes=16777216", "max_key_bytes=1024", "max_value_bytes=65536", "max_pending_requests=100000"])}


class ManifestError(Exception):
    """The manifest is invalid (local misuse; a node exits 2). `stage` is 'schema' or 'semantic',
    `rule` the SPEC 3 semantic rule number (None for schema or unreadable files)."""

    def __init__(self, msg: str, stage: str = "semantic", rule: int | None = None):
        super().__init__(msg)
        self.stage, self.rule = stage, rule


class NodeInfo:
    """One node entry of the manifest, with its keys decoded and its position in its cluster."""

    __slots__ = ("id", "cluster", "index", "host", "bind", "admin_bind", "peer_port", "client_port", "admin_port",
                 "ed25519", "x25519", "implementation", "faults")

    def __init__(self, entry: dict, cluster_id: str, index: int):
        ports = entry["ports"]
        self.id, self.cluster, self.index = entry["id"], cluster_id, index
        self.host = entry["host"]
        self.bind = entry.get("bind") or entry["host"]
        self.admin_bind = entry.get("admin_bind") or self.bind
        self.peer_port, self.client_port, self.admin_port = ports["peer"], ports["client"], ports["admin"]
        self.ed25519 = bytes.fromhex(entry["ed25519_public"])
        self.x25519 = bytes.fromhex(entry["x25519_public"])
        self.implementation = entry["implementation"]
        self.faults = list(entry.get("faults", ()))


@dataclass(frozen=True)
class ClusterInfo:
    """A cluster with its fault threshold precomputed: n = 3f + 1 members, quorum q = 2f + 1."""

    id: str
    role: str
    members: tuple
    n: int
    f: int
    q: int

    @classmethod
    def of(cls, entry: dict) -> "ClusterInfo":
        names = tuple(node["id"] for node in entry["nodes"])
        faulty = (len(names) - 1) // 3
        return cls(entry["id"], entry["role"], names, len(names), faulty, 2 * faulty + 1)

    def leader(self, view: int) -> str:
        return self.members[view % self.n]


def _u64_index(data: bytes, modulus: int) -> int:
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big") % modulus


class Manifest:
    """A validated manifest with lookup helpers."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.network_id: str = doc["network_id"]
        self.testbed: bool = bool(doc.get("testbed"))
        self.timeouts = dict(TIMEOUT_DEFAULTS)
        self.timeouts.update(doc.get("timeouts_ms", {}))
        self.limits = dict(LIMIT_DEFAULTS)
        self.limits.update(doc.get("limits", {}))
        self.clusters = {entry["id"]: ClusterInfo.of(entry) for entry in doc["clusters"]}
        self.nodes = {node["id"]: NodeInfo(node, entry["id"], pos)
                      for entry in doc["clusters"] for pos, node in enumerate(entry["nodes"])}
        self.shards: list[str] = list(doc["shard_map"]["shards"])
        self.coordinators = [cid for cid, info in self.clusters.items() if info.role == "coordinator"]
        self.clients = {bytes.fromhex(cl["ed25519_public"]): cl["id"] for cl in doc["clients"]}

    def shard_of(self, key: bytes) -> str:
        return self.shards[_u64_index(key, len(self.shards))]

    def default_coordinator(self, client_key: bytes) -> str:
        return self.coordinators[_u64_index(client_key, len(self.coordinators))]

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
