"""Reference of the SPEC 11 replicated state machine: input validity and batch execution."""

from __future__ import annotations

import hashlib

from . import ed25519_ref
from .codec import encode
from .keys import signing_bytes
from .network import H, build_header, client_destination
from .verify import Rejected, verify_compact

W = 65536
BUNDLE_MAX_ITEMS = 256
BUNDLE_MAX_BYTES = 262144
LIMIT_DEFAULTS = {"max_batch_inputs": 1024, "max_batch_bytes": 4194304, "max_message_bytes": 16777216,
                  "max_key_bytes": 1024, "max_value_bytes": 65536, "max_pending_requests": 100000}


class InvalidBatch(Exception):
    """A batch holding an invalid input: the proposal carrying it is invalid as a whole."""

    def __init__(self, index: int, reason: str, detail: str):
        super().__init__(f"input {index}: {reason}: {detail}")
        self.index = index
        self.reason = reason
        self.detail = detail


def shard_of(manifest: dict, key: bytes) -> str:
    shards = manifest["shard_map"]["shards"]
    return shards[int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % len(shards)]


class ClusterState:
    """The replicated state of one cluster; `execute` applies one batch and returns the decision."""

    def __init__(self, manifest: dict, cluster: str):
        self.manifest = manifest
        self.cluster = cluster
        self.role = {c["id"]: c["role"] for c in manifest["clusters"]}[cluster]
        self.roles = {c["id"]: c["role"] for c in manifest["clusters"]}
        self.limits = dict(LIMIT_DEFAULTS, **manifest.get("limits", {}))
        self.clients = {bytes.fromhex(c["ed25519_public"]) for c in manifest["clients"]}
        self.height = 0
        self.head_hash = bytes(32)
        self.next_in: dict[str, int] = {}
        self.next_out: dict[str, int] = {}
        self.dedup: dict[bytes, tuple[int, set[int]]] = {}
        self.pending: set[tuple[bytes, int]] = set()
        self.kv: dict[bytes, bytes] = {}

    # ------------------------------------------------------------ validity

    def _check_signed(self, m: dict, message: str, domain: str) -> None:
        """Role, cluster, authorised key and client signature of a ClientRequest or RequestBundle."""
        if self.role != "coordinator":
            raise Rejected("malformed", f"{message} in a shard batch")
        if m.get("cluster_id", "") != self.cluster:
            raise Rejected("wrong_cluster", f"{message} for cluster {m.get('cluster_id')!r}")
        key = m.get("client_key", b"")
        if key not in self.clients:
            raise Rejected("unauthorised_client", "client key not in manifest.clients")
        body = encode(message, {k: v for k, v in m.items() if k != "signature"})
        data = signing_bytes(domain, self.manifest["network_id"], body)
        if not ed25519_ref.verify(key, data, m.get("signature", b""))[0]:
            raise Rejected("bad_signature", f"{message} signature does not verify")

    def _check_client(self, r: dict) -> None:
        self._check_signed(r, "ClientRequest", "client-request")
        if r.get("request_id", 0) < 1:
            raise Rejected("malformed", "request_id 0")
        self._check_op(r.get("op", {}))

    def _check_bundle(self, b: dict) -> None:
        self._check_signed(b, "RequestBundle", "client-bundle")
        items = b.get("items", [])
        if not 1 <= len(items) <= BUNDLE_MAX_ITEMS:
            raise Rejected("malformed" if not items else "oversized",
                           f"{len(items)} bundle items, need 1..{BUNDLE_MAX_ITEMS}")
        if len(encode("RequestBundle", b)) > BUNDLE_MAX_BYTES:
            raise Rejected("oversized", f"bundle encoding above {BUNDLE_MAX_BYTES} bytes")
        last = 0
        for item in items:
            if item.get("request_id", 0) <= last:
                raise Rejected("malformed", "bundle request ids not >= 1 and strictly increasing")
            last = item["request_id"]
            self._check_op(item.get("op", {}))

    def _check_op(self, op: dict) -> None:
        if op.get("kind", 0) not in (1, 2):
            raise Rejected("malformed", "op.kind is neither GET nor PUT")
        if not 1 <= len(op.get("key", b"")) <= self.limits["max_key_bytes"]:
            raise Rejected("malformed", "key length outside 1..max_key_bytes")
        if op["kind"] == 1 and op.get("value", b""):
            raise Rejected("malformed", "GET with a value")
        if len(op.get("value", b"")) > self.limits["max_value_bytes"]:
            raise Rejected("malformed", "value longer than max_value_bytes")

    def validate(self, batch: dict) -> None:
        count = len(batch.get("inputs", []))
        if not 1 <= count <= self.limits["max_batch_inputs"]:
            raise InvalidBatch(-1, "invalid_proposal", f"{count} inputs, need 1..max_batch_inputs")
        if len(encode("Batch", batch)) > self.limits["max_batch_bytes"]:
            raise InvalidBatch(-1, "invalid_proposal", "batch encoding above max_batch_bytes")
        next_in = dict(self.next_in)
        seen: set[tuple[bytes, int]] = set()
        for i, inp in enumerate(batch.get("inputs", [])):
            try:
                if "client" in inp:
                    r = inp["client"]
                    self._check_client(r)
                    ident = (r["client_key"], r["request_id"])
                    if ident in seen:
                        raise Rejected("duplicate", "two inputs with the same (client_key, request_id)")
                    seen.add(ident)
                elif "bundle" in inp:
                    b = inp["bundle"]
                    self._check_bundle(b)
                    for item in b["items"]:
                        ident = (b["client_key"], item["request_id"])
                        if ident in seen:
                            raise Rejected("duplicate", "two requests with the same (client_key, request_id)")
                        seen.add(ident)
                else:
                    cd = inp["remote"]
                    source = cd.get("header", {}).get("cluster_id", "")
                    if self.roles.get(source) in (None, self.role):
                        raise Rejected("wrong_cluster", f"remote input from {source!r}, not of the other role")
                    verify_compact(self.manifest, cd, source, self.cluster, next_in.get(source, 1))
                    next_in[source] = cd["leaf"]["seq"] + 1
            except Rejected as exc:
                raise InvalidBatch(i, exc.reason, exc.detail) from exc

    # ------------------------------------------------------------ execution

    def _client(self, r: dict, out: dict) -> None:
        ck, rid = r["client_key"], r["request_id"]
        max_id, ids = self.dedup.get(ck, (0, set()))
        floor = max_id - W if max_id > W else 0
        if rid <= floor or rid in ids:
            return
        ids = ids | {rid}
        max_id = max(max_id, rid)
        floor = max_id - W if max_id > W else 0
        self.dedup[ck] = (max_id, {i for i in ids if i > floor})
        self.pending.add((ck, rid))
        call = {"client_key": ck, "request_id": rid, "op": r["op"]}
        out.setdefault(shard_of(self.manifest, r["op"]["key"]), []).append(call)

    def _remote(self, cd: dict, height: int, out: dict) -> None:
        source, leaf = cd["header"]["cluster_id"], cd["leaf"]
        self.next_in[source] = leaf["seq"] + 1
        if self.role == "shard":
            for call in leaf.get("calls", []):
                op = call["op"]
                found = op["key"] in self.kv
                result = {"client_key": call["client_key"], "request_id": call["request_id"], "kind": op["kind"],
                          "found": found, "shard_height": height}
                if op["kind"] == 1:
                    if found:
                        result["value"] = self.kv[op["key"]]
                else:
                    self.kv[op["key"]] = op.get("value", b"")
                out.setdefault(source, []).append(result)
        else:
            for res in leaf.get("results", []):
                ident = (res.get("client_key", b""), res.get("request_id", 0))
                if ident not in self.pending:
                    continue
                self.pending.discard(ident)
                resp = {"request_id": ident[1], "kind": res.get("kind", 0), "found": res.get("found", False),
                        "value": res.get("value", b""), "shard_id": source,
                        "shard_height": res.get("shard_height", 0)}
                out.setdefault(client_destination(ident[0]), []).append(resp)

    def execute(self, batch: dict) -> dict:
        """Validate and apply `batch`; returns the Decision (qc absent). Raises InvalidBatch."""
        self.validate(batch)
        height = self.height + 1
        out: dict[str, list] = {}
        for inp in batch.get("inputs", []):
            if "client" in inp:
                self._client(inp["client"], out)
            elif "bundle" in inp:
                b = inp["bundle"]
                for item in b["items"]:
                    self._client({"client_key": b["client_key"], "request_id": item["request_id"],
                                  "op": item["op"]}, out)
            else:
                self._remote(inp["remote"], height, out)
        kind = {"shard": "calls", "coordinator": "results"}
        outputs = []
        for dest in sorted(out, key=lambda d: d.encode("utf-8")):
            seq = self.next_out.get(dest, 1)
            self.next_out[dest] = seq + 1
            entry_kind = "responses" if dest.startswith("client:") else kind[self.roles[dest]]
            outputs.append({"source_cluster": self.cluster, "height": height, "destination": dest, "seq": seq,
                            entry_kind: out[dest]})
        header = build_header(self.cluster, height, self.head_hash, batch, outputs)
        self.height = height
        self.head_hash = H("DecisionHeader", header)
        return {"header": header, "batch": batch, "outputs": outputs}

    def summary(self) -> dict:
        """State after the last step, as documented in formats/execution_*.md."""
        s = {"height": self.height, "head_hash": self.head_hash.hex(), "next_in": dict(sorted(self.next_in.items())),
             "next_out": dict(sorted(self.next_out.items()))}
        if self.role == "shard":
            s["kv"] = {k.hex(): v.hex() for k, v in sorted(self.kv.items())}
        else:
            s["pending"] = [[ck.hex(), rid] for ck, rid in sorted(self.pending)]
            s["dedup"] = {ck.hex(): {"max_id": m, "ids": sorted(ids)} for ck, (m, ids) in sorted(self.dedup.items())}
        return s
