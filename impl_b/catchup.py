"""Catch-up of SPEC 12.7: ask members for decided heights above ours, verify and apply them.

A mixin of consensus.Replica (it uses the replica's state and action helpers)."""

from . import codec
from .actions import Send
from .codec import encode
from .rsm import InvalidBatch


class CatchUpMixin:
    """Catch-up half of the consensus state machine."""

    def _need_sync(self, height: int, peer: str) -> None:
        if height <= self.height:
            return
        self.sync_to = max(self.sync_to, height)
        if peer != self.me and self.member(peer):
            if peer in self.sync_peers:
                self.sync_peers.remove(peer)
            self.sync_peers.insert(0, peer)

    def _sync_tick(self, now: int) -> None:
        if self.sync_to <= self.height:
            self.sync_to = self.height
            self.sync_since = None
            return
        if self.sync_since is None:
            self.sync_since = now
        # One height behind is normal while the last Commits are in flight: give them a moment.
        if now < self.sync_next or (self.sync_to == self.height + 1 and now - self.sync_since < self.t["sync_retry"] // 2):
            return
        peers = self.sync_peers or [n for n in self.cluster.members if n != self.me]
        peer = peers[0]
        self.sync_peers = peers[1:] + [peer]
        self.sync_next = now + self.t["sync_retry"]
        self._emit(Send(peer, codec.PeerMessage(sync_request=codec.SyncRequest(
            cluster_id=self.cid, from_height=self.height + 1, max_count=256))))

    def _on_sync_response(self, sender, resp, now, pm) -> None:
        progressed = False
        for dec in resp.decisions:
            h = dec.header
            if h is None or h.height <= self.height:
                continue
            if h.height != self.height + 1 or h.cluster_id != self.cid or h.parent_hash != self.head_hash:
                self._reject("out_of_order", sender, "sync decision does not chain")
                break
            reason = self.checker.qc_reason(h, dec.qc)
            if reason or dec.batch is None:
                self._reject(reason or "malformed", sender, "sync decision QC")
                break
            try:
                ex = self._exec(dec.batch, h.height, self.checker)
            except InvalidBatch as e:
                self._reject("invalid_proposal", sender, f"sync decision input invalid ({e.reason})")
                break
            if encode(ex.header) != encode(h) or [encode(o) for o in ex.outputs] != [encode(o) for o in dec.outputs]:
                self._reject("invalid_proposal", sender, "sync decision re-execution differs")
                break
            self._apply_decision(codec.Decision(header=h, batch=dec.batch, outputs=ex.outputs, qc=dec.qc), ex, now)
            progressed = True
        if progressed:
            self.sync_next = now  # ask again at once if still behind
            self.sync_misses = 0
            return
        vd = self.vdata.get(sender)
        if vd is not None and not self.view_active and vd.last_height > self.height:
            # SPEC 12.6.3: an unbackable last_height claim; leave that ViewData out.
            del self.vdata[sender]
            self._try_new_view(now)
        if self.sync_to > self.height:
            # The peer had nothing newer (it may not have decided yet: ask again after sync_retry);
            # after every other member said so, the hint was stale.
            self.sync_misses += 1
            if self.sync_misses >= 2 * (self.cluster.n - 1):
                self.sync_misses = 0
                self.sync_to = self.height
                self._after_progress(now)
