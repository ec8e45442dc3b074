"""Network manifests (SPEC 3): build one from a plan, and validate any manifest against
manifest.schema.json plus the semantic rules 1-8 that the schema cannot express."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from infra.errors import UsageError
from infra.model.resources import spec_file

DEFAULT_TIMEOUTS = {
    "heartbeat_interval": 250, "heartbeat_timeout": 2000, "request_forward": 1000, "censorship": 4000,
    "view_change": 3000, "queue_long_poll": 1000, "sync_retry": 500, "client_timeout": 5000, "batch_wait": 2,
}


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(spec_file(name).read_text())
    return jsonschema.Draft202012Validator(schema)


def fault_actions() -> list[str]:
    """The SPEC 16 testbed actions, as manifest.schema.json lists them."""
    return list(_validator("manifest.schema.json").schema["$defs"]["fault"]["properties"]["action"]["enum"])


def schema_problems(doc: Any, schema: str = "manifest.schema.json") -> list[str]:
    """Schema violations, each as 'path: message', in a stable order."""
    errors = sorted(_validator(schema).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]


def semantic_problems(m: dict) -> list[str]:
    """SPEC 3 semantic rules, in rule order. Assumes the document already passed the schema."""
    problems: list[str] = []
    clusters = m["clusters"]
    nodes = [n for c in clusters for n in c["nodes"]]
    cluster_ids = [c["id"] for c in clusters]

    def dup(kind: str, ids: list[str]) -> None:
        seen: set[str] = set()
        for i in ids:
            if i in seen:
                problems.append(f"rule 1: {kind} id {i!r} appears twice")
            seen.add(i)

    dup("cluster", cluster_ids)
    dup("node", [n["id"] for n in nodes])
    dup("client", [c["id"] for c in m["clients"]])
    for n in nodes:
        if n["id"] in cluster_ids:
            problems.append(f"rule 1: node id {n['id']!r} equals a cluster id")
    for c in clusters:
        if (len(c["nodes"]) - 1) % 3 or len(c["nodes"]) < 4:
            problems.append(f"rule 2: cluster {c['id']} has {len(c['nodes'])} nodes, not 3f+1")
    roles = {c["role"] for c in clusters}
    for role in ("coordinator", "shard"):
        if role not in roles:
            problems.append(f"rule 3: there is no {role} cluster")
    shard_ids = [c["id"] for c in clusters if c["role"] == "shard"]
    listed = m["shard_map"]["shards"]
    if sorted(listed) != sorted(shard_ids) or len(set(listed)) != len(listed):
        problems.append(f"rule 4: shard_map.shards {listed} is not exactly the shard clusters {shard_ids}")
    seen_keys: dict[str, str] = {}
    owners = [(n["id"], n["ed25519_public"]) for n in nodes] + [(n["id"], n["x25519_public"]) for n in nodes]
    owners += [(f"client {c['id']}", c["ed25519_public"]) for c in m["clients"]]
    for owner, key in owners:
        if key in seen_keys:
            problems.append(f"rule 5: public key {key[:16]}... of {owner} also belongs to {seen_keys[key]}")
        else:
            seen_keys[key] = owner
    used: dict[tuple[str, int], str] = {}
    for n in nodes:
        ports = n["ports"]
        if len(set(ports.values())) != len(ports):
            problems.append(f"rule 6: node {n['id']} uses one port number twice")
        for kind, port in ports.items():
            slot = (n["host"], port)
            if slot in used and not used[slot].startswith(n["id"] + " "):
                problems.append(f"rule 6: {n['host']}:{port} is used by {used[slot]} and {n['id']} {kind}")
            used.setdefault(slot, f"{n['id']} {kind}")
    if not m.get("testbed", False):
        for n in nodes:
            if "faults" in n:
                problems.append(f"rule 7: node {n['id']} has faults but testbed is not true")
    client_ids = {c["id"] for c in m.get("clients", [])}
    for n in nodes:
        for rule in n.get("faults", []):
            for c in rule.get("clients", []):
                if c not in client_ids:
                    problems.append(f"SPEC 16: node {n['id']} censors {c!r}, which is not a client id of the manifest")
    return problems + timeout_problems(m.get("timeouts_ms", {}))


def timeout_problems(timeouts: dict) -> list[str]:
    """SPEC 3 rule 8 on `timeouts_ms` (missing names take their defaults)."""
    t = {**DEFAULT_TIMEOUTS, **timeouts}
    problems = []
    if t["heartbeat_timeout"] <= t["heartbeat_interval"]:
        problems.append("rule 8: heartbeat_timeout <= heartbeat_interval")
    if t["censorship"] <= t["request_forward"]:
        problems.append("rule 8: censorship <= request_forward")
    return problems


def manifest_problems(m: Any) -> list[str]:
    problems = schema_problems(m)
    return problems if problems else semantic_problems(m)


def validate_manifest(m: Any) -> dict:
    """Return `m` if valid, else raise UsageError naming the first problem (like a node would)."""
    problems = manifest_problems(m)
    if problems:
        raise UsageError(f"invalid manifest: {problems[0]}",
                         detail="\n".join(problems[1:6]) or None)
    return m


def build_manifest(plan, network_id: str, node_fields: dict[str, dict], clients: list[dict],
                   testbed: bool = False) -> dict:
    """Assemble a manifest. `node_fields[node_id]` holds host, ports, ed25519_public, x25519_public."""
    clusters = []
    for c in plan.clusters:
        nodes = []
        for n in c.nodes:
            extra = node_fields[n.id]
            nodes.append({"id": n.id, "implementation": n.implementation, "region": n.region,
                          "host": extra["host"], "ports": extra["ports"],
                          "ed25519_public": extra["ed25519_public"], "x25519_public": extra["x25519_public"]})
        clusters.append({"id": c.id, "role": c.role, "nodes": nodes})
    m = {
        "version": 1,
        "network_id": network_id,
        "testbed": testbed,
        "regions": list(plan.regions),
        "clusters": clusters,
        "shard_map": {"function": "sha256-u64-mod", "shards": [c.id for c in plan.clusters if c.role == "shard"]},
        "clients": clients,
        "timeouts_ms": {**DEFAULT_TIMEOUTS, **getattr(plan, "timeouts_ms", {})},
    }
    return validate_manifest(m)


def parse_timeouts(pairs) -> dict[str, int]:
    """`NAME=MS` pairs (e.g. from `deploy --timeout heartbeat_timeout=4000`) checked against the
    manifest's timeout names; UsageError names the bad pair and the valid names."""
    result = {}
    for p in pairs:
        name, sep, value = p.partition("=")
        if name not in DEFAULT_TIMEOUTS:
            raise UsageError(f"--timeout {p!r}: unknown timeout {name!r}",
                             fix="use one of " + ", ".join(sorted(DEFAULT_TIMEOUTS)))
        if not sep or not value.isdigit() or int(value) < 1:
            raise UsageError(f"--timeout {p!r} is not NAME=MS with MS a positive integer",
                             fix=f"e.g. --timeout {name}={DEFAULT_TIMEOUTS[name]}")
        result[name] = int(value)
    problems = timeout_problems(result)
    if problems:
        raise UsageError(f"--timeout: {problems[0]}", fix="raise the first timeout or lower the second")
    return result


def write_manifest(path: Path, m: dict) -> None:
    """Write atomically so a node never reads half a manifest."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(m, indent=2) + "\n")
    tmp.replace(path)
