"""Decision queues (SPEC 10): serving QueuePull from the local log, and pulling remote queues with
member rotation, verification and strict seq ordering."""

from __future__ import annotations

from collections import OrderedDict

from impl_a import heraclius_pb2 as pb
from impl_a.codec import encode
from impl_a.errors import RemoteViolation
from impl_a.rsm import compact_decisions
from impl_a.verify import check_compact

SERVER_CAP = 256
EMPTY_GAP_MS = 20


class QueueServer:
    """Builds QueueBatch replies from a Replica's decided log (compact decisions cached per height)."""

    def __init__(self, replica, cache_size: int = 512):
        self.r = replica
        self._cache: OrderedDict[int, dict[str, pb.CompactDecision]] = OrderedDict()
        self._replies: OrderedDict[tuple[int, str], bytes] = OrderedDict()
        self.cache_size = cache_size

    def remember(self, decision: pb.Decision) -> None:
        """Cache the compact decisions of a decision just decided here, so serving them needs no read
        and parse of the log. compact() flushes the store before serving any of them (SPEC 12.8)."""
        self._cache[decision.header.height] = compact_decisions(decision)
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def compact(self, height: int, destination: str) -> pb.CompactDecision | None:
        flush = getattr(self.r.store, "flush", None)
        if flush is not None:
            flush()  # a remembered decision may still be staged: durable before it is served
        per = self._cache.get(height)
        if per is None:
            data = self.r.store.decision(height)
            if data is None:
                return None
            d = pb.Decision()
            d.ParseFromString(data)
            per = compact_decisions(d)
            self._cache[height] = per
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(height)
        return per.get(destination)

    def client_reply(self, height: int, destination: str) -> bytes | None:
        """Encoded ClientReply{answer} for a client's leaf at height: every request of that client in
        the decision gets these same bytes, so they are built once."""
        key = (height, destination)
        data = self._replies.get(key)
        if data is None:
            cd = self.compact(height, destination)
            if cd is None:
                return None
            data = encode(pb.ClientReply(answer=cd))
            self._replies[key] = data
            if len(self._replies) > 256:
                self._replies.popitem(last=False)
        else:
            self.compact(height, destination)  # flushes the store (the answer must be durable)
        return data

    def _first_seq(self, pull: pb.QueuePull) -> int:
        """from_seq, or from_seq + 1 under the testbed skip_queue_seq fault (SPEC 16: a gapped reply)."""
        return pull.from_seq + 1 if self.r.faults.get("skip_queue_seq") else pull.from_seq

    def available(self, pull: pb.QueuePull) -> bool:
        return (pull.destination, self._first_seq(pull)) in self.r.queue_index

    def serve(self, pull: pb.QueuePull) -> pb.QueueBatch:
        out = pb.QueueBatch(source_cluster=self.r.cluster.id, destination=pull.destination)
        if pull.source_cluster != self.r.cluster.id or pull.from_seq < 1:
            return out
        limit = min(pull.max_count or SERVER_CAP, SERVER_CAP)
        budget = self.r.lim["max_message_bytes"] - 1024
        seq = self._first_seq(pull)
        while len(out.decisions) < limit:
            h = self.r.queue_index.get((pull.destination, seq))
            cd = self.compact(h, pull.destination) if h is not None else None
            if cd is None:
                break
            budget -= cd.ByteSize() + 8
            if budget < 0:
                break
            out.decisions.append(cd)
            seq += 1
        return out


class Puller:
    """Pulls, for every cluster of the other role, its queue for our cluster; feeds Replica.on_remote."""

    def __init__(self, replica):
        self.r = replica
        m = replica.m
        self.sources = [c.id for c in m.clusters.values() if c.role != replica.cluster.role]
        self.member_idx = {s: replica.node.index % m.clusters[s].n for s in self.sources}
        self.inflight: dict[str, tuple[str, int, int]] = {}
        self.not_before: dict[str, int] = {}
        self.timeout = replica.t["queue_long_poll"] + replica.t["request_forward"]

    def _peer(self, src: str) -> str:
        return self.r.m.clusters[src].nodes[self.member_idx[src]].id

    def _rotate(self, src: str) -> None:
        self.member_idx[src] = (self.member_idx[src] + 1) % self.r.m.clusters[src].n
        self.inflight.pop(src, None)

    def expected(self, src: str) -> int:
        nxt = self.r.state.next_in_of(src)
        pooled = self.r.remote_pool.get(src, {})
        while nxt in pooled:
            nxt += 1
        return nxt

    def tick(self, now: int) -> None:
        for src in self.sources:
            fl = self.inflight.get(src)
            if fl is not None:
                if now < fl[1]:
                    continue
                self._rotate(src)
            if now < self.not_before.get(src, 0) or len(self.r.remote_pool.get(src, {})) > 1024:
                continue
            peer = self._peer(src)
            start = self.expected(src)
            self.inflight[src] = (peer, now + self.timeout, start)
            self.r.actions.append(("send", peer, pb.PeerMessage(queue_pull=pb.QueuePull(
                source_cluster=src, destination=self.r.cluster.id, from_seq=start, max_count=SERVER_CAP))))

    def on_batch(self, sender: str, qb: pb.QueueBatch, now: int) -> None:
        src = qb.source_cluster
        fl = self.inflight.get(src)
        if fl is None or fl[0] != sender or qb.destination != self.r.cluster.id:
            self.r._reject("stale", sender, "unexpected queue batch")
            return
        seq = fl[2]
        good = []
        cd = None
        try:
            for cd in qb.decisions:
                check_compact(self.r.m, cd, src, self.r.cluster.id, seq, self.r.qc_cache)
                good.append(cd)
                seq += 1
        except RemoteViolation as exc:
            self.r._reject(exc.reason, sender, "queue batch: " + exc.detail)
            if exc.reason in ("bad_qc", "bad_proof", "wrong_destination", "malformed") and cd is not None:
                kind = "bad_qc" if exc.reason == "bad_qc" else "tampered_compact"
                self.r._evidence(sender, kind, f"queue of {src} seq {cd.leaf.seq}: {exc.detail}", [encode(cd)])
            good = []
        for cd in good:
            self.r.on_remote(cd)
        if not good:
            self._rotate(src)
            self.not_before[src] = now + EMPTY_GAP_MS
        else:
            self.inflight.pop(src, None)
