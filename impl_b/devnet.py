"""Builders for local test networks: key files, manifest documents and free ports.

Used by impl_b's tests and by operators who want a throwaway local network of impl_b nodes.
"""

import contextlib
import json
import os
import socket

from .crypto import Signer, write_key_file, x25519_public


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (bind port 0, then release)."""
    with contextlib.ExitStack() as stack:
        holders = [stack.enter_context(socket.socket()) for _ in range(count)]
        for h in holders:
            h.bind(("127.0.0.1", 0))
        return [h.getsockname()[1] for h in holders]


def seed_for(name: str, purpose: str) -> bytes:
    """Deterministic test secret (test networks only)."""
    import hashlib
    return hashlib.sha256(f"impl_b-devnet/{purpose}/{name}".encode()).digest()


def build(layout: dict[str, str], nodes_per_cluster: int = 4, clients: tuple = ("alice",),
          network_id: str = "impl-b-test", timeouts: dict | None = None, testbed: bool = False,
          ports: bool = True, faults: dict | None = None) -> tuple[dict, dict]:
    """Manifest document for clusters `layout` (id -> role) and the secrets by node/client name.

    Secrets: {name: {"ed25519": seed, "x25519": secret}} for nodes, {name: {"ed25519": seed}} for clients."""
    secrets: dict = {}
    clusters = []
    all_ports = free_ports(3 * nodes_per_cluster * len(layout)) if ports else None
    k = 0
    for cid, role in layout.items():
        nodes = []
        for i in range(nodes_per_cluster):
            nid = f"{cid}-n{i}"
            ed, xs = seed_for(nid, "ed25519"), seed_for(nid, "x25519")
            secrets[nid] = {"ed25519": ed, "x25519": xs}
            triple = all_ports[k:k + 3] if all_ports else [10000 + k + j for j in range(3)]
            k += 3
            node = dict(id=nid, implementation="impl_b", region="local", host="127.0.0.1", admin_bind="127.0.0.1",
                        ports=dict(zip(("peer", "client", "admin"), triple, strict=True)),
                        ed25519_public=Signer(ed).public.hex(), x25519_public=x25519_public(xs).hex())
            node.update({"faults": faults[nid]} if faults and nid in faults else {})
            nodes.append(node)
        clusters.append({"id": cid, "role": role, "nodes": nodes})
    cl = []
    for name in clients:
        ed = seed_for(name, "client")
        secrets[name] = {"ed25519": ed}
        cl.append({"id": name, "ed25519_public": Signer(ed).public.hex()})
    doc = {"version": 1, "network_id": network_id, "testbed": testbed, "regions": ["local"], "clusters": clusters,
           "shard_map": {"function": "sha256-u64-mod", "shards": [c for c, r in layout.items() if r == "shard"]},
           "clients": cl}
    if timeouts:
        doc["timeouts_ms"] = timeouts
    return doc, secrets


def write(doc: dict, secrets: dict, root: str) -> str:
    """Write manifest.json and keys/<name>/ (nodes) or keys/<name>.key (clients) under `root`."""
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, "manifest.json")
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=1)
    for name, sec in secrets.items():
        if "x25519" in sec:
            d = os.path.join(root, "keys", name)
            os.makedirs(d, mode=0o700, exist_ok=True)
            write_key_file(os.path.join(d, "ed25519.key"), sec["ed25519"])
            write_key_file(os.path.join(d, "x25519.key"), sec["x25519"])
        else:
            os.makedirs(os.path.join(root, "keys"), exist_ok=True)
            write_key_file(os.path.join(root, "keys", f"{name}.key"), sec["ed25519"])
    return path
