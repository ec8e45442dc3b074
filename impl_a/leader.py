"""Leader side of the normal case (SPEC 12.2): batching, proposing, and the testbed equivocate fault."""

from __future__ import annotations

from collections import deque

from impl_a import heraclius_pb2 as pb
from impl_a.codec import encode
from impl_a.errors import RemoteViolation
from impl_a.rsm import Execution, build_header
from impl_a.verify import GET, header_hash

POOL_SCAN = 2048  # pool entries interleaved by client key when a batch is filled
# Errata AD-1 (leader-side mitigation, needs nothing from followers): every output leaf a batch makes
# for another cluster is kept within LEAF_ROOM of max_batch_bytes, so its compact decision (leaf plus
# header, proof and QC) always fits the destination's batch.
LEAF_MARGIN = 256 * 1024
RESULT_OVERHEAD = 96  # a ShardResult without its value, and its repeated-field framing, at most


def leaf_room(limits: dict) -> int:
    return max(1, limits["max_batch_bytes"] - LEAF_MARGIN)


def call_costs(manifest, key: bytes, items) -> dict[str, int]:
    """Coordinator: worst-case bytes per shard of the calls `items` (operations) make and of the results
    they can come back with. A GET's value is bounded by max_value_bytes only (values may be written
    through any coordinator cluster), so that is what it costs; the call itself is counted too, as the
    calls leaf must fit the shard's batch."""
    vmax = manifest.limits["max_value_bytes"]
    costs: dict[str, int] = {}
    for op in items:
        shard = manifest.shard_of(op.key)
        n = RESULT_OVERHEAD + len(key) + len(op.key) + len(op.value) + (vmax if op.kind == GET else 0)
        costs[shard] = costs.get(shard, 0) + n
    return costs


def result_bytes(ex: Execution, c: pb.CompactDecision) -> int:
    """Shard: the exact bytes of the results the calls of remote input `c` add to its source's leaf,
    reading values as executing it would (earlier PUTs of the same leaf included)."""
    written: dict[bytes, int] = {}
    total = 0
    for call in c.leaf.calls:
        op = call.op
        if op.kind == GET:
            n = written.get(op.key)
            if n is None:
                cur = ex._kv_get(op.key)
                n = len(cur) + 1 if cur is not None else 0  # +1: a Byzantine wrong_result appends a byte
        else:
            written[op.key] = len(op.value)
            n = 0
        total += RESULT_OVERHEAD + len(call.client_key) + n
    return total


class LeaderMixin:
    """Mixed into Replica; uses its fields (pools, accepted, selected, ...)."""

    def wake_in(self) -> int | None:
        """Milliseconds until the leader's batch_wait ends (the driver ticks then), or None."""
        if self.batch_since is None or not self.is_leader() or self.in_vc:
            return None
        if self.view in self.accepted or self.catching_up():
            # A proposal is in flight (or we are behind): the decision, not a timer, proposes next.
            # Arming a 0 ms wake here would spin the event loop until the decision arrives.
            return None
        return max(0, self.batch_since + self.t["batch_wait"] - self.now)

    def _maybe_propose(self) -> None:
        if not self.is_leader() or self.in_vc or self.view in self.accepted or self.catching_up():
            return
        h = self.height + 1
        if self.selected and self.selected[0] == h:
            self._propose(self.selected[2])
            return
        if self.selected and self.selected[0] > h:
            return
        n_avail = len(self.req_pool) + sum(len(v) for v in self.remote_pool.values())
        if n_avail == 0:
            return
        if (n_avail < self.lim["max_batch_inputs"] and self.batch_since is not None
                and self.now - self.batch_since < self.t["batch_wait"]):
            return
        ex = self._execution(h)
        batch = pb.Batch()
        size, max_n, max_b = 0, self.lim["max_batch_inputs"], self.lim["max_batch_bytes"] - 64
        room = leaf_room(self.lim)
        shard = self.cluster_role() == "shard"
        for src in sorted(self.remote_pool, key=str.encode):
            per = self.remote_pool[src]
            seq = ex.next_in_of(src)
            leaf = 0  # shard: bytes of results for src so far (AD-1); its first input always goes in
            while seq in per and len(batch.inputs) < max_n:
                more = result_bytes(ex, per[seq][0]) if shard else 0
                if leaf and leaf + more > room:
                    break
                n = self._admit(ex, batch, pb.Input(remote=per[seq][0]), max_b - size)
                if n is None:
                    del per[seq]
                if not n:
                    break
                size += n
                leaf += more
                seq += 1
        per_shard: dict[str, int] = {}  # coordinator: worst-case leaf bytes per shard (AD-1)
        for key, entry in self._batch_order():
            if len(batch.inputs) >= max_n:
                break
            if key[0] in self.censored:
                continue
            if self.entry_done(key, entry[0]):  # a bundle: every item accepted or below the floor
                self.pool_drop(key)
                continue
            bundle = isinstance(key[1], bytes)
            ops = [item.op for item in entry[0].items] if bundle else [entry[0].op]
            costs = call_costs(self.state.manifest, key[0], ops)
            if per_shard and any(per_shard.get(d, 0) + c > room for d, c in costs.items()):
                break  # the rest wait for a later batch (this input goes first there)
            inp = pb.Input(bundle=entry[0]) if bundle else pb.Input(client=entry[0])
            n = self._admit(ex, batch, inp, max_b - size)
            if n is None:
                self.pool_drop(key)
                continue
            if n < 0:
                continue  # shares a request id with an earlier input: waits for a later batch (SPEC 12.2)
            if not n:
                break
            size += n
            for d, c in costs.items():
                per_shard[d] = per_shard.get(d, 0) + c
        if batch.inputs:
            self._propose(batch, ex)
        else:
            self.batch_since = None  # nothing proposable (censored): no batch_wait wake-ups until new input

    def cluster_role(self) -> str:
        return self.state.role

    def _batch_order(self) -> list:
        """Pool entries in the order a batch takes them (SPEC 12.5 SHOULD): the oldest POOL_SCAN
        entries round-robin over client keys (each key's entries in arrival order), then the rest."""
        items = list(self.req_pool.items())
        head, tail = items[:POOL_SCAN], items[POOL_SCAN:]
        per_key: dict[bytes, deque] = {}
        for kv in head:
            per_key.setdefault(kv[0][0], deque()).append(kv)
        if len(per_key) <= 1:
            return items
        order, queues = [], list(per_key.values())
        while queues:
            for q in queues:
                order.append(q.popleft())
            queues = [q for q in queues if q]
        return order + tail

    def _admit(self, ex: Execution, batch: pb.Batch, inp: pb.Input, room: int) -> int | None:
        """Append `inp` to `batch` if it fits in `room` bytes and executes: its size; 0 if it does
        not fit; -1 if it shares a request id with an earlier input of the batch (it waits); None if
        it is invalid (rejected and counted, the caller drops it from its pool)."""
        n = inp.ByteSize() + 6
        if n > room:
            return 0
        try:
            ex.add(inp)
        except RemoteViolation as exc:
            if exc.reason == "duplicate":
                return -1
            self._reject(exc.reason, "pool", exc.detail)
            return None
        batch.inputs.append(inp)
        return n

    def _propose(self, batch: pb.Batch, ex: Execution | None = None) -> None:
        h = self.height + 1
        if ex is None:
            ex = self._execution(h)
            outputs = ex.run(batch, check=False)
        else:
            outputs = ex.finish()
        header = build_header(self.cluster.id, h, self.head_hash, batch, outputs)
        p = pb.Proposal(cluster_id=self.cluster.id, view=self.view, height=h, leader_id=self.me, header=header,
                        batch=batch)
        self._sign("proposal", p)
        digest = header_hash(header)
        self.proposals[digest] = (p, ex, outputs)
        self.accepted[self.view] = digest
        self.last_hb_sent = self.now
        self.batch_since = None
        # Persisting before the proposal goes out lets the previous decision and this vote share one
        # durable write, and the Prepare follow the Proposal without another one.
        self.actions.append(("persist", [], [("accepted", encode(p))]))
        if "equivocate" in self.faults and len(batch.inputs) > 1:
            self._equivocate(p, self.faults["equivocate"])
        else:
            self._send_all(pb.PeerMessage(proposal=p))
        self._vote(p, digest, persisted=True)

    def _equivocate(self, p: pb.Proposal, targets: set[str]) -> None:
        """Testbed fault: targets get a valid proposal whose batch lacks the last input."""
        alt_batch = pb.Batch(inputs=p.batch.inputs[:-1])
        ex = self._execution(p.height)
        outs = ex.run(alt_batch, check=False)
        alt = pb.Proposal(cluster_id=p.cluster_id, view=p.view, height=p.height, leader_id=self.me,
                          header=build_header(self.cluster.id, p.height, self.head_hash, alt_batch, outs),
                          batch=alt_batch)
        self._sign("proposal", alt)
        for nid in self.members:
            if nid != self.me:
                chosen = alt if (not targets or nid in targets) else p
                self.actions.append(("send", nid, pb.PeerMessage(proposal=chosen)))
