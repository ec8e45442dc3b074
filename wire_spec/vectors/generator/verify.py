"""Reference checks of SPEC 9 (quorum certificates) and SPEC 10 (compact decisions)."""

from __future__ import annotations

from . import ed25519_ref
from .codec import encode
from .keys import signing_bytes
from .merkle import leaf_hash, verify_inclusion

KIND_FOR_ROLE = {"shard": "calls", "coordinator": "results", "client": "responses"}
HEADER_HASH_FIELDS = ("parent_hash", "inputs_hash", "outputs_root")


class Rejected(Exception):
    """An input from a peer that breaks the spec; `reason` is a SPEC 15 rejection reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def verify_qc(manifest: dict, header: dict, qc: dict) -> None:
    clusters = {c["id"]: c for c in manifest["clusters"]}
    cluster = clusters.get(header.get("cluster_id", ""))
    if cluster is None:
        raise Rejected("wrong_cluster", f"unknown cluster {header.get('cluster_id')!r}")
    sigs = qc.get("signatures", [])
    ids = [s.get("node_id", "").encode() for s in sigs]
    if any(a >= b for a, b in zip(ids, ids[1:], strict=False)):
        raise Rejected("bad_qc", "signatures not sorted strictly by node id")
    keys = {n["id"]: bytes.fromhex(n["ed25519_public"]) for n in cluster["nodes"]}
    for s in sigs:
        if s.get("node_id", "") not in keys:
            raise Rejected("bad_qc", f"{s.get('node_id')!r} is not a member of {cluster['id']}")
    n = len(cluster["nodes"])
    q = 2 * ((n - 1) // 3) + 1
    if not q <= len(sigs) <= n:
        raise Rejected("bad_qc", f"{len(sigs)} signatures, need {q}..{n}")
    data = signing_bytes("decision", manifest["network_id"], encode("DecisionHeader", header))
    for s in sigs:
        if not ed25519_ref.verify(keys[s["node_id"]], data, s.get("signature", b""))[0]:
            raise Rejected("bad_qc", f"bad signature of {s['node_id']}")


def destination_role(manifest: dict, destination: str) -> str:
    if destination.startswith("client:"):
        return "client"
    return {c["id"]: c["role"] for c in manifest["clusters"]}[destination]


def verify_compact(manifest: dict, cd: dict, source: str, destination: str, next_seq: int) -> None:
    """SPEC 10 points 1 to 6, in order; raises Rejected with the reason of the first failure."""
    header, leaf = cd.get("header", {}), cd.get("leaf", {})
    cluster_ids = {c["id"] for c in manifest["clusters"]}
    if header.get("cluster_id", "") != source or source not in cluster_ids:
        raise Rejected("wrong_cluster", f"header cluster {header.get('cluster_id')!r}, expected {source!r}")
    verify_qc(manifest, header, cd.get("qc", {}))
    count, index = cd.get("leaf_count", 0), cd.get("leaf_index", 0)
    if count < 1 or index >= count or not verify_inclusion(
            index, count, leaf_hash(encode("OutputLeaf", leaf)), cd.get("proof", []), header.get("outputs_root", b"")):
        raise Rejected("bad_proof", "inclusion proof does not verify")
    if (leaf.get("source_cluster", "") != source or leaf.get("height", 0) != header.get("height", 0)
            or leaf.get("destination", "") != destination):
        raise Rejected("wrong_destination", "leaf source, height or destination mismatch")
    kind = KIND_FOR_ROLE[destination_role(manifest, destination)]
    others = [k for k in ("calls", "results", "responses") if k != kind and leaf.get(k)]
    if others or not leaf.get(kind):
        raise Rejected("malformed", f"leaf must carry only {kind}, at least one")
    for field in HEADER_HASH_FIELDS:  # DF-1: SPEC 5 fixed lengths, checked even under a valid QC
        if len(header.get(field, b"")) != 32:
            raise Rejected("malformed", f"header {field} is {len(header.get(field, b''))} bytes, not 32")
    seq = leaf.get("seq", 0)
    if seq != next_seq:
        raise Rejected("replay" if seq < next_seq else "out_of_order", f"seq {seq}, expected {next_seq}")
