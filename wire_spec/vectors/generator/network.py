"""A deterministic test network: manifest, node and client keys, QCs and compact decisions."""

from __future__ import annotations

import hashlib

from .codec import encode
from .keys import Signer, seed, x25519_public
from .merkle import inclusion_proof, mth


def H(message: str, value: dict) -> bytes:
    return hashlib.sha256(encode(message, value)).digest()


def client_destination(client_key: bytes) -> str:
    return "client:" + client_key.hex()


class Network:
    """Builds a manifest from (cluster id, role, node count) triples; keys derive from names."""

    def __init__(self, network_id: str, clusters: list[tuple[str, str, int]], clients: list[str],
                 testbed: bool = False):
        self.network_id = network_id
        self.signers: dict[str, Signer] = {}
        self.members: dict[str, list[str]] = {}
        self.roles: dict[str, str] = {}
        nodes_json = {}
        index = 0
        for cid, role, n in clusters:
            self.roles[cid] = role
            self.members[cid] = [f"{cid}-n{i}" for i in range(n)]
            nodes_json[cid] = []
            for node in self.members[cid]:
                signer = Signer(f"{network_id}/{node}")
                self.signers[node] = signer
                port = 7000 + 10 * index
                index += 1
                nodes_json[cid].append({
                    "id": node, "implementation": "impl_a" if index % 2 else "impl_b", "region": "local",
                    "host": "127.0.0.1", "ports": {"peer": port, "client": port + 1, "admin": port + 2},
                    "ed25519_public": signer.public.hex(),
                    "x25519_public": x25519_public(seed(f"{network_id}/{node}/x25519")).hex(),
                })
        self.clients = {name: Signer(f"{network_id}/client/{name}") for name in clients}
        self.manifest = {
            "version": 1, "network_id": network_id, "testbed": testbed, "regions": ["local"],
            "clusters": [{"id": cid, "role": role, "nodes": nodes_json[cid]} for cid, role, _ in clusters],
            "shard_map": {"function": "sha256-u64-mod", "shards": [c for c, r, _ in clusters if r == "shard"]},
            "clients": [{"id": name, "ed25519_public": s.public.hex()} for name, s in self.clients.items()],
        }

    @property
    def shards(self) -> list[str]:
        return self.manifest["shard_map"]["shards"]

    def quorum(self, cluster: str) -> int:
        return 2 * ((len(self.members[cluster]) - 1) // 3) + 1

    def shard_of(self, key: bytes) -> str:
        digest = hashlib.sha256(key).digest()
        return self.shards[int.from_bytes(digest[:8], "big") % len(self.shards)]

    def qc(self, header: dict, nodes: list[str] | None = None, network_id: str | None = None) -> dict:
        """A QuorumCert over `header`: by default the first q members, sorted by node id."""
        cluster = header["cluster_id"]
        nodes = sorted(nodes if nodes is not None else self.members[cluster][: self.quorum(cluster)])
        body = encode("DecisionHeader", header)
        net = network_id or self.network_id
        return {"signatures": [{"node_id": n, "signature": self.signers[n].sign("decision", net, body)}
                               for n in nodes]}

    def sign_request(self, client: str, request: dict) -> dict:
        signer = self.clients[client]
        request = dict(request, client_key=signer.public)
        request.pop("signature", None)
        return dict(request, signature=signer.sign("client-request", self.network_id,
                                                   encode("ClientRequest", request)))

    def sign_bundle(self, client: str, bundle: dict) -> dict:
        signer = self.clients[client]
        bundle = dict(bundle, client_key=signer.public)
        bundle.pop("signature", None)
        return dict(bundle, signature=signer.sign("client-bundle", self.network_id,
                                                  encode("RequestBundle", bundle)))


def build_header(cluster: str, height: int, parent_hash: bytes, batch: dict, outputs: list[dict]) -> dict:
    return {"cluster_id": cluster, "height": height, "parent_hash": parent_hash,
            "inputs_hash": H("Batch", batch), "outputs_root": mth([encode("OutputLeaf", o) for o in outputs])}


def compact(decision: dict, destination: str) -> dict:
    """The compact decision of `decision` (with its qc) for `destination`."""
    leaves = [encode("OutputLeaf", o) for o in decision["outputs"]]
    index = [o["destination"] for o in decision["outputs"]].index(destination)
    return {"header": decision["header"], "leaf": decision["outputs"][index], "leaf_index": index,
            "leaf_count": len(leaves), "proof": inclusion_proof(index, leaves), "qc": decision["qc"]}
