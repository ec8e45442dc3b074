"""View change of SPEC 12.6 (ViewChange, ViewData, NewView and proposal selection).

A mixin of consensus.Replica: it uses the replica's state and action helpers.
"""

from . import codec
from .actions import Evidence, Persist, Send
from .checks import header_hash, message_sig_ok, sign_message
from .codec import encode


class ViewChangeMixin:
    """View-change half of the consensus state machine."""

    def _init_vc(self, now: int) -> None:
        self.vc_msgs: dict[str, object] = {}
        self.vc_sent = 0
        self.vc_deadline: int | None = None
        self.vc_fail = 0
        self.vc_resend = 0
        self.vdata: dict[str, object] = {}
        self.nv_sent = False
        self.pending_nv = None
        self.last_nv = None
        self.nv_answered: dict[str, int] = {}
        self.selected = None
        self.behind_asked = -10**9
        self.higher_views: dict[int, set] = {}
        self.my_vd = None  # my signed ViewData for the pending view (re-sent until its NewView)
        self.vd_resent = -10**9

    def _suspect(self, now: int, why: str) -> None:
        if self.in_vc and self.vc_sent > self.view:
            return
        self._send_vc(self.view + 1, now)

    def _view_behind(self, now: int, w: int, senders: list[str]) -> None:
        """SPEC 12.6.6: members are in view w > ours; send them ViewChange{w} so that they answer
        with the NewView that installed it (at most once per 500 ms)."""
        if now - self.behind_asked < 500:
            return
        self.behind_asked = now
        vc = codec.ViewChange(cluster_id=self.cid, new_view=w, node_id=self.me, height=self.height)
        sign_message(self.signer, self.m.network_id, vc)
        prev = self.vc_msgs.get(self.me)
        if prev is None or prev.new_view < w:
            self.vc_msgs[self.me] = vc
        for node in senders:
            self._emit_send(node, codec.PeerMessage(view_change=vc))

    def _seen_higher_view(self, sender: str, w: int, now: int) -> None:
        """Prepares or Commits of view w > ours from f + 1 distinct members also reveal a later view."""
        seen = self.higher_views.setdefault(w, set())
        seen.add(sender)
        if len(self.higher_views) > 16:
            self.higher_views.pop(min(self.higher_views))
        if len(seen) > self.cluster.f:
            self._view_behind(now, w, sorted(seen))

    def _answer_late(self, sender: str, now: int) -> None:
        """A member asks about a view at or below our active one: send the NewView that installed it."""
        if self.view_active and self.last_nv is not None and now - self.nv_answered.get(sender, -10**9) >= 500:
            self.nv_answered[sender] = now
            self._emit_send(sender, codec.PeerMessage(new_view=self.last_nv))

    def _send_vc(self, target: int, now: int) -> None:
        if target <= self.vc_sent or target <= self.view:
            return
        self.vc_sent = target
        self.in_vc = True
        vc = codec.ViewChange(cluster_id=self.cid, new_view=target, node_id=self.me, height=self.height)
        sign_message(self.signer, self.m.network_id, vc)
        self.vc_msgs[self.me] = vc
        self.vc_resend = now + self._resend_period()
        self._emit(Persist({"asked": target}))
        self._broadcast(codec.PeerMessage(view_change=vc))
        self._check_vc(now)

    def _resend_period(self) -> int:
        return max(self.t["heartbeat_interval"], self.t["view_change"] // 3)

    def _resume_view_change(self, now: int, asked: int = 0) -> None:
        """SPEC 12.9: restarted in view w > 0 without its NewView, the node is still in that view
        change: ViewChange{w} again (and for the higher view it had asked for, if any), its ViewData
        to the leader of w, and the view_change timer."""
        w = self.view
        self.in_vc = True
        self.view_active = False
        self.accepted = None
        self.vc_sent = max(self.vc_sent, w)
        for target in sorted({w, max(w, asked)}):
            vc = codec.ViewChange(cluster_id=self.cid, new_view=target, node_id=self.me, height=self.height)
            sign_message(self.signer, self.m.network_id, vc)
            self.vc_msgs[self.me] = vc
            self.vc_sent = target
            if target < asked:  # superseded at once: restore() and later re-sends carry the highest only
                self._broadcast(codec.PeerMessage(view_change=vc))
        self.vc_deadline = now + self.t["view_change"] * min(2 ** self.vc_fail, 8)
        self.vdata = {}
        self.nv_sent = False
        self._make_view_data(w)
        if self.leader_of(w) == self.me:
            self.vdata[self.me] = self.my_vd

    def _make_view_data(self, w: int) -> None:
        prepared = self.prepared_cert
        if prepared is not None and prepared.proposal.height != self.height + 1:
            prepared = None
        vd = codec.ViewData(cluster_id=self.cid, view=w, node_id=self.me, last_height=self.height,
                            last_hash=self.head_hash, prepared=prepared)
        sign_message(self.signer, self.m.network_id, vd)
        self.my_vd = vd

    def _resend_view_data(self, leader: str, now: int) -> None:
        """SPEC 12.9: the leader of my pending view asks for it again (it restarted and lost the
        ViewData it had collected): send mine again, at most once per 500 ms."""
        vd = self.my_vd
        if (not self.view_active and vd is not None and vd.view == self.view
                and now - self.vd_resent >= 500):
            self.vd_resent = now
            self._emit_send(leader, codec.PeerMessage(view_data=vd))

    def _vc_messages(self, to: str) -> list:
        """What this node re-sends to `to` while it is in a view change (lost on a down link)."""
        out = []
        mine = self.vc_msgs.get(self.me)
        if self.in_vc and mine is not None and mine.new_view >= self.view and (
                mine.new_view > self.view or not self.view_active):
            out.append(codec.PeerMessage(view_change=mine))
        vd = self.my_vd
        if (not self.view_active and vd is not None and vd.view == self.view
                and self.leader_of(self.view) == to != self.me):
            out.append(codec.PeerMessage(view_data=vd))
        return out

    def _on_view_change(self, sender, vc, now, pm) -> None:
        if vc.node_id != sender:
            self._reject("malformed", sender, "view change relayed for another node")
            return
        if not message_sig_ok(self.m.nodes[sender].ed25519, self.m.network_id, vc):
            self._reject("bad_signature", sender, "view change")
            return
        if vc.height > self.height:
            self._need_sync(vc.height, sender)
        if vc.new_view <= self.view:
            self._answer_late(sender, now)  # the sender is behind (SPEC 12.6.6)
            if vc.new_view == self.view and sender == self.leader_of(self.view):
                self._resend_view_data(sender, now)
            self._reject("stale", sender, "view change for an old view")
            return
        prev = self.vc_msgs.get(sender)
        if prev is None or prev.new_view < vc.new_view:
            self.vc_msgs[sender] = vc
        self._check_vc(now)

    def _emit_send(self, to: str, pm) -> None:
        self._emit(Send(to, pm))

    def _check_vc(self, now: int) -> None:
        views = sorted((v.new_view for v in self.vc_msgs.values() if v.new_view > self.view), reverse=True)
        f, q = self.cluster.f, self.cluster.q
        if len(views) > f and views[f] > self.vc_sent:
            self._send_vc(views[f], now)
            return
        if len(views) >= q and views[q - 1] > self.view:
            self._enter_view(views[q - 1], now)

    def _enter_view(self, w: int, now: int) -> None:
        self.view = w
        self.view_active = False
        self.in_vc = True
        self.accepted = None
        self.vdata = {}
        self.nv_sent = False
        self.selected = None
        self.batch_due = None
        self.view_changes += 1
        self.vc_sent = max(self.vc_sent, w)
        # my own ViewChange stays: it is re-sent until the NewView (others may need it to join)
        self.vc_msgs = {n: v for n, v in self.vc_msgs.items() if v.new_view > w or n == self.me}
        self.vc_deadline = now + self.t["view_change"] * min(2 ** self.vc_fail, 8)
        self.restart_timers(now)
        self._emit(Persist({"view": (w, False)}))
        self._make_view_data(w)
        vd = self.my_vd
        self.vc_resend = now + self._resend_period()
        if self.leader_of(w) == self.me:
            self.vdata[self.me] = vd
            self._try_new_view(now)
        else:
            self._emit_send(self.leader_of(w), codec.PeerMessage(view_data=vd))
        self._replay_future(now)

    def _vc_tick(self, now: int) -> None:
        if not self.in_vc:
            return
        if self.vc_deadline is not None and now >= self.vc_deadline and not self.view_active:
            self.vc_fail += 1
            self.vc_deadline = None
            self._send_vc(self.view + 1, now)
        elif now >= self.vc_resend:
            self.vc_resend = now + self._resend_period()
            for n in self.cluster.members:
                if n != self.me:
                    for pm in self._vc_messages(n):
                        self._emit_send(n, pm)

    def _prepared_ok(self, pc, w: int) -> bool:
        p = pc.proposal
        if p is None or p.header is None or p.batch is None or p.cluster_id != self.cid or p.view >= w:
            return False
        if p.leader_id != self.leader_of(p.view) or p.height != p.header.height:
            return False
        if not message_sig_ok(self.m.nodes[p.leader_id].ed25519, self.m.network_id, p):
            return False
        d = header_hash(p.header)
        seen = set()
        for pr in pc.prepares:
            if (pr.node_id in seen or not self.member(pr.node_id) or pr.cluster_id != self.cid
                    or pr.view != p.view or pr.height != p.height or pr.digest != d):
                return False
            if not message_sig_ok(self.m.nodes[pr.node_id].ed25519, self.m.network_id, pr):
                return False
            seen.add(pr.node_id)
        return len(seen) >= self.cluster.q

    def _view_data_ok(self, vd, w: int) -> bool:
        if vd.cluster_id != self.cid or vd.view != w or not self.member(vd.node_id):
            return False
        if not message_sig_ok(self.m.nodes[vd.node_id].ed25519, self.m.network_id, vd):
            return False
        return vd.prepared is None or self._prepared_ok(vd.prepared, w)

    def _on_view_data(self, sender, vd, now, pm) -> None:
        if vd.node_id != sender:
            self._reject("malformed", sender, "view data relayed for another node")
            return
        if vd.view != self.view or self.leader_of(vd.view) != self.me or self.view_active:
            if vd.view <= self.view:
                self._answer_late(sender, now)
            self._reject("stale", sender, "view data not for my pending view")
            return
        if not self._view_data_ok(vd, self.view):
            self._reject("bad_signature", sender, "invalid view data")
            self._emit(Evidence(sender, "invalid_view_data", f"view data for view {vd.view}", [encode(vd).hex()]))
            return
        self.vdata[sender] = vd
        self._try_new_view(now)

    def _try_new_view(self, now: int) -> None:
        if self.nv_sent or self.view_active or self.me not in self.vdata or len(self.vdata) < self.cluster.q:
            return
        others = sorted((n for n in self.vdata if n != self.me), key=str.encode)[: self.cluster.q - 1]
        chosen = sorted([self.me] + others, key=str.encode)
        vds = [self.vdata[n] for n in chosen]
        m = max(v.last_height for v in vds)
        if self.height < m:
            self._need_sync(m, next(v.node_id for v in vds if v.last_height == m))
            return
        nv = codec.NewView(cluster_id=self.cid, view=self.view, leader_id=self.me, view_data=vds)
        sign_message(self.signer, self.m.network_id, nv)
        self.nv_sent = True
        # Durable first: restarted, this leader must not install the view with another NewView.
        self._emit(Persist({"view": (self.view, True), "new_view": nv}))
        self._broadcast(codec.PeerMessage(new_view=nv))
        self._follow_new_view(nv, now)

    def _on_new_view(self, sender, nv, now, pm) -> None:
        if nv.view < self.view or (nv.view == self.view and self.view_active):
            # SPEC 12.6.5: changes nothing (in particular never ends a suspicion), only counted
            self._reject("stale", sender, f"new view {nv.view} at a member in view {self.view}")
            return
        if nv.leader_id != self.leader_of(nv.view) or sender != nv.leader_id:
            self._reject("not_leader", sender, "new view from a non-leader")
            return
        if not message_sig_ok(self.m.nodes[sender].ed25519, self.m.network_id, nv):
            self._reject("bad_signature", sender, "new view")
            return
        names = [v.node_id.encode() for v in nv.view_data]
        if len(names) < self.cluster.q or names != sorted(set(names)) or not all(
                self._view_data_ok(v, nv.view) for v in nv.view_data):
            self._reject("invalid_proposal", sender, "new view with invalid view data")
            return
        if nv.view > self.view:
            self.view = nv.view
            self.view_changes += 1
            self.accepted = None
            self.vc_msgs = {n: v for n, v in self.vc_msgs.items() if v.new_view > nv.view}
            self._emit(Persist({"view": (nv.view, False)}))
        self._follow_new_view(nv, now)

    def _selection(self, nv):
        """SPEC 12.6.4: the proposal the first one of nv.view must match, while at height m."""
        m = max(v.last_height for v in nv.view_data)
        best = None
        for v in nv.view_data:
            p = v.prepared.proposal if v.prepared is not None else None
            if p is not None and p.height == m + 1 and (best is None or p.view > best.view):
                best = p
        return best if best is not None and self.height == m else None

    def _follow_new_view(self, nv, now: int) -> None:
        m = max(v.last_height for v in nv.view_data)
        if self.height < m:
            self.pending_nv = nv
            self._need_sync(m, nv.leader_id)
            return
        self.selected = self._selection(nv)
        self.pending_nv = None
        self.last_nv = nv
        self.view_active = True
        self.in_vc = False
        self.vc_fail = 0
        self.vc_deadline = None
        self.vc_sent = max(self.vc_sent, self.view)
        self.accepted = None
        self.restart_timers(now)
        self._emit(Persist({"view": (self.view, True), "new_view": nv}))
        if self.is_leader():
            self.last_hb_sent = now
            self._maybe_propose(now)
        else:
            self.forward_buf.extend(ent[0] for ent in self.requests.values())
            self._flush_forward()
        self._replay_future(now)

    def _vc_after_progress(self, now: int, quorum_in_view: bool = False) -> None:
        if quorum_in_view and self.in_vc and self.view_active and self.vc_sent > self.view:
            # SPEC 12.6.7: a quorum still follows this view, drop our lone suspicion.
            self.in_vc = False
            self.vc_sent = self.view
            self.vc_msgs.pop(self.me, None)
            self.restart_timers(now)
        if self.pending_nv is not None:
            self._follow_new_view(self.pending_nv, now)
        elif self.in_vc and not self.view_active and self.leader_of(self.view) == self.me:
            self._try_new_view(now)
