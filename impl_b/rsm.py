"""The replicated state machine of SPEC 11: state, batch validation and deterministic execution.

Execution runs on an overlay of the state, so a proposal can be checked without changing anything;
`Execution.apply()` commits the overlay once the decision is made.
"""

import heapq

from . import codec, merkle
from .checks import Checker, client_destination
from .codec import encode
from .crypto import sha256
from .schema import OP_GET

WINDOW = 65536


class InvalidBatch(Exception):
    """A batch input is invalid (remote violation when it comes from a proposal)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def _floor(max_id: int) -> int:
    return max_id - WINDOW if max_id > WINDOW else 0


class ClientIds:
    """dedup[client_key] of SPEC 11: the highest accepted id and the accepted ids above the floor.

    A min-heap beside the set makes dropping ids below the floor proportional to what is dropped."""

    __slots__ = ("max_id", "ids", "_heap")

    def __init__(self):
        self.max_id = 0
        self.ids: set[int] = set()
        self._heap: list[int] = []

    def seen(self, rid: int) -> bool:
        return rid <= _floor(self.max_id) or rid in self.ids

    def absorb(self, added: set, max_id: int) -> None:
        for rid in added:
            self.ids.add(rid)
            heapq.heappush(self._heap, rid)
        self.max_id = max(self.max_id, max_id)
        fl = _floor(self.max_id)
        while self._heap and self._heap[0] <= fl:
            self.ids.discard(heapq.heappop(self._heap))


class State:
    """SPEC 11 state of one cluster."""

    def __init__(self, cluster_id: str, role: str):
        self.cluster_id = cluster_id
        self.role = role
        self.next_in: dict[str, int] = {}
        self.next_out: dict[str, int] = {}
        self.dedup: dict[bytes, ClientIds] = {}
        self.pending: set[tuple[bytes, int]] = set()
        self.kv: dict[bytes, bytes] = {}

    def in_seq(self, source: str) -> int:
        return self.next_in.get(source, 1)


class Execution:
    """Result of executing one batch on an overlay of a State."""

    def __init__(self, state: State):
        self.st = state
        self.next_in: dict[str, int] = {}
        self.next_out: dict[str, int] = {}
        self.dedup: dict[bytes, list] = {}  # client_key -> [max_id, ids accepted in this batch]
        self.pending_add: set = set()
        self.pending_del: set = set()
        self.kv: dict[bytes, bytes] = {}
        self.outputs: list = []
        self.header = None

    def in_seq(self, s: str) -> int:
        return self.next_in.get(s, self.st.in_seq(s))

    def _has(self, key: bytes) -> bool:
        return key in self.kv or key in self.st.kv

    def _get(self, key: bytes):
        if key in self.kv:
            return self.kv[key]
        return self.st.kv.get(key)

    def _pending(self, k) -> bool:
        return k in self.pending_add or (k in self.st.pending and k not in self.pending_del)

    def apply(self) -> None:
        st = self.st
        st.next_in.update(self.next_in)
        st.next_out.update(self.next_out)
        for ck, (mx, added) in self.dedup.items():
            st.dedup.setdefault(ck, ClientIds()).absorb(added, mx)
        st.pending -= self.pending_del
        st.pending |= self.pending_add
        st.kv.update(self.kv)


def execute(state: State, manifest, batch, height: int, parent_hash: bytes,
            checker: Checker | None = None, corrupt_gets: bool = False) -> Execution:
    """Execute `batch` at `height`; with a checker, validate every input first (SPEC 11).

    Raises InvalidBatch when an input is invalid."""
    ex = Execution(state)
    if checker is not None:
        lim = manifest.limits
        if not batch.inputs:
            raise InvalidBatch("invalid_proposal", "empty batch")
        if len(batch.inputs) > lim["max_batch_inputs"] or len(encode(batch)) > lim["max_batch_bytes"]:
            raise InvalidBatch("oversized", "batch over limits")
    out: dict[str, list] = {}
    seen_ids: set = set()
    role = state.role
    for inp in batch.inputs:
        if inp.client is not None:
            r = inp.client
            if role != "coordinator":
                raise InvalidBatch("invalid_proposal", "client input in a shard batch")
            if checker is not None:
                reason = checker.request_reason(r, state.cluster_id)
                if reason:
                    raise InvalidBatch(reason, "client input")
            k = (r.client_key, r.request_id)
            if k in seen_ids:
                raise InvalidBatch("duplicate", "two inputs with the same request id")
            seen_ids.add(k)
            _exec_client(ex, manifest, r.client_key, r.request_id, r.op, out)
        elif inp.bundle is not None:
            b = inp.bundle
            if role != "coordinator":
                raise InvalidBatch("invalid_proposal", "bundle input in a shard batch")
            if checker is not None:
                reason = checker.bundle_reason(b, state.cluster_id)
                if reason:
                    raise InvalidBatch(reason, "bundle input")
            ck = b.client_key
            for it in b.items:
                k = (ck, it.request_id)
                if k in seen_ids:
                    raise InvalidBatch("duplicate", "two requests with the same request id")
                seen_ids.add(k)
                _exec_client(ex, manifest, ck, it.request_id, it.op, out)
        else:
            cd = inp.remote
            if cd.header is None or cd.leaf is None:
                raise InvalidBatch("malformed", "remote input without header or leaf")
            src = cd.header.cluster_id
            if checker is not None:
                sc = manifest.clusters.get(src)
                if sc is None or sc.role == role:
                    raise InvalidBatch("wrong_cluster", "remote input from a cluster of the same role")
                reason = checker.compact_reason(cd, src, state.cluster_id, role, ex.in_seq(src))
                if reason:
                    raise InvalidBatch(reason, f"remote input from {src}")
            ex.next_in[src] = cd.leaf.seq + 1
            if role == "shard":
                _exec_calls(ex, cd.leaf.calls, src, height, out, corrupt_gets)
            else:
                _exec_results(ex, cd.leaf.results, src, out)
    leaves = []
    for dest in sorted(out, key=lambda d: d.encode()):
        seq = ex.next_out.get(dest, state.next_out.get(dest, 1))
        ex.next_out[dest] = seq + 1
        leaf = codec.OutputLeaf(source_cluster=state.cluster_id, height=height, destination=dest, seq=seq)
        setattr(leaf, _ENTRY_FIELD[role if not dest.startswith("client:") else "client"], out[dest])
        leaves.append(leaf)
    ex.outputs = leaves
    ex.header = codec.DecisionHeader(
        cluster_id=state.cluster_id, height=height, parent_hash=parent_hash,
        inputs_hash=sha256(encode(batch)), outputs_root=merkle.root([encode(x) for x in leaves]))
    return ex


# Entry kind of a leaf by the role of the cluster that emits it ("client" for client leaves).
_ENTRY_FIELD = {"coordinator": "calls", "shard": "results", "client": "responses"}


def _exec_client(ex: Execution, manifest, ck: bytes, rid: int, op, out) -> None:
    base = ex.st.dedup.get(ck)
    batch = ex.dedup.get(ck)
    max_id = max(base.max_id if base else 0, batch[0] if batch else 0)
    # Ids at or below the floor count as seen whether or not they were pruned yet, so checking the
    # floor first makes pruning at apply time equivalent to pruning after every request.
    if rid <= _floor(max_id) or (base is not None and rid in base.ids) or (batch is not None and rid in batch[1]):
        return
    if batch is None:
        batch = ex.dedup[ck] = [0, set()]
    batch[0] = max(max_id, rid)
    batch[1].add(rid)
    ex.pending_add.add((ck, rid))
    ex.pending_del.discard((ck, rid))
    out.setdefault(manifest.shard_of(op.key), []).append(codec.ShardCall(client_key=ck, request_id=rid, op=op))


def _exec_calls(ex: Execution, calls, src: str, height: int, out, corrupt_gets: bool = False) -> None:
    res = out.setdefault(src, [])
    for c in calls:
        op = c.op if c.op is not None else codec.Operation()
        found = ex._has(op.key)
        if op.kind == OP_GET:
            val = ex._get(op.key) if found else b""
            if corrupt_gets:  # testbed fault: a deliberately wrong result
                val += b"?"
        else:
            ex.kv[op.key] = op.value
            val = b""
        res.append(codec.ShardResult(client_key=c.client_key, request_id=c.request_id, kind=op.kind,
                                     found=found, value=val, shard_height=height))
    if not res:
        del out[src]


def _exec_results(ex: Execution, results, src: str, out) -> None:
    for r in results:
        k = (r.client_key, r.request_id)
        if not ex._pending(k):
            continue
        ex.pending_del.add(k)
        ex.pending_add.discard(k)
        out.setdefault(client_destination(r.client_key), []).append(codec.ClientResponse(
            request_id=r.request_id, kind=r.kind, found=r.found, value=r.value, shard_id=src,
            shard_height=r.shard_height))
