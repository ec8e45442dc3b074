"""Replicated state machine of SPEC 11: input validity, deterministic execution, decision building.

Execution is speculative: an Execution overlays its writes on the base State, so a proposal can be
checked without copying the key-value map; apply() folds the overlay in once the height is decided.
"""

from __future__ import annotations

from impl_a import heraclius_pb2 as pb
from impl_a.codec import encode
from impl_a.crypto import sha256
from impl_a.errors import RemoteViolation
from impl_a.manifest import Manifest
from impl_a.merkle import all_proofs
from impl_a.verify import GET, QcCache, check_bundle, check_client_request, check_compact, client_destination

WINDOW = 65536
PRUNE_SLACK = 4096
ZERO32 = bytes(32)


class State:
    """The replicated state of one cluster (coordinator or shard)."""

    def __init__(self, manifest: Manifest, cluster_id: str):
        self.manifest = manifest
        self.cluster_id = cluster_id
        self.role = manifest.role_of(cluster_id)
        self.next_in: dict[str, int] = {}
        self.next_out: dict[str, int] = {}
        self.dedup: dict[bytes, tuple[int, set[int]]] = {}
        self.pending: set[tuple[bytes, int]] = set()
        self.kv: dict[bytes, bytes] = {}

    def next_in_of(self, source: str) -> int:
        return self.next_in.get(source, 1)

    def live_ids(self, client_key: bytes) -> set[int]:
        """The accepted ids above the client's floor (the set may also hold older, pruned-late ids)."""
        max_id, ids = self.dedup.get(client_key, (0, set()))
        floor = max_id - WINDOW if max_id > WINDOW else 0
        return {i for i in ids if i > floor}

    def below_floor(self, client_key: bytes, request_id: int) -> bool:
        max_id, _ = self.dedup.get(client_key, (0, set()))
        return request_id <= (max_id - WINDOW if max_id > WINDOW else 0)

    def request_done(self, client_key: bytes, request_id: int) -> bool:
        """True when the request id was already accepted or is at or below the client's floor."""
        max_id, ids = self.dedup.get(client_key, (0, set()))
        floor = max_id - WINDOW if max_id > WINDOW else 0
        return request_id <= floor or request_id in ids


class Execution:
    """Executes one batch on top of a State without changing it until apply()."""

    def __init__(self, state: State, height: int, verified: set[bytes] | None = None,
                 qc_cache: QcCache | None = None, wrong_result: bool = False):
        self.s = state
        self.wrong_result = wrong_result
        self.height = height
        self.verified = verified if verified is not None else set()
        self.qc_cache = qc_cache
        self.next_in: dict[str, int] = {}
        self.next_out: dict[str, int] = {}
        self.dedup_max: dict[bytes, int] = {}
        self.dedup_added: dict[bytes, set[int]] = {}
        self.pending_add: set[tuple[bytes, int]] = set()
        self.pending_del: set[tuple[bytes, int]] = set()
        self.kv: dict[bytes, bytes] = {}
        self.seen_requests: set[tuple[bytes, int]] = set()
        self.out: dict[str, list] = {}

    # -- validity ---------------------------------------------------------------------------
    def next_in_of(self, source: str) -> int:
        return self.next_in.get(source, self.s.next_in_of(source))

    def check_input(self, inp: pb.Input) -> None:
        which = inp.WhichOneof("kind")
        if which == "client":
            r = inp.client
            if self.s.role != "coordinator":
                raise RemoteViolation("invalid_proposal", "client input at a shard")
            ident = (r.client_key, r.request_id)
            if ident in self.seen_requests:
                raise RemoteViolation("duplicate", "request twice in one batch")
            h = sha256(encode(r))
            if h not in self.verified:
                check_client_request(self.s.manifest, r, self.s.cluster_id)
                self.verified.add(h)
        elif which == "bundle":
            b = inp.bundle
            if self.s.role != "coordinator":
                raise RemoteViolation("invalid_proposal", "bundle input at a shard")
            h = sha256(encode(b))
            if h not in self.verified:
                check_bundle(self.s.manifest, b, self.s.cluster_id)
                self.verified.add(h)
            key, seen = b.client_key, self.seen_requests
            if any((key, item.request_id) in seen for item in b.items):
                raise RemoteViolation("duplicate", "bundle item already requested in this batch")
        elif which == "remote":
            c = inp.remote
            src = c.header.cluster_id
            cl = self.s.manifest.clusters.get(src)
            if cl is None or cl.role == self.s.role:
                raise RemoteViolation("wrong_cluster", f"remote input from {src!r}")
            check_compact(self.s.manifest, c, src, self.s.cluster_id, self.next_in_of(src), self.qc_cache)
        else:
            raise RemoteViolation("malformed", "empty input")

    # -- execution ----------------------------------------------------------------------------
    def _emit(self, dest: str, entry) -> None:
        self.out.setdefault(dest, []).append(entry)

    def _kv_get(self, key: bytes) -> bytes | None:
        if key in self.kv:
            return self.kv[key]
        return self.s.kv.get(key)

    def _client(self, key: bytes, request_id: int, op: pb.Operation) -> None:
        """One client request, or one item of a bundle (SPEC 11: executed exactly alike)."""
        self.seen_requests.add((key, request_id))
        base_max, base_ids = self.s.dedup.get(key, (0, set()))
        max_id = self.dedup_max.get(key, base_max)
        floor = max_id - WINDOW if max_id > WINDOW else 0
        added = self.dedup_added.setdefault(key, set())
        if request_id <= floor or request_id in base_ids or request_id in added:
            return
        added.add(request_id)
        self.dedup_max[key] = max(max_id, request_id)
        self.pending_add.add((key, request_id))
        self._emit(self.s.manifest.shard_of(op.key), pb.ShardCall(client_key=key, request_id=request_id, op=op))

    def _remote(self, c: pb.CompactDecision) -> None:
        src = c.header.cluster_id
        self.next_in[src] = c.leaf.seq + 1
        if self.s.role == "shard":
            for call in c.leaf.calls:
                res = pb.ShardResult(client_key=call.client_key, request_id=call.request_id, kind=call.op.kind,
                                     shard_height=self.height)
                cur = self._kv_get(call.op.key)
                res.found = cur is not None
                if call.op.kind == GET:
                    if self.wrong_result:  # testbed fault (SPEC 16): a Byzantine shard member lies
                        res.found, cur = True, (cur or b"") + b"?"
                    if cur is not None:
                        res.value = cur
                else:
                    self.kv[call.op.key] = call.op.value
                self._emit(src, res)
        else:
            for res in c.leaf.results:
                ident = (res.client_key, res.request_id)
                in_pending = (ident in self.s.pending or ident in self.pending_add) and ident not in self.pending_del
                if not in_pending:
                    continue
                self.pending_del.add(ident)
                self._emit(client_destination(res.client_key), pb.ClientResponse(
                    request_id=res.request_id, kind=res.kind, found=res.found, value=res.value, shard_id=src,
                    shard_height=res.shard_height))

    def add(self, inp: pb.Input, check: bool = True) -> None:
        """Validate (when check) and execute one input; on RemoteViolation nothing was changed."""
        if check:
            self.check_input(inp)
        which = inp.WhichOneof("kind")
        if which == "client":
            r = inp.client
            self._client(r.client_key, r.request_id, r.op)
        elif which == "bundle":
            key = inp.bundle.client_key
            for item in inp.bundle.items:
                self._client(key, item.request_id, item.op)
        else:
            self._remote(inp.remote)

    def finish(self) -> list[pb.OutputLeaf]:
        """Assign queue sequence numbers and return the output leaves sorted by destination."""
        leaves = []
        for dest in sorted(self.out, key=lambda d: d.encode()):
            seq = self.next_out.get(dest, self.s.next_out.get(dest, 1))
            self.next_out[dest] = seq + 1
            leaf = pb.OutputLeaf(source_cluster=self.s.cluster_id, height=self.height, destination=dest, seq=seq)
            if dest.startswith("client:"):
                leaf.responses.extend(self.out[dest])
            elif self.s.role == "coordinator":
                leaf.calls.extend(self.out[dest])
            else:
                leaf.results.extend(self.out[dest])
            leaves.append(leaf)
        return leaves

    def run(self, batch: pb.Batch, check: bool = True) -> list[pb.OutputLeaf]:
        """Validate (when check) and execute every input; returns the sorted output leaves."""
        for inp in batch.inputs:
            self.add(inp, check)
        return self.finish()

    def apply(self) -> None:
        s = self.s
        s.next_in.update(self.next_in)
        s.next_out.update(self.next_out)
        for key, added in self.dedup_added.items():
            if not added:
                continue
            base_max, ids = s.dedup.get(key, (0, set()))
            new_max = self.dedup_max.get(key, base_max)
            ids.update(added)
            # Ids at or below the floor are already refused by the floor test, so pruning them is only
            # for memory: done when the set has grown by PRUNE_SLACK, not on every decision (O(W)).
            if len(ids) > WINDOW + PRUNE_SLACK:
                floor = new_max - WINDOW if new_max > WINDOW else 0
                ids = {i for i in ids if i > floor}
            s.dedup[key] = (new_max, ids)
        s.pending |= self.pending_add
        s.pending -= self.pending_del
        s.kv.update(self.kv)


def check_batch_limits(manifest: Manifest, batch: pb.Batch) -> None:
    """SPEC 12.3: 1..max_batch_inputs inputs and an encoding of at most max_batch_bytes."""
    n = len(batch.inputs)
    if not 1 <= n <= manifest.limits["max_batch_inputs"]:
        raise RemoteViolation("invalid_proposal", f"batch of {n} inputs")
    if batch.ByteSize() > manifest.limits["max_batch_bytes"]:
        raise RemoteViolation("invalid_proposal", "batch encoding too large")


def build_header(cluster_id: str, height: int, parent_hash: bytes, batch: pb.Batch,
                 outputs: list[pb.OutputLeaf]) -> pb.DecisionHeader:
    root, _ = all_proofs([encode(leaf) for leaf in outputs])
    return pb.DecisionHeader(cluster_id=cluster_id, height=height, parent_hash=parent_hash,
                             inputs_hash=sha256(encode(batch)), outputs_root=root)


def compact_decisions(decision: pb.Decision) -> dict[str, pb.CompactDecision]:
    """One compact decision per destination of a decided Decision (with its QC)."""
    leaves = [encode(leaf) for leaf in decision.outputs]
    _, proofs = all_proofs(leaves)
    out = {}
    for i, leaf in enumerate(decision.outputs):
        out[leaf.destination] = pb.CompactDecision(header=decision.header, leaf=leaf, leaf_index=i,
                                                   leaf_count=len(leaves), proof=proofs[i], qc=decision.qc)
    return out
