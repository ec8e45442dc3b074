"""Decision queues (SPEC 10): serving QueuePull from this node's log, with long polls, and pulling
the queues of every cluster of the other role, rotating source members on empty, invalid or late
replies. A mixin of runtime.Runtime (runs on the consensus thread)."""

from . import codec
from .codec import encode

PULL_COUNT = 64
SERVER_CAP = 256


class QueueMixin:
    """Queue serving and pulling state of a Runtime."""

    def _init_queues(self) -> None:
        self.queue_index: dict[str, dict[int, int]] = {}  # destination -> seq -> height
        self.held: list = []  # long polls: (deadline, link_id, node, QueuePull)
        self.pullers = {s: {"idx": self.cluster.members.index(self.me) % self.m.clusters[s].n,
                            "out": None} for s in self.m.other_role_clusters(self.cid)}

    # ------------------------------------------------------------ serving

    def reply_items(self, produce, first: int, max_count: int) -> list:
        """Consecutive items produce(first), produce(first + 1), ... until one is None, the server
        cap of 256 (or `max_count`) is reached, or the reply would exceed max_message_bytes."""
        room = self.m.limits["max_message_bytes"] - 1024
        items: list = []
        for pos in range(first, first + min(max_count or SERVER_CAP, SERVER_CAP)):
            item = produce(pos)
            if item is None:
                break
            room -= len(encode(item)) + 8
            if items and room < 0:
                break
            items.append(item)
        return items

    def _queue_items(self, pull) -> list:
        idx = self.queue_index.get(pull.destination, {})

        def compact(seq: int):
            if seq not in idx:
                return None
            cd = self.compact(idx[seq], pull.destination)
            return self.faults.tamper(cd) if self.faults is not None else cd

        first = pull.from_seq
        if self.faults is not None and self.faults.active("skip_queue_seq"):
            first += 1  # testbed: a gap that the puller must reject as out_of_order
        return self.reply_items(compact, first, pull.max_count)

    def _serve_pull(self, link_id: int, node: str, pull, now: int) -> None:
        if pull.source_cluster != self.cid:
            self.log.reject("wrong_cluster", node, "queue pull for another source")
            return
        withhold = self.faults is not None and self.faults.active("withhold_queue")
        items = [] if withhold else self._queue_items(pull)
        if items or withhold:
            self._reply_pull(link_id, node, pull, items)
            return
        self.held.append((now + self.m.timeouts["queue_long_poll"], link_id, node, pull))

    def _reply_pull(self, link_id: int, node: str, pull, items: list) -> None:
        qb = codec.QueueBatch(source_cluster=self.cid, destination=pull.destination, decisions=items)
        self.reply(link_id, node, codec.PeerMessage(queue_batch=qb))

    def _serve_held(self, now: int) -> None:
        keep = []
        for dl, link_id, node, pull in self.held:
            items = self._queue_items(pull)
            if items or dl <= now:
                self._reply_pull(link_id, node, pull, items)
            else:
                keep.append((dl, link_id, node, pull))
        self.held = keep

    # ------------------------------------------------------------ pulling

    def _tick_queues(self, now: int) -> None:
        if self.held and min(h[0] for h in self.held) <= now:
            self._serve_held(now)
        timeout = self.m.timeouts["queue_long_poll"] + self.m.timeouts["request_forward"]
        for src, p in self.pullers.items():
            out = p["out"]
            if out is not None and now - out[2] > timeout:
                self._rotate(src)
                out = None
            if out is None:
                self._pull(src, now)

    def _rotate(self, src: str) -> None:
        p = self.pullers[src]
        p["idx"] = (p["idx"] + 1) % self.m.clusters[src].n
        p["out"] = None

    def _pull(self, src: str, now: int) -> None:
        p = self.pullers[src]
        node = self.m.clusters[src].members[p["idx"]]
        if not self.io.connected(node):
            if now - p.get("skip", 0) > 200:
                p["skip"] = now
                self._rotate(src)
            return
        frm = self.replica.next_remote_seq(src)
        p["out"] = (node, frm, now)
        pull = codec.QueuePull(source_cluster=src, destination=self.cid, from_seq=frm, max_count=PULL_COUNT)
        self.io.send_node(node, encode(codec.PeerMessage(queue_pull=pull)))

    def _on_queue_batch(self, node: str, qb, now: int) -> None:
        src = qb.source_cluster
        p = self.pullers.get(src)
        if p is None or p["out"] is None or p["out"][0] != node or qb.destination != self.cid:
            self.log.reject("stale", node, "unexpected queue batch")
            return
        frm = p["out"][1]
        if not qb.decisions:
            self._rotate(src)
            return
        role = self.cluster.role
        good = []
        for i, cd in enumerate(qb.decisions):
            if cd.leaf is None or cd.leaf.seq != frm + i:
                self.log.reject("out_of_order", node, "queue batch not consecutive")
                good = []
                break
            reason = self.checker.compact_reason(cd, src, self.cid, role, frm + i)
            if reason:
                self.log.reject(reason, node, f"compact decision seq {frm + i} from {src}")
                kind = "bad_qc" if reason in ("bad_qc", "wrong_cluster") else "tampered_compact"
                self.log.add_evidence(node, kind, f"{reason} in queue of {src} seq {frm + i}", [encode(cd).hex()])
                good = []
                break
            good.append(cd)
        if not good:
            self._rotate(src)
            return
        p["out"] = None
        for cd in good:
            if cd.leaf.seq >= self.replica.state.in_seq(src):
                self._execute(self.replica.on_remote(cd, now))
        self._pull(src, now)
