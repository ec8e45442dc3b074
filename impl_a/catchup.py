"""Catch-up (SPEC 12.7) for the consensus Replica: SyncRequest service and verified log transfer."""

from __future__ import annotations

from impl_a import heraclius_pb2 as pb
from impl_a.codec import encode
from impl_a.errors import RemoteViolation
from impl_a.rsm import Execution, build_header, check_batch_limits
from impl_a.verify import check_qc, header_hash

SYNC_BATCH = 64


class CatchUpMixin:
    """Mixed into Replica; uses its fields (height, head_hash, store, state, ...)."""

    def _init_catchup(self) -> None:
        self.sync_claims: dict[str, int] = {}  # peer -> decided height it claimed (one claim per peer)
        self.sync_next = 0
        self.sync_rotation = 0
        self.refuted: dict[str, int] = {}  # peer -> claimed height it could not back with decisions
        self.soft_claims: set[str] = set()

    @property
    def sync_want(self) -> int:
        return max(self.sync_claims.values(), default=0)

    def catching_up(self) -> bool:
        """True when f+1 members (so at least one correct member) claim heights above ours."""
        above = sum(1 for h in self.sync_claims.values() if h > self.height)
        return above >= self.cluster.f + 1

    def _want_height(self, peer: str, h: int, soft: bool = False) -> None:
        """peer claims decided height h. soft: inferred from its Commit, so it may not have decided
        yet; an empty SyncResponse then means "retry later", not a refuted claim."""
        if h <= self.height or peer not in self.members or peer == self.me:
            return
        if soft:
            self.soft_claims.add(peer)
        elif h > self.sync_claims.get(peer, 0):
            self.soft_claims.discard(peer)
        self.sync_claims[peer] = max(h, self.sync_claims.get(peer, 0))
        self._sync_tick()

    def _sync_tick(self) -> None:
        for peer in [p for p, h in self.sync_claims.items() if h <= self.height]:
            del self.sync_claims[peer]
            self.soft_claims.discard(peer)
        for peer in [p for p, h in self.refuted.items() if h <= self.height]:
            del self.refuted[peer]
        if not self.sync_claims or self.now < self.sync_next:
            return
        order = sorted(self.sync_claims, key=lambda p: (-self.sync_claims[p], p))
        peer = order[self.sync_rotation % len(order)]
        self.sync_rotation += 1
        self.sync_next = self.now + self.t["sync_retry"]
        self.actions.append(("send", peer, pb.PeerMessage(sync_request=pb.SyncRequest(
            cluster_id=self.cluster.id, from_height=self.height + 1, max_count=SYNC_BATCH))))

    def _on_sync_request(self, sender: str, req: pb.SyncRequest) -> None:
        count = min(req.max_count or SYNC_BATCH, 256)
        if req.from_height < 1:
            self._reject("malformed", sender, "sync from height 0")
            return
        resp = pb.SyncResponse(cluster_id=self.cluster.id)
        size = 64
        for data in self.store.decisions(req.from_height, count):
            if size + len(data) + 8 > self.lim["max_message_bytes"]:
                break
            size += len(data) + 8
            d = resp.decisions.add()
            d.ParseFromString(data)
        self.actions.append(("reply", sender, pb.PeerMessage(sync_response=resp)))

    def _on_sync_response(self, sender: str, resp: pb.SyncResponse) -> None:
        applied = 0
        for d in resp.decisions:
            h = d.header.height
            if h <= self.height:
                continue
            if h != self.height + 1:
                self._reject("out_of_order", sender, f"sync gave height {h}")
                break
            try:
                ex = self._verify_synced(d)
            except RemoteViolation as exc:
                self._reject(exc.reason, sender, "sync: " + exc.detail)
                self.sync_next = 0
                break
            same_view = sum(1 for c in self.commits.get(header_hash(d.header), {}).values() if c.view == self.view)
            self._commit_decision(d, ex)
            if same_view >= self.cluster.q:
                self._end_lone_suspicion()
            applied += 1
        if applied:
            self.sync_next = 0
            self._sync_tick()
        elif sender not in self.soft_claims:
            claim = self.sync_claims.pop(sender, None)  # it did not back its claim
            if claim is not None:
                self.refuted[sender] = claim
                if self.pending_new_view is not None:
                    self._try_new_view(self.pending_new_view)

    def _verify_synced(self, d: pb.Decision) -> Execution:
        h = d.header
        if h.cluster_id != self.cluster.id:
            raise RemoteViolation("wrong_cluster", "synced decision of another cluster")
        check_qc(self.m, h, d.qc)
        if h.parent_hash != self.head_hash:
            raise RemoteViolation("invalid_proposal", "parent hash does not chain")
        check_batch_limits(self.m, d.batch)
        ex = Execution(self.state, h.height, self.verified, self.qc_cache)
        outputs = ex.run(d.batch, check=True)
        header = build_header(self.cluster.id, h.height, self.head_hash, d.batch, outputs)
        if encode(header) != encode(h) or [encode(o) for o in outputs] != [encode(o) for o in d.outputs]:
            raise RemoteViolation("invalid_proposal", "re-execution differs")
        return ex

    def _after_decide(self) -> None:
        if self.pending_new_view is not None:
            self._try_new_view(self.pending_new_view)


