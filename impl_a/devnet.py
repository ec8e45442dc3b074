"""Local development networks: generate key files (mode 0600) and a manifest on 127.0.0.1 free ports."""

from __future__ import annotations

import json
import os
import pathlib
import socket

import nacl.bindings as nb

from impl_a.crypto import SigningKey, x25519_public


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def write_key(path: pathlib.Path, secret: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret.hex() + "\n")
    os.chmod(path, 0o600)


def make_network(root: str | os.PathLike, clusters: list[tuple[str, str]], nodes_per_cluster: int = 4,
                 clients: int = 1, network_id: str = "impl-a-test", timeouts: dict | None = None,
                 testbed: bool = False, faults: dict | None = None, seed: int | None = None) -> dict:
    """Write keys under root/keys/<node>/ and root/clients/<client>.key; returns the manifest dict.

    clusters: [(cluster_id, role)]. seed makes keys deterministic (for simulations)."""
    root = pathlib.Path(root)
    counter = [0]

    def secret() -> bytes:
        if seed is None:
            return nb.randombytes(32)
        counter[0] += 1
        return nb.crypto_hash_sha256(f"{seed}/{counter[0]}".encode())

    doc_clusters = []
    ports = free_ports(3 * nodes_per_cluster * len(clusters))
    for cid, role in clusters:
        nodes = []
        for i in range(nodes_per_cluster):
            nid = f"{cid}-n{i}"
            ed, xs = secret(), secret()
            write_key(root / "keys" / nid / "ed25519.key", ed)
            write_key(root / "keys" / nid / "x25519.key", xs)
            p = [ports.pop() for _ in range(3)]
            node = {"id": nid, "implementation": "impl_a", "region": "local", "host": "127.0.0.1",
                    "ports": {"peer": p[0], "client": p[1], "admin": p[2]},
                    "ed25519_public": SigningKey(ed).public.hex(), "x25519_public": x25519_public(xs).hex()}
            if faults and nid in faults:
                node["faults"] = faults[nid]
            nodes.append(node)
        doc_clusters.append({"id": cid, "role": role, "nodes": nodes})
    doc_clients = []
    for i in range(clients):
        sk = secret()
        write_key(root / "clients" / f"client{i}.key", sk)
        doc_clients.append({"id": f"client{i}", "ed25519_public": SigningKey(sk).public.hex()})
    doc = {"version": 1, "network_id": network_id, "testbed": testbed, "regions": ["local"],
           "clusters": doc_clusters,
           "shard_map": {"function": "sha256-u64-mod", "shards": [c for c, r in clusters if r == "shard"]},
           "clients": doc_clients}
    if timeouts:
        doc["timeouts_ms"] = timeouts
    (root / "manifest.json").write_text(json.dumps(doc, indent=1))
    return doc


def read_key(path: str | os.PathLike) -> bytes:
    return bytes.fromhex(pathlib.Path(path).read_text().strip())
