"""Reference manifest validator: manifest.schema.json plus the SPEC 3 semantic rules.

`semantic_problem` needs only the standard library; `validate` also runs the JSON schema and
therefore imports `jsonschema` (a pinned dependency of the project, not used by the generator).
"""

from __future__ import annotations

import json
from pathlib import Path

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "manifest.schema.json"

TIMEOUT_DEFAULTS = {"heartbeat_interval": 250, "heartbeat_timeout": 2000, "request_forward": 1000,
                    "censorship": 4000}


def semantic_problem(m: dict) -> tuple[int, str] | None:
    """(rule number, message) of the first SPEC 3 semantic rule broken, or None. Assumes schema-valid."""
    clusters = m["clusters"]
    nodes = [n for c in clusters for n in c["nodes"]]
    cluster_ids = [c["id"] for c in clusters]
    node_ids = [n["id"] for n in nodes]
    client_ids = [c["id"] for c in m["clients"]]
    for kind, ids in (("cluster", cluster_ids), ("node", node_ids), ("client", client_ids)):
        dup = _first_dup(ids)
        if dup is not None:
            return 1, f"{kind} id {dup!r} appears twice"
    clash = sorted(set(node_ids) & set(cluster_ids))
    if clash:
        return 1, f"node id {clash[0]!r} equals a cluster id"
    for c in clusters:
        n = len(c["nodes"])
        if n < 4 or (n - 1) % 3:
            return 2, f"cluster {c['id']!r} has {n} nodes, not 3f+1 with f >= 1"
    roles = {c["role"] for c in clusters}
    if "coordinator" not in roles:
        return 3, "no coordinator cluster"
    if "shard" not in roles:
        return 3, "no shard cluster"
    shards = m["shard_map"]["shards"]
    shard_ids = [c["id"] for c in clusters if c["role"] == "shard"]
    if len(shards) != len(set(shards)) or sorted(shards) != sorted(shard_ids):
        return 4, "shard_map.shards is not the list of all shard clusters, each once"
    keys = [k for n in nodes for k in (n["ed25519_public"], n["x25519_public"])]
    keys += [c["ed25519_public"] for c in m["clients"]]
    dup = _first_dup(keys)
    if dup is not None:
        return 5, f"public key {dup} appears twice"
    used: dict[tuple[str, int], str] = {}
    for n in nodes:
        ports = [n["ports"][p] for p in ("peer", "client", "admin")]
        if len(set(ports)) != 3:
            return 6, f"node {n['id']!r} uses one port twice"
        for p in ports:
            other = used.get((n["host"], p))
            if other is not None:
                return 6, f"nodes {other!r} and {n['id']!r} share port {p} on host {n['host']!r}"
            used[(n["host"], p)] = n["id"]
    if not m.get("testbed", False):
        for n in nodes:
            if "faults" in n:
                return 7, f"node {n['id']!r} has faults but testbed is not true"
    t = dict(TIMEOUT_DEFAULTS, **{k: v for k, v in m.get("timeouts_ms", {}).items() if k in TIMEOUT_DEFAULTS})
    if t["heartbeat_timeout"] <= t["heartbeat_interval"]:
        return 8, "heartbeat_timeout <= heartbeat_interval"
    if t["censorship"] <= t["request_forward"]:
        return 8, "censorship <= request_forward"
    return None


def _first_dup(values: list) -> object | None:
    seen = set()
    for v in values:
        if v in seen:
            return v
        seen.add(v)
    return None


def validate(manifest: object) -> dict:
    """{"valid": bool, "stage": "schema"|"semantic"|None, "rule": int|None, "message": str}."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(manifest), key=lambda e: list(e.path))
    if errors:
        return {"valid": False, "stage": "schema", "rule": None, "message": errors[0].message}
    problem = semantic_problem(manifest)
    if problem:
        return {"valid": False, "stage": "semantic", "rule": problem[0], "message": problem[1]}
    return {"valid": True, "stage": None, "rule": None, "message": "ok"}
