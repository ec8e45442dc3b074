"""qc and compact vectors, re-checked with Google protobuf, PyNaCl and a Merkle verifier written here."""

from __future__ import annotations

import hashlib
import json
import struct

import pytest
from nacl.signing import VerifyKey

from tests.wire_spec.conftest import VECTORS, message_class
from tests.wire_spec.test_merkle_vectors import _verify as merkle_verify


def _ok(public: bytes, data: bytes, sig: bytes) -> bool:
    try:
        VerifyKey(public).verify(data, sig)
        return True
    except Exception:  # noqa: BLE001 - any refusal is a reject
        return False


def _qc_reason(manifest: dict, header, header_bytes: bytes, qc) -> str | None:
    clusters = {c["id"]: c for c in manifest["clusters"]}
    if header.cluster_id not in clusters:
        return "wrong_cluster"
    nodes = {n["id"]: bytes.fromhex(n["ed25519_public"]) for n in clusters[header.cluster_id]["nodes"]}
    ids = [s.node_id.encode() for s in qc.signatures]
    if ids != sorted(set(ids)) or any(s.node_id not in nodes for s in qc.signatures):
        return "bad_qc"
    n = len(nodes)
    if not (2 * (n - 1) // 3 + 1) <= len(ids) <= n:
        return "bad_qc"
    net = manifest["network_id"].encode()
    data = b"heraclius/v1/decision\x00" + struct.pack(">H", len(net)) + net + header_bytes
    if not all(_ok(nodes[s.node_id], data, s.signature) for s in qc.signatures):
        return "bad_qc"
    return None


@pytest.mark.parametrize("case", sorted(VECTORS.glob("qc/verify/*/*")), ids=lambda p: "/".join(p.parts[-2:]))
def test_qc(case, pool):
    meta = json.loads((case / "meta.json").read_text())
    manifest = json.loads((case / "manifest.json").read_text())
    hb = (case / "header.bin").read_bytes()
    header = message_class(pool, "DecisionHeader").FromString(hb)
    qc = message_class(pool, "QuorumCert").FromString((case / "qc.bin").read_bytes())
    reason = _qc_reason(manifest, header, hb, qc)
    assert reason == meta.get("reason")
    assert (reason is None) == (meta["verdict"] == "accept") == (case.parent.name == "valid")


def _compact_reason(manifest: dict, cd, ctx: dict) -> str | None:
    src, dest = ctx["source"], ctx["destination"]
    roles = {c["id"]: c["role"] for c in manifest["clusters"]}
    if cd.header.cluster_id != src or src not in roles:
        return "wrong_cluster"
    reason = _qc_reason(manifest, cd.header, cd.header.SerializeToString(deterministic=True), cd.qc)
    if reason:
        return reason
    leaf_hash = hashlib.sha256(b"\x00" + cd.leaf.SerializeToString(deterministic=True)).digest()
    if cd.leaf_count < 1 or not merkle_verify(cd.leaf_index, cd.leaf_count, leaf_hash, list(cd.proof),
                                              cd.header.outputs_root):
        return "bad_proof"
    leaf = cd.leaf
    if leaf.source_cluster != src or leaf.height != cd.header.height or leaf.destination != dest:
        return "wrong_destination"
    want = "responses" if dest.startswith("client:") else {"shard": "calls", "coordinator": "results"}[roles[dest]]
    counts = {k: len(getattr(leaf, k)) for k in ("calls", "results", "responses")}
    if counts[want] == 0 or sum(counts.values()) != counts[want]:
        return "malformed"
    h = cd.header
    if any(len(v) != 32 for v in (h.parent_hash, h.inputs_hash, h.outputs_root)):  # DF-1
        return "malformed"
    if leaf.seq != ctx["next_seq"]:
        return "replay" if leaf.seq < ctx["next_seq"] else "out_of_order"
    return None


@pytest.mark.parametrize("case", sorted(VECTORS.glob("compact/verify/*/*")), ids=lambda p: "/".join(p.parts[-2:]))
def test_compact(case, pool):
    meta = json.loads((case / "meta.json").read_text())
    manifest = json.loads((case / "manifest.json").read_text())
    data = (case / "compact.bin").read_bytes()
    cd = message_class(pool, "CompactDecision").FromString(data)
    assert cd.SerializeToString(deterministic=True) == data
    reason = _compact_reason(manifest, cd, json.loads((case / "context.json").read_text()))
    assert reason == meta.get("reason")
    assert (reason is None) == (meta["verdict"] == "accept") == (case.parent.name == "valid")


def test_required_cases_present():
    qc = {p.name for p in VECTORS.glob("qc/verify/invalid/*")}
    assert {"too_few", "duplicate_signer", "unsorted", "non_member", "unknown_node", "bad_signature_among_enough",
            "wrong_cluster", "wrong_height", "wrong_network"} <= qc
    cd = {p.name for p in VECTORS.glob("compact/verify/invalid/*")}
    assert {"bad_proof", "tampered_leaf_payload", "tampered_header", "wrong_destination", "wrong_source",
            "qc_too_few", "wrong_entry_kind", "seq_gap", "replay", "header_inputs_hash_33_bytes",
            "header_inputs_hash_absent", "header_parent_hash_31_bytes"} <= cd
