"""View change (SPEC 12.6) for the consensus Replica: ViewChange, ViewData, NewView and selection."""

from __future__ import annotations

from impl_a import heraclius_pb2 as pb
from impl_a.codec import encode
from impl_a.verify import header_hash

LATE_GAP_MS = 500


class ViewChangeMixin:
    """Mixed into Replica; uses its fields (view, in_vc, actions, cluster, ...)."""

    def _init_view_change(self) -> None:
        self.vc_msgs: dict[str, pb.ViewChange] = {}
        self.vc_requested = 0
        self.vc_deadline: int | None = None
        self.vc_failures = 0
        self.view_data: dict[int, dict[str, pb.ViewData]] = {}
        self.new_view_sent: set[int] = set()
        self.pending_new_view: int | None = None
        self.selected = None
        self.awaiting_new_view = False
        self.installed_nv: pb.NewView | None = None
        self.higher_votes: dict[int, set[str]] = {}
        self.late_sent: dict[str, int] = {}

    def _start_view_change(self, target: int, why: str) -> None:
        if target <= max(self.vc_requested, self.view):
            return
        self.vc_requested = target
        self.in_vc = True
        self.actions.append(("event", "view_change", {"from_view": self.view, "to_view": target, "why": why}))
        vc = pb.ViewChange(cluster_id=self.cluster.id, new_view=target, node_id=self.me, height=self.height)
        self._sign("view-change", vc)
        self.actions.append(("persist", [], [("vc_requested", str(target).encode())]))
        self.vc_msgs[self.me] = vc
        self._send_all(pb.PeerMessage(view_change=vc))
        if self.vc_deadline is None:
            self.vc_deadline = self.now + self._vc_timeout()
        self._vc_evaluate()

    def _vc_timeout(self) -> int:
        return self.t["view_change"] * (2 ** min(self.vc_failures, 3))

    def _on_view_change(self, sender: str, vc: pb.ViewChange) -> None:
        if vc.node_id != sender:
            self._reject("malformed", sender, "view change node id")
            return
        if not self._verify(sender, "view-change", vc):
            self._reject("bad_signature", sender, "view change")
            return
        if vc.new_view == self.view and self.awaiting_new_view and sender == self.leader:
            # The leader of the view we wait in is itself still asking for it (it restarted, 12.9):
            # it lost the ViewData we sent, so send it again.
            if self._rate_ok(f"vd:{self.view}"):
                self._send_view_data()
            return
        if vc.new_view <= self.view:
            self._reject("stale", sender, f"view change to {vc.new_view}")
            self._send_installing_new_view(sender)
            return
        old = self.vc_msgs.get(sender)
        if old is None or vc.new_view > old.new_view:
            self.vc_msgs[sender] = vc
        if vc.height > self.height:
            self._want_height(sender, vc.height)
        self._vc_evaluate()

    def _vc_evaluate(self) -> None:
        vals = sorted((m.new_view for m in self.vc_msgs.values() if m.new_view > self.view), reverse=True)
        f, q = self.cluster.f, self.cluster.q
        if len(vals) >= f + 1 and vals[f] > self.view and self.vc_requested < vals[f]:
            self._start_view_change(vals[f], "joined f+1 view changes")
            return
        if len(vals) >= q and vals[q - 1] > self.view:
            self._enter_view(vals[q - 1])

    def _set_view(self, w: int) -> None:
        self.view = w
        self.counters["view_changes"] += 1
        self.actions.append(("persist", [], [("view", str(w).encode())]))
        self.actions.append(("event", "view_entered", {"view": w, "leader": self.leader}))
        self.selected = None
        self.last_leader_contact = self.now
        for entry in self.req_pool.values():
            entry[1] = self.now
            entry[3] = None  # the censorship timer starts again (SPEC 12.5)
        for per in self.remote_pool.values():
            for entry in per.values():
                entry[1] = self.now

    def _enter_view(self, w: int) -> None:
        self._set_view(w)
        self.in_vc = True
        self.awaiting_new_view = True
        self.vc_requested = max(self.vc_requested, w)
        self.vc_deadline = self.now + self._vc_timeout()
        self._send_view_data()

    def _send_view_data(self) -> None:
        """Our ViewData for the view we are entering, to its leader (SPEC 12.6 step 2)."""
        w = self.view
        vd = pb.ViewData(cluster_id=self.cluster.id, view=w, node_id=self.me, last_height=self.height,
                         last_hash=self.head_hash)
        if self.prepared is not None and self.prepared.proposal.height == self.height + 1:
            vd.prepared.CopyFrom(self.prepared)
        self._sign("view-data", vd)
        if self.leader == self.me:
            self._on_view_data(self.me, vd)
        else:
            self.actions.append(("send", self.leader, pb.PeerMessage(view_data=vd)))

    def _vc_tick(self) -> None:
        if self.in_vc and self.vc_deadline is not None and self.now >= self.vc_deadline:
            self.vc_failures += 1
            self.vc_deadline = self.now + self._vc_timeout()
            self._start_view_change(max(self.view, self.vc_requested) + 1, "view change timed out")
        if self.pending_new_view is not None and self.pending_new_view == self.view:
            self._try_new_view(self.view)

    def _prepared_ok(self, pc: pb.PreparedCert, below_view: int) -> bool:
        p = pc.proposal
        leader = self.cluster.leader(p.view).id
        if p.cluster_id != self.cluster.id or p.view >= below_view or p.leader_id != leader:
            return False
        if not self._verify(leader, "proposal", p):
            return False
        digest = header_hash(p.header)
        seen = set()
        for pr in pc.prepares:
            if (pr.cluster_id != self.cluster.id or pr.view != p.view or pr.height != p.height
                    or pr.digest != digest or pr.node_id in seen or pr.node_id not in self.members):
                return False
            if not self._verify(pr.node_id, "prepare", pr):
                return False
            seen.add(pr.node_id)
        return len(seen) >= self.cluster.q

    def _view_data_ok(self, vd: pb.ViewData, w: int) -> bool:
        if vd.cluster_id != self.cluster.id or vd.view != w or vd.node_id not in self.members:
            return False
        if len(vd.last_hash) != 32 or not self._verify(vd.node_id, "view-data", vd):
            return False
        return not vd.HasField("prepared") or self._prepared_ok(vd.prepared, w)

    def _on_view_data(self, sender: str, vd: pb.ViewData) -> None:
        if vd.view > max(self.view, self.vc_requested) + 64:
            self._reject("out_of_order", sender, f"view data for far view {vd.view}")
            return
        if vd.node_id == sender and (vd.view < self.view or (vd.view == self.view and not self.in_vc)):
            self._reject("stale", sender, f"view data for view {vd.view}")
            self._send_installing_new_view(sender)
            return
        if vd.node_id != sender or self.cluster.leader(vd.view).id != self.me or vd.view < self.view:
            self._reject("not_leader" if vd.node_id == sender else "malformed", sender, "view data")
            return
        if not self._view_data_ok(vd, vd.view):
            self._reject("bad_signature", sender, "invalid view data")
            self._evidence(sender, "invalid_view_data", f"view data for view {vd.view}", [encode(vd)])
            return
        if vd.last_height > self.height:
            self._want_height(sender, vd.last_height)
        self.view_data.setdefault(vd.view, {})[sender] = vd
        for old in [v for v in self.view_data if v < self.view]:
            del self.view_data[old]
        self._try_new_view(vd.view)

    def _try_new_view(self, w: int) -> None:
        # A ViewData whose last_height its sender could not back (catch-up gave nothing) is left out:
        # last_height is unauthenticated, and one liar must not stall the new view (errata/impl-a.md).
        got = {n: vd for n, vd in self.view_data.get(w, {}).items()
               if not (n in self.refuted and vd.last_height >= self.refuted[n])}
        if w != self.view or w in self.new_view_sent or self.me not in got or len(got) < self.cluster.q:
            return
        others = sorted((n for n in got if n != self.me), key=str.encode)[:self.cluster.q - 1]
        chosen = sorted([self.me, *others], key=str.encode)
        m = max(got[n].last_height for n in chosen)
        if self.height < m:
            self.pending_new_view = w
            return
        self.pending_new_view = None
        nv = pb.NewView(cluster_id=self.cluster.id, view=w, leader_id=self.me, view_data=[got[n] for n in chosen])
        self._sign("new-view", nv)
        self.new_view_sent.add(w)
        # Durable before it leaves: a leader restarted in w then knows w is installed and never sends a
        # second, different NewView for it.
        self.actions.append(("persist", [], [("new_view", encode(nv))]))
        self._send_all(pb.PeerMessage(new_view=nv))
        self._install_new_view(nv)

    def _on_new_view(self, sender: str, nv: pb.NewView) -> None:
        w = nv.view
        leader = self.cluster.leader(w).id
        if w < self.view or (w == self.view and not self.awaiting_new_view):
            # A NewView of our own view (re-sent by its leader after a restart, 12.9) changes nothing:
            # in particular it does not end a suspicion of that view (only 12.6 step 7 does).
            self._reject("stale", sender, f"new view {w}")
            self._remind_view_change(sender)
            return
        if nv.leader_id != leader or sender != leader:
            self._reject("not_leader", sender, "new view")
            return
        if not self._verify(leader, "new-view", nv):
            self._reject("bad_signature", sender, "new view")
            return
        ids = [vd.node_id.encode() for vd in nv.view_data]
        if len(ids) != self.cluster.q or any(a >= b for a, b in zip(ids, ids[1:], strict=False)):
            self._reject("malformed", sender, "new view data set")
            return
        for vd in nv.view_data:
            if not self._view_data_ok(vd, w):
                self._evidence(sender, "invalid_view_data", f"new view {w} holds invalid view data", [encode(nv)])
                self._reject("bad_signature", sender, "new view holds invalid view data")
                return
        if w > self.view:
            self._set_view(w)
        self._install_new_view(nv)

    def _install_new_view(self, nv: pb.NewView) -> None:
        self.in_vc = False
        self.awaiting_new_view = False
        self.installed_nv = nv
        meta = [("new_view", encode(nv))]
        if self.vc_requested > self.view:
            # We had given up on this view and asked for a later one, but the quorum installed it: the
            # view is active again, so a later suspicion must be able to ask for view + 1 anew.
            self.vc_requested = self.view
            meta.append(("vc_requested", str(self.view).encode()))
        self.actions.append(("persist", [], meta))
        self.vc_deadline = None
        self.vc_failures = 0
        self.vc_msgs = {k: v for k, v in self.vc_msgs.items() if v.new_view > self.view and k != self.me}
        self.last_leader_contact = self.now
        selected = self._select(nv)
        self.actions.append(("event", "new_view", {"view": self.view, "leader": self.leader, "selected":
                                                   selected}))
        early = self.early_proposals.pop(self.view, None)
        self.early_proposals = {v: e for v, e in self.early_proposals.items() if v > self.view}
        if early is not None:
            self._on_proposal(*early)
        if self.is_leader():
            self._maybe_propose()
        elif self.req_pool:
            self._forward([e[0] for e in self.req_pool.values()][:1024])

    def _select(self, nv: pb.NewView) -> bool:
        """Selection (SPEC 12.6 step 4) from an installing NewView; True if a proposal was selected."""
        m = max(vd.last_height for vd in nv.view_data)
        best = None
        for vd in nv.view_data:
            if vd.HasField("prepared") and vd.prepared.proposal.height == m + 1 and (
                    best is None or vd.prepared.proposal.view > best.proposal.view):
                best = vd.prepared
        self.selected = (m + 1, best.proposal.header, best.proposal.batch) if best is not None else None
        if self.selected and self.selected[0] <= self.height:
            self.selected = None
        if self.height < m:
            self._want_height(nv.leader_id, m)
        return best is not None

    # -- restart (SPEC 12.9) and reconnection -----------------------------------------------------
    def _resume(self) -> None:
        """After replay: resume timers as if the view had just been entered (SPEC 12.9)."""
        self.last_leader_contact = self.now
        if self.view == 0 or self.installed_nv is not None:
            # Active view. A suspicion raised before the stop is not resumed: the heartbeat and
            # censorship timers raise it again if the leader is still failing.
            self.in_vc = False
            self.vc_requested = self.view
            if self.installed_nv is not None:
                self._select(self.installed_nv)
        else:
            # Stopped during the view change to `view`: still in it.
            self.in_vc = True
            self.awaiting_new_view = True
            self.vc_requested = max(self.vc_requested, self.view)
            self.vc_deadline = self.now + self._vc_timeout()
        self.announce()

    def announce(self, peer: str | None = None) -> None:
        """Send our current consensus position to one peer (its link just came up) or to all: what a
        peer that restarted, or that we restarted, may have missed. Every message is one we already
        sent or an identical re-signing (Ed25519 is deterministic), so repeats are harmless."""
        peers = [peer] if peer is not None else [n for n in self.members if n != self.me]
        if self.in_vc:
            asks = sorted({self.vc_requested} | ({self.view} if self.awaiting_new_view else set()))
            for w in asks:
                vc = pb.ViewChange(cluster_id=self.cluster.id, new_view=w, node_id=self.me, height=self.height)
                self._sign("view-change", vc)
                self.vc_msgs[self.me] = vc
                for nid in peers:
                    self.actions.append(("send", nid, pb.PeerMessage(view_change=vc)))
            if self.awaiting_new_view and self.view > 0 and (peer is None or peer == self.leader):
                self._send_view_data()
            self._vc_evaluate()
            return
        digest = self.accepted.get(self.view)
        if digest is not None and digest in self.proposals:
            p = self.proposals[digest][0]
            if self.is_leader() and p.leader_id == self.me:
                for nid in peers:
                    self.actions.append(("send", nid, pb.PeerMessage(proposal=p)))
            prep = self.prepare_seen.get((self.me, self.view))
            if prep is None:
                prep = pb.Prepare(cluster_id=self.cluster.id, view=p.view, height=p.height, digest=digest,
                                  node_id=self.me)
                self._sign("prepare", prep)
                self.prepares.setdefault((p.view, digest), {})[self.me] = prep
                self.prepare_seen[(self.me, p.view)] = prep
            for nid in peers:
                self.actions.append(("send", nid, pb.PeerMessage(prepare=prep)))
        own = self.commit_seen.get(self.me) or next(
            (c for per in self.commits.values() for n, c in per.items() if n == self.me), None)
        if own is not None:
            for nid in peers:
                self.actions.append(("send", nid, pb.PeerMessage(commit=own)))

    # -- late members and lone suspicion (SPEC 12.6 steps 6 and 7) --------------------------------
    def _rate_ok(self, key: str) -> bool:
        if self.now - self.late_sent.get(key, -LATE_GAP_MS) < LATE_GAP_MS:
            return False
        self.late_sent[key] = self.now
        return True

    def _ask_for_new_view(self, w: int, peers: list[str]) -> None:
        """We are behind view w: ask the members there for the NewView that installed it."""
        if not self._rate_ok(f"ask:{w}"):
            return
        vc = pb.ViewChange(cluster_id=self.cluster.id, new_view=w, node_id=self.me, height=self.height)
        self._sign("view-change", vc)
        for peer in peers:
            self.actions.append(("send", peer, pb.PeerMessage(view_change=vc)))

    def _note_higher_view(self, sender: str, view: int) -> None:
        if view <= self.view or view > self.view + 64:
            return
        voters = self.higher_votes.setdefault(view, set())
        voters.add(sender)
        for old in [v for v in self.higher_votes if v <= self.view]:
            del self.higher_votes[old]
        if len(voters) >= self.cluster.f + 1:
            self._ask_for_new_view(view, sorted(voters))

    def _remind_view_change(self, peer: str) -> None:
        """We are leaving the view whose NewView peer just re-sent: tell it which view we ask for, so
        it can join (12.6 step 1) instead of waiting for our link to it to come up again."""
        own = self.vc_msgs.get(self.me)
        if self.in_vc and own is not None and own.new_view > self.view and self._rate_ok(f"vc:{peer}"):
            self.actions.append(("send", peer, pb.PeerMessage(view_change=own)))

    def check_timers_armed(self) -> None:
        """Invariant: some timer can always move us on, so a node never sits silent forever. In a view
        change the view_change timer runs; in an active view the heartbeat and censorship timers can
        ask for view + 1, which they cannot while an earlier ask is still recorded. A breach is our bug:
        it is reported and repaired."""
        if self.in_vc and self.vc_deadline is None:
            broken = "in a view change without a view_change timer"
            self.vc_deadline = self.now + self._vc_timeout()
        elif not self.in_vc and self.vc_requested > self.view:
            broken = f"active in view {self.view} while asking for view {self.vc_requested}"
            self.vc_requested = self.view
            self.vc_msgs.pop(self.me, None)
        else:
            return
        self.actions.append(("event", "invariant_violated", {"view": self.view, "detail": broken}))

    def _send_installing_new_view(self, peer: str) -> None:
        if self.in_vc or self.view == 0 or self.installed_nv is None or self.installed_nv.view != self.view:
            return
        if self._rate_ok(f"nv:{peer}"):
            self.actions.append(("send", peer, pb.PeerMessage(new_view=self.installed_nv)))

    def _end_lone_suspicion(self) -> None:
        """Back to normal in our view: a quorum just decided with Commits of this very view."""
        if not self.in_vc or self.awaiting_new_view:
            return
        self.in_vc = False
        self.vc_deadline = None
        self.vc_failures = 0
        self.vc_requested = self.view
        self.vc_msgs.pop(self.me, None)
        self.last_leader_contact = self.now
        self.actions.append(("persist", [], [("vc_requested", str(self.view).encode())]))
        self.actions.append(("event", "view_change_abandoned", {"view": self.view}))
        for entry in self.req_pool.values():
            entry[1] = entry[2] = self.now
            entry[3] = None
        for per in self.remote_pool.values():
            for entry in per.values():
                entry[1] = self.now
        early = self.early_proposals.pop(self.view, None)
        if early is not None and early[1].height == self.height + 1:
            self._on_proposal(*early)  # the next proposal of this view may have arrived meanwhile
