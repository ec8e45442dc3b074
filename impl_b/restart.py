"""Restart of SPEC 12.9: rebuild the replica from its durable log and resume as if its view had just
been entered, re-sending what the other members may have missed (SPEC 12.8 makes it all durable).

A mixin of consensus.Replica (it uses the replica's state and action helpers)."""

from . import codec
from .actions import Send
from .checks import header_hash, sign_message
from .rsm import InvalidBatch, execute


class RestartMixin:
    """Restart half of the consensus state machine."""

    def restore(self, view: int, view_active: bool, decisions: list, inflight: dict, new_view=None,
                now: int | None = None, asked: int = 0) -> None:
        """Rebuild from the durable log: decisions 1..h (trusted), the view and height+1 votes; then
        resume the timers of that view (SPEC 12.9), the messages to re-send being queued as actions."""
        for d in decisions:
            ex = execute(self.state, self.m, d.batch, d.header.height, self.head_hash)
            ex.apply()
            self._advance(d.header)
            self.note_values(d.batch)
        self.view = view
        self.view_active = view == 0 or view_active
        self.in_vc = not self.view_active
        self.vc_sent = view
        self.last_nv = new_view if new_view is not None and new_view.view == view else None
        if inflight.get("height") == self.height + 1:
            self.votes = dict(inflight.get("votes", {}))
            self.prepared_cert = inflight.get("prepared")
            self.my_commit = inflight.get("commit")
            acc = inflight.get("accepted")
            if acc is not None and acc.view == self.view:
                self.accepted = acc
                try:
                    ex = self._exec(acc.batch, acc.height)
                    self.known[header_hash(acc.header)] = (acc, ex)
                except InvalidBatch:
                    self.accepted = None
        now = self.last_leader_contact if now is None else now
        self.last_leader_contact = self.last_hb_sent = now
        if not self.view_active:
            self._resume_view_change(now, asked)
        else:
            if self.last_nv is not None and self.accepted is None:
                # the first proposal of this view must still match the NewView's selection (12.6.4)
                self.selected = self._selection(self.last_nv)
                if self.selected is not None and self.is_leader():
                    self._maybe_propose(now)
            if self.accepted is not None:
                self._restore_own_votes()
        for n in self.cluster.members:
            if n != self.me:
                for pm in self.resend_messages(n):
                    self._emit(Send(n, pm))

    def _restore_own_votes(self) -> None:
        """Re-create my Prepare (and Commit) for the restored proposal: Ed25519 signatures are
        deterministic, so these are the very messages sent before the restart."""
        p = self.accepted
        d = header_hash(p.header)
        prep = codec.Prepare(cluster_id=self.cid, view=p.view, height=p.height, digest=d, node_id=self.me)
        sign_message(self.signer, self.m.network_id, prep)
        self.prepares.setdefault((p.view, d), {})[self.me] = prep
        if self.my_commit is not None and self.my_commit[0] == d and self.my_commit[2] == p.view:
            c = codec.Commit(cluster_id=self.cid, view=p.view, height=p.height, digest=d, node_id=self.me,
                             decision_signature=self.my_commit[1])
            self.commits.setdefault(d, {})[self.me] = c

    def resend_messages(self, to: str) -> list:
        """Messages a restarted node (or a link that just came up) may have missed: my ViewChange and
        ViewData while in a view change; else, as leader, the NewView of my view and my durable
        proposal, and my Prepare and Commit."""
        if self.in_vc:
            return self._vc_messages(to)
        out = []
        if self.last_nv is not None and self.leader == self.me:  # its broadcast may have missed `to`
            out.append(codec.PeerMessage(new_view=self.last_nv))
        p = self.accepted
        if p is None or p.view != self.view:
            return out
        if p.leader_id == self.me:
            out.append(codec.PeerMessage(proposal=p))
        d = header_hash(p.header)
        for msg in (self.prepares.get((p.view, d), {}).get(self.me), self.commits.get(d, {}).get(self.me)):
            if msg is not None:
                out.append(codec.PeerMessage(**{"prepare" if isinstance(msg, codec.Prepare) else "commit": msg}))
        return out

    def on_link_up(self, node: str, now: int) -> list:
        """An outbound link to `node` is (again) established: re-send what it may have missed."""
        if self.member(node) and node != self.me:
            for pm in self.resend_messages(node):
                self._emit(Send(node, pm))
        return self._take()
