"""execution vectors, replayed by a second SPEC 11 executor written here on Google protobuf and PyNaCl."""

from __future__ import annotations

import hashlib
import json
import struct

import pytest
from nacl.signing import VerifyKey

from tests.wire_spec.conftest import VECTORS, message_class
from tests.wire_spec.test_certs_vectors import _compact_reason
from tests.wire_spec.test_merkle_vectors import _mth

W = 65536
CASES = sorted(VECTORS.glob("execution/*/*/*"))


class Rejected(Exception):
    pass


class Executor:
    def __init__(self, pool, manifest: dict, cluster: str):
        self.pool, self.m, self.cluster = pool, manifest, cluster
        self.roles = {c["id"]: c["role"] for c in manifest["clusters"]}
        self.role = self.roles[cluster]
        limits = manifest.get("limits", {})
        self.max_inputs = limits.get("max_batch_inputs", 1024)
        self.max_bytes = limits.get("max_batch_bytes", 4194304)
        self.max_key, self.max_value = limits.get("max_key_bytes", 1024), limits.get("max_value_bytes", 65536)
        self.clients = {bytes.fromhex(c["ed25519_public"]) for c in manifest["clients"]}
        self.height, self.head = 0, bytes(32)
        self.next_in, self.next_out, self.dedup, self.pending, self.kv = {}, {}, {}, set(), {}

    def cls(self, name):
        return message_class(self.pool, name)

    def _check_signed(self, m, message: str, domain: str) -> None:
        """Role, cluster, authorised key and client signature of a ClientRequest or RequestBundle."""
        if self.role != "coordinator" or m.cluster_id != self.cluster or m.client_key not in self.clients:
            raise Rejected("client")
        unsigned = self.cls(message)()
        unsigned.CopyFrom(m)
        unsigned.ClearField("signature")
        net = self.m["network_id"].encode()
        data = (b"heraclius/v1/" + domain.encode() + b"\x00" + struct.pack(">H", len(net)) + net
                + unsigned.SerializeToString(deterministic=True))
        try:
            VerifyKey(m.client_key).verify(data, m.signature)
        except Exception as exc:  # noqa: BLE001
            raise Rejected("signature") from exc

    def _check_op(self, op) -> None:
        if (op.kind not in (1, 2) or not 1 <= len(op.key) <= self.max_key or (op.kind == 1 and op.value)
                or len(op.value) > self.max_value):
            raise Rejected("fields")

    def _check_request(self, r) -> None:
        self._check_signed(r, "ClientRequest", "client-request")
        if r.request_id < 1:
            raise Rejected("fields")
        self._check_op(r.op)

    def _check_bundle(self, b) -> None:
        self._check_signed(b, "RequestBundle", "client-bundle")
        if not 1 <= len(b.items) <= 256 or b.ByteSize() > 262144:
            raise Rejected("bundle size")
        ids = [i.request_id for i in b.items]
        if ids[0] < 1 or any(x >= y for x, y in zip(ids, ids[1:], strict=False)):
            raise Rejected("bundle ids")
        for item in b.items:
            self._check_op(item.op)

    def _requests(self, inp):
        """The (client_key, request_id, op) a client or bundle input carries."""
        if inp.WhichOneof("kind") == "client":
            return [(inp.client.client_key, inp.client.request_id, inp.client.op)]
        return [(inp.bundle.client_key, item.request_id, item.op) for item in inp.bundle.items]

    def step(self, batch_bytes: bytes) -> bytes:
        batch = self.cls("Batch").FromString(batch_bytes)
        if not 1 <= len(batch.inputs) <= self.max_inputs or len(batch_bytes) > self.max_bytes:
            raise Rejected("batch limits")
        next_in, seen = dict(self.next_in), set()
        for inp in batch.inputs:
            if inp.WhichOneof("kind") in ("client", "bundle"):
                if inp.WhichOneof("kind") == "client":
                    self._check_request(inp.client)
                else:
                    self._check_bundle(inp.bundle)
                for client_key, request_id, _ in self._requests(inp):
                    if (client_key, request_id) in seen:
                        raise Rejected("duplicate")
                    seen.add((client_key, request_id))
            else:
                src = inp.remote.header.cluster_id
                if self.roles.get(src) in (None, self.role):
                    raise Rejected("source role")
                ctx = {"source": src, "destination": self.cluster, "next_seq": next_in.get(src, 1)}
                if _compact_reason(self.m, inp.remote, ctx):
                    raise Rejected("remote")
                next_in[src] = inp.remote.leaf.seq + 1
        height = self.height + 1
        out: dict[str, list] = {}
        shards = self.m["shard_map"]["shards"]
        for inp in batch.inputs:
            if inp.WhichOneof("kind") in ("client", "bundle"):
                for client_key, request_id, op in self._requests(inp):
                    max_id, ids = self.dedup.get(client_key, (0, set()))
                    if request_id <= max(max_id - W, 0) or request_id in ids:
                        continue
                    max_id = max(max_id, request_id)
                    self.dedup[client_key] = (max_id, {i for i in ids | {request_id} if i > max(max_id - W, 0)})
                    self.pending.add((client_key, request_id))
                    shard = shards[int.from_bytes(hashlib.sha256(op.key).digest()[:8], "big") % len(shards)]
                    out.setdefault(shard, []).append(self.cls("ShardCall")(client_key=client_key,
                                                                            request_id=request_id, op=op))
                continue
            cd = inp.remote
            src = cd.header.cluster_id
            self.next_in[src] = cd.leaf.seq + 1
            for call in cd.leaf.calls:
                found = call.op.key in self.kv
                res = self.cls("ShardResult")(client_key=call.client_key, request_id=call.request_id,
                                              kind=call.op.kind, found=found, shard_height=height)
                if call.op.kind == 1 and found:
                    res.value = self.kv[call.op.key]
                if call.op.kind == 2:
                    self.kv[call.op.key] = call.op.value
                out.setdefault(src, []).append(res)
            for res in cd.leaf.results:
                if (res.client_key, res.request_id) not in self.pending:
                    continue
                self.pending.discard((res.client_key, res.request_id))
                out.setdefault("client:" + res.client_key.hex(), []).append(self.cls("ClientResponse")(
                    request_id=res.request_id, kind=res.kind, found=res.found, value=res.value, shard_id=src,
                    shard_height=res.shard_height))
        decision = self.cls("Decision")()
        for dest in sorted(out, key=str.encode):
            seq = self.next_out.get(dest, 1)
            self.next_out[dest] = seq + 1
            leaf = decision.outputs.add(source_cluster=self.cluster, height=height, destination=dest, seq=seq)
            field = "responses" if dest.startswith("client:") else {"shard": "calls", "coordinator": "results"}[
                self.roles[dest]]
            getattr(leaf, field).extend(out[dest])
        decision.batch.CopyFrom(batch)
        h = decision.header
        h.cluster_id, h.height, h.parent_hash = self.cluster, height, self.head
        h.inputs_hash = hashlib.sha256(batch_bytes).digest()
        h.outputs_root = _mth([o.SerializeToString(deterministic=True) for o in decision.outputs])
        self.height, self.head = height, hashlib.sha256(h.SerializeToString(deterministic=True)).digest()
        return decision.SerializeToString(deterministic=True)


@pytest.mark.parametrize("case", CASES, ids=lambda p: "/".join(p.parts[-3:]))
def test_execution_case(case, pool):
    meta = json.loads((case / "meta.json").read_text())
    ex = Executor(pool, json.loads((case / "manifest.json").read_text()), meta["cluster"])
    assert ex.role == meta["role"] == case.parts[-3]
    last_valid = meta["steps"] if meta["invalid_step"] is None else meta["invalid_step"] - 1
    for i in range(1, last_valid + 1):
        assert ex.step((case / f"batch_{i:03d}.bin").read_bytes()) == (case / f"decision_{i:03d}.bin").read_bytes(), i
    if meta["invalid_step"] is not None:
        assert case.parent.name == "invalid"
        assert not (case / f"decision_{meta['invalid_step']:03d}.bin").exists()
        with pytest.raises(Rejected):
            ex.step((case / f"batch_{meta['invalid_step']:03d}.bin").read_bytes())
    else:
        state = json.loads((case / "final_state.json").read_text())
        assert state["height"] == ex.height and state["head_hash"] == ex.head.hex()
        assert state["next_in"] == ex.next_in and state["next_out"] == ex.next_out
        if ex.role == "shard":
            assert state["kv"] == {k.hex(): v.hex() for k, v in sorted(ex.kv.items())}


def test_scenarios_cover_the_brief():
    names = {p.name for p in CASES}
    assert {"basic_c0", "basic_c1", "basic_s0", "basic_s1", "dedup_window_c0", "unknown_results_c0"} <= names
    assert {"bad_client_signature", "unauthorised_client", "wrong_cluster", "remote_seq_gap",
            "duplicate_request_id"} <= names
