"""Differential errata DF-1 and DF-2 (wire_spec/errata/differential.md), built in the test from public
vector inputs: a compact decision whose header hash fields are not 32 bytes is `malformed` even under
a valid QC (SPEC 10 point 5), at the adapter's check and as a remote input of a shard batch (SPEC 11);
ids are unique per kind and a client id may equal a node or cluster id (SPEC 3 rule 1)."""

from __future__ import annotations

import copy
import hashlib
import json
import pathlib

import pytest

from impl_a import heraclius_pb2 as pb
from impl_a.codec import decode
from impl_a.crypto import SigningKey
from impl_a.errors import RemoteViolation
from impl_a.manifest import Manifest, semantic_problem
from impl_a.rsm import Execution, State, check_batch_limits
from impl_a.verify import check_compact, decision_signing_bytes

V = pathlib.Path(__file__).resolve().parents[2] / "wire_spec" / "vectors"
TO_CLIENT = V / "compact" / "verify" / "valid" / "to_client"
BASIC_S0 = V / "execution" / "shard" / "valid" / "basic_s0"


def _vector_key(network_id: str, node_id: str) -> SigningKey:
    """wire_spec/vectors/README.md: every secret is SHA-256("heraclius vector key " + name)."""
    return SigningKey(hashlib.sha256(f"heraclius vector key {network_id}/{node_id}/ed25519".encode()).digest())


def _resign(m: Manifest, header: pb.DecisionHeader, qc: pb.QuorumCert) -> None:
    """Re-sign the header with the same members that signed the QC, so the QC stays valid."""
    for s in qc.signatures:
        key = _vector_key(m.network_id, s.node_id)
        assert key.public == m.nodes[s.node_id].ed25519_public
        s.signature = key.sign(decision_signing_bytes(m.network_id, header))


def _reason(fn, *args) -> str | None:
    try:
        fn(*args)
    except RemoteViolation as exc:
        return exc.reason
    return None


# -- DF-1: compact_verify ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def to_client():
    m = Manifest(json.loads((TO_CLIENT / "manifest.json").read_text()))
    cd = decode(pb.CompactDecision, (TO_CLIENT / "compact.bin").read_bytes())
    ctx = json.loads((TO_CLIENT / "context.json").read_text())
    return m, cd, ctx


def _verify(m, cd, ctx) -> str | None:
    return _reason(check_compact, m, cd, ctx["source"], ctx["destination"], ctx["next_seq"])


def test_base_compact_accepted(to_client):
    assert _verify(*to_client) is None


@pytest.mark.parametrize(("field", "length"), [("inputs_hash", 33), ("inputs_hash", 0), ("inputs_hash", 31),
                                               ("parent_hash", 31), ("parent_hash", 33), ("parent_hash", 0)])
def test_header_hash_field_length_is_malformed(to_client, field, length):
    m, base, ctx = to_client
    cd = copy.deepcopy(base)
    setattr(cd.header, field, bytes(length))
    assert _verify(m, cd, ctx) == "bad_qc"  # the old signatures no longer cover the header
    _resign(m, cd.header, cd.qc)
    assert _verify(m, cd, ctx) == "malformed"  # only the length is wrong now
    setattr(cd.header, field, bytes(32))  # the same header with a 32-byte field is accepted
    _resign(m, cd.header, cd.qc)
    assert _verify(m, cd, ctx) is None


def test_malformed_header_precedes_seq_but_not_earlier_points(to_client):
    m, base, ctx = to_client
    cd = copy.deepcopy(base)
    cd.header.inputs_hash = bytes(33)
    _resign(m, cd.header, cd.qc)
    assert _reason(check_compact, m, cd, ctx["source"], ctx["destination"], ctx["next_seq"] + 1) == "malformed"
    assert _reason(check_compact, m, cd, ctx["source"], "client:" + "00" * 32, ctx["next_seq"]) == "wrong_destination"
    # an outputs_root not 32 bytes can never match the leaf's audit path: point 3 answers first
    cd.header.outputs_root = cd.header.outputs_root + b"\x00"
    _resign(m, cd.header, cd.qc)
    assert _verify(m, cd, ctx) == "bad_proof"


# -- DF-1: a remote input of a shard batch ------------------------------------------------------------

def _run_basic_s0(mutate=None) -> str | None:
    """Execute basic_s0's batches 1 and 2 (mutate(m, batch) edits batch 2); the rejection reason or None."""
    meta = json.loads((BASIC_S0 / "meta.json").read_text())
    m = Manifest(json.loads((BASIC_S0 / "manifest.json").read_text()))
    state = State(m, meta["cluster"])
    for step in (1, 2):
        batch = decode(pb.Batch, (BASIC_S0 / f"batch_{step:03d}.bin").read_bytes())
        if step == 2 and mutate:
            mutate(m, batch)
        ex = Execution(state, step)
        try:
            check_batch_limits(m, batch)
            ex.run(batch, check=True)
        except RemoteViolation as exc:
            return f"step {step}: {exc.reason}"
        ex.apply()
    return None


def _drop_parent_hash(m: Manifest, batch: pb.Batch) -> None:
    remote = [i.remote for i in batch.inputs if i.WhichOneof("kind") == "remote"]
    assert remote, "basic_s0 batch 2 has a remote input"
    remote[0].header.ClearField("parent_hash")
    _resign(m, remote[0].header, remote[0].qc)


def _resign_only(m: Manifest, batch: pb.Batch) -> None:
    for i in batch.inputs:
        if i.WhichOneof("kind") == "remote":
            _resign(m, i.remote.header, i.remote.qc)


def test_shard_batch_with_short_remote_header_is_rejected():
    assert _run_basic_s0() is None
    assert _run_basic_s0(_resign_only) is None  # re-signing alone changes nothing
    assert _run_basic_s0(_drop_parent_hash) == "step 2: malformed"


# -- DF-2: manifest rule 1 -----------------------------------------------------------------------------

@pytest.fixture
def manifest_doc():
    return json.loads((V / "manifest" / "validate" / "valid" / "bind_and_dns_host" / "manifest.json").read_text())


def _problem(doc) -> int | None:
    p = semantic_problem(doc)
    return None if p is None else p[0]


def test_client_id_may_equal_node_or_cluster_id(manifest_doc):
    assert manifest_doc["clients"], "the base manifest has a client"
    assert _problem(manifest_doc) is None
    node_id = manifest_doc["clusters"][0]["nodes"][1]["id"]
    cluster_id = manifest_doc["clusters"][0]["id"]
    doc = copy.deepcopy(manifest_doc)
    doc["clients"][0]["id"] = node_id
    assert _problem(doc) is None
    Manifest(doc)  # builds
    doc["clients"][0]["id"] = cluster_id
    assert _problem(doc) is None


def test_ids_unique_per_kind(manifest_doc):
    doc = copy.deepcopy(manifest_doc)
    doc["clients"].append({**doc["clients"][0], "ed25519_public": "ab" * 32})
    assert _problem(doc) == 1  # two clients with one id
    doc = copy.deepcopy(manifest_doc)
    c0, c1 = doc["clusters"][0], doc["clusters"][1]
    c1["nodes"][0]["id"] = c0["nodes"][0]["id"]
    assert _problem(doc) == 1  # two nodes with one id
    doc = copy.deepcopy(manifest_doc)
    doc["clusters"][0]["nodes"][0]["id"] = doc["clusters"][1]["id"]
    assert _problem(doc) == 1  # a node id equal to a cluster id
    doc = copy.deepcopy(manifest_doc)
    doc["clusters"][1]["id"] = doc["clusters"][0]["id"]
    assert _problem(doc) == 1  # two clusters with one id
