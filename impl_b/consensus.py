"""Consensus core of SPEC 12 as a pure state machine.

Events go in (`on_peer`, `on_request`, `on_remote`, `on_tick`, each with the current time in ms);
a list of actions comes out, to be executed in order by the I/O layer:

- `Persist(record)`: make `record` durable before executing the next action;
- `Send(node_id, PeerMessage)`: send to one member (broadcasts are expanded here);
- `Decided(decision, execution)`: a decision was applied (answer clients, serve queues);
- `Reject(reason, peer, detail)` and `Evidence(node, kind, detail, messages)`: accounting.

View change lives in `viewchange.py`, catch-up in `catchup.py` and restart in `restart.py` (mixins of
Replica).
"""

from collections import OrderedDict

from . import codec
from .actions import Decided, Evidence, Persist, Reject, Send
from .catchup import CatchUpMixin
from .checks import Checker, header_hash, message_sig_ok, sign_message
from .codec import encode
from .crypto import signing_bytes, verify
from .pool import RequestPoolMixin, result_budget
from .restart import RestartMixin
from .rsm import InvalidBatch, State, execute
from .viewchange import ViewChangeMixin

ZERO = b"\x00" * 32
FUTURE_HEIGHTS = 4


class Replica(RequestPoolMixin, ViewChangeMixin, CatchUpMixin, RestartMixin):
    """One member's consensus state for its cluster."""

    def __init__(self, manifest, node_id: str, signer, checker: Checker | None = None, now: int = 0):
        self.m = manifest
        self.me = node_id
        self.signer = signer
        self.checker = checker or Checker(manifest)
        me = manifest.nodes[node_id]
        self.cluster = manifest.clusters[me.cluster]
        self.cid = me.cluster
        self.t = manifest.timeouts
        self.lim = manifest.limits
        self.state = State(self.cid, self.cluster.role)
        self.view = 0
        self.view_active = True  # False between entering a view and its NewView
        self.in_vc = False
        self.height = 0
        self.head_hash = ZERO
        self.headers: dict[int, object] = {}  # recent decided headers (for sync answers to be checked)
        self._reset_height()
        self._init_pool()
        self.remote: dict[str, dict[int, tuple]] = {}  # source -> seq -> (cd, added)
        self.future: OrderedDict = OrderedDict()
        self.batch_due: int | None = None
        self.last_leader_contact = now
        self.last_hb_sent = now
        self.last_scan = now
        self.sync_to = 0
        self.sync_peers: list[str] = []
        self.sync_next = 0
        self.sync_misses = 0
        self.sync_since: int | None = None
        self.seen_props: dict[tuple, object] = {}
        self.seen_prep: dict[tuple, object] = {}
        self.seen_commit: dict[tuple, object] = {}
        self.decisions_count = 0
        self.wrong_results = False  # testbed fault `wrong_result` (SPEC 16)
        self.view_changes = 0
        self._init_vc(now)
        self.acts: list = []

    # ------------------------------------------------------------------ helpers

    def _reset_height(self) -> None:
        self.accepted = None  # Proposal accepted in the current view for height+1
        self.votes: dict[int, bytes] = {}  # view -> digest I prepared for height+1
        self.prepares: dict[tuple, dict] = {}  # (view, digest) -> node -> Prepare
        self.commits: dict[bytes, dict] = {}  # digest -> node -> Commit
        self.known: dict[bytes, tuple] = {}  # digest -> (proposal, execution)
        self.prepared_cert = None
        self.my_commit: tuple | None = None  # (digest, decision signature)

    def leader_of(self, view: int) -> str:
        return self.cluster.leader(view)

    @property
    def leader(self) -> str:
        return self.leader_of(self.view)

    def is_leader(self) -> bool:
        return self.leader == self.me

    def _emit(self, a) -> None:
        self.acts.append(a)

    def _broadcast(self, pm) -> None:
        for n in self.cluster.members:
            if n != self.me:
                self._emit(Send(n, pm))

    def _reject(self, reason: str, peer: str, detail: str) -> None:
        self._emit(Reject(reason, peer, detail))

    def _take(self) -> list:
        acts, self.acts = self.acts, []
        return acts

    def member(self, node: str) -> bool:
        return node in self.cluster.members

    def _exec(self, batch, height: int, checker=None):
        """Execute a batch on the current state (testbed `wrong_result` corrupts GET results)."""
        return execute(self.state, self.m, batch, height, self.head_hash, checker, corrupt_gets=self.wrong_results)

    def _advance(self, header) -> None:
        self.height = header.height
        self.head_hash = header_hash(header)
        self.headers[self.height] = header
        self.headers.pop(self.height - 64, None)

    # ------------------------------------------------------------------ remote inputs

    def on_remote(self, cd, now: int) -> list:
        """A verified compact decision from another cluster (node layer checked QC and proof)."""
        src = cd.header.cluster_id
        if cd.leaf.seq >= self.state.in_seq(src):
            self.remote.setdefault(src, {}).setdefault(cd.leaf.seq, (cd, now))
            if self.is_leader():
                # A source emits one compact decision per decision of its own, so no more are about
                # to arrive: due now, without batch_wait, but proposed at the next on_tick so that the
                # other compact decisions of the same queue batch join this proposal.
                self.batch_due = now if self.batch_due is None else min(self.batch_due, now)
        return self._take()

    def next_remote_seq(self, src: str) -> int:
        """The next seq to pull from `src`: past both the state and the pool."""
        seq = self.state.in_seq(src)
        pool = self.remote.get(src, {})
        while seq in pool:
            seq += 1
        return seq

    # ------------------------------------------------------------------ proposing

    def _want_batch(self, now: int) -> None:
        if self.batch_due is None:
            self.batch_due = now + self.t["batch_wait"]
        if now >= self.batch_due:
            self._maybe_propose(now)

    def proposal_due(self) -> int | None:
        """batch_due while a proposal could be made now, else None (the time to run on_tick for it:
        while a proposal is in flight, a past batch_due must not make the caller wake every ms)."""
        return self.batch_due if self.batch_due is not None and self._can_propose() else None

    def _can_propose(self) -> bool:
        return (self.is_leader() and self.view_active and not self.in_vc and self.accepted is None
                and self.sync_to <= self.height)

    def _maybe_propose(self, now: int) -> None:
        if not self._can_propose():
            return
        sel = self.selected
        batch = sel.batch if sel is not None and sel.height == self.height + 1 else self._collect_batch()
        self.selected = None
        if not batch.inputs:
            self.batch_due = None
            return
        try:
            ex = self._exec(batch, self.height + 1)
            if sel is None:
                batch, ex = self._fit_outputs(batch, ex)
        except InvalidBatch as e:  # only a bug in our own pools gets here
            self._reject(e.reason, self.me, "own batch invalid")
            return
        self.batch_due = None
        p = codec.Proposal(cluster_id=self.cid, view=self.view, height=self.height + 1, leader_id=self.me,
                           header=ex.header, batch=batch)
        sign_message(self.signer, self.m.network_id, p)
        self.last_hb_sent = now
        # SPEC 12.8: the proposal is durable (as my accepted proposal and vote) before it is sent, so
        # that a restart in this view re-sends it instead of signing a different one.
        self._accept(p, ex, now, before_prepare=lambda: self._emit_proposal(p))

    def _fit_outputs(self, batch, ex):
        """Keep each output leaf for another cluster small enough to enter that cluster's batches as
        one remote input (impl_b leader choice, see README): a shard batch whose results for the
        coordinator would exceed the budget takes fewer remote inputs (always at least one)."""
        budget = result_budget(self.lim)
        while len(batch.inputs) > 1 and any(
                len(encode(leaf)) > budget for leaf in ex.outputs if not leaf.destination.startswith("client:")):
            batch = codec.Batch(inputs=batch.inputs[:len(batch.inputs) // 2])
            ex = self._exec(batch, self.height + 1)
        return batch, ex

    def _emit_proposal(self, p) -> None:
        """Broadcast a proposal (the fault layer may wrap this for equivocation tests)."""
        self._broadcast(codec.PeerMessage(proposal=p))

    def _collect_batch(self):
        inputs = []
        size = 0
        max_n, max_b = self.lim["max_batch_inputs"], self.lim["max_batch_bytes"] - 16
        for src in sorted(self.remote):
            pool = self.remote[src]
            seq = self.state.in_seq(src)
            while seq in pool and len(inputs) < max_n:
                inp = codec.Input(remote=pool[seq][0])
                sz = len(encode(inp)) + 8
                if size + sz > max_b:
                    break
                inputs.append(inp)
                size += sz
                seq += 1
        self._collect_client_inputs(inputs, size, max_n, max_b)
        return codec.Batch(inputs=inputs)

    # ------------------------------------------------------------------ peer messages

    def on_peer(self, sender: str, pm, now: int) -> list:
        kind = pm.which()
        body = getattr(pm, kind)
        handler = getattr(self, "_on_" + kind, None)
        if handler is None:
            return self._take()
        cid = getattr(body, "cluster_id", self.cid)
        if kind in ("forward",):
            cid = self.cid
        if cid != self.cid or not self.member(sender):
            self._reject("wrong_cluster" if self.member(sender) else "unknown_node", sender, kind)
            return self._take()
        handler(sender, body, now, pm)
        return self._take()

    def _buffer(self, sender: str, pm, key: tuple) -> None:
        self.future[(sender,) + key] = pm
        while len(self.future) > 8 * self.cluster.n * FUTURE_HEIGHTS:
            self.future.popitem(last=False)

    def _replay_future(self, now: int) -> None:
        if not self.future:
            return
        items = list(self.future.items())
        self.future.clear()
        for key, pm in items:
            kind = pm.which()
            getattr(self, "_on_" + kind)(key[0], getattr(pm, kind), now, pm)

    def _height_check(self, sender: str, kind: str, height: int, pm, key: tuple) -> bool:
        """True when `height` is the one in flight; buffers or counts other heights."""
        if height <= self.height:
            self._reject("stale", sender, f"{kind} for decided height {height}")
            return False
        if height > self.height + 1:
            if height <= self.height + FUTURE_HEIGHTS:
                self._buffer(sender, pm, key)
            self._need_sync(height - 1, sender)
            return False
        return True

    def _on_heartbeat(self, sender, hb, now, pm) -> None:
        if hb.view == self.view and sender == self.leader and hb.leader_id == sender:
            self.last_leader_contact = now
        elif hb.view > self.view and sender == self.leader_of(hb.view) and hb.leader_id == sender:
            self._view_behind(now, hb.view, [sender])
        if hb.height > self.height:
            self._need_sync(hb.height, sender)

    def _on_proposal(self, sender, p, now, pm) -> None:
        if p.view > self.view or (p.view == self.view and not self.view_active):
            self._buffer(sender, pm, ("proposal", p.view, p.height))
            if p.view > self.view and sender == self.leader_of(p.view) == p.leader_id:
                self._view_behind(now, p.view, [sender])
            return
        if p.view < self.view or self.in_vc:
            self._reject("stale", sender, "proposal of an old view")
            return
        if p.leader_id != self.leader or sender != p.leader_id:
            self._reject("not_leader", sender, "proposal from a non-leader")
            return
        if not message_sig_ok(self.m.nodes[sender].ed25519, self.m.network_id, p):
            self._reject("bad_signature", sender, "proposal")
            return
        self.last_leader_contact = now
        # Compared before a future height is buffered: the buffer keeps one proposal per (view, height),
        # so a member one height behind would otherwise never see the first of two conflicting ones.
        if self.height < p.height <= self.height + FUTURE_HEIGHTS:
            key = (p.view, p.height)
            prev = self.seen_props.get(key)
            if prev is not None and encode(prev) != encode(p):
                self._emit(Evidence(sender, "equivocation", f"two proposals for view {p.view} height {p.height}",
                                    [encode(prev).hex(), encode(p).hex()]))
                self._suspect(now, "equivocating leader")
                return
            self.seen_props[key] = p
        if not self._height_check(sender, "proposal", p.height, pm, ("proposal", p.view, p.height)):
            return
        if self.accepted is not None:
            return
        why = self._proposal_problem(p)
        if isinstance(why, str):
            self._reject("invalid_proposal", sender, why)
            self._emit(Evidence(sender, "invalid_proposal", why, [encode(p).hex()]))
            self._suspect(now, "invalid proposal")
            return
        self._accept(p, why, now)

    def _proposal_problem(self, p):
        """The Execution of a valid proposal, or a string saying what is wrong with it."""
        if p.header is None or p.batch is None or not p.batch.inputs:
            return "empty batch or missing header"
        if len(p.batch.inputs) > self.lim["max_batch_inputs"] or len(encode(p.batch)) > self.lim["max_batch_bytes"]:
            return "batch over limits"
        sel = self.selected
        if sel is not None and sel.height == p.height and (
                encode(sel.header) != encode(p.header) or encode(sel.batch) != encode(p.batch)):
            return "does not match the proposal selected by the NewView"
        d = header_hash(p.header)
        if self.votes.get(p.view, d) != d:
            return "conflicts with my earlier vote"
        try:
            ex = self._exec(p.batch, p.height, self.checker)
        except InvalidBatch as e:
            return f"invalid input ({e.reason})"
        if encode(ex.header) != encode(p.header):
            return "header differs from re-execution"
        return ex

    def _accept(self, p, ex, now: int, before_prepare=None) -> None:
        d = header_hash(p.header)
        self.accepted = p
        self.selected = None
        self.known[d] = (p, ex)
        self.votes[p.view] = d
        prep = codec.Prepare(cluster_id=self.cid, view=p.view, height=p.height, digest=d, node_id=self.me)
        sign_message(self.signer, self.m.network_id, prep)
        self._emit(Persist({"inflight": self._inflight()}))
        if before_prepare is not None:
            before_prepare()
        self._broadcast(codec.PeerMessage(prepare=prep))
        self.prepares.setdefault((p.view, d), {})[self.me] = prep
        self._check_prepared(now)
        self._check_decided(d, now)

    def _inflight(self) -> dict:
        return {"height": self.height + 1, "votes": dict(self.votes), "accepted": self.accepted,
                "prepared": self.prepared_cert, "commit": self.my_commit}

    def _on_prepare(self, sender, pr, now, pm) -> None:
        if pr.node_id != sender:
            self._reject("malformed", sender, "prepare relayed for another node")
            return
        if pr.view > self.view:
            self._buffer(sender, pm, ("prepare", pr.view, pr.height))
            self._seen_higher_view(sender, pr.view, now)
            return
        if not self._height_check(sender, "prepare", pr.height, pm, ("prepare", pr.view, pr.height)):
            return
        if not message_sig_ok(self.m.nodes[sender].ed25519, self.m.network_id, pr):
            self._reject("bad_signature", sender, "prepare")
            return
        if self._equivocates(self.seen_prep, sender, pr, "prepares"):
            return
        self.prepares.setdefault((pr.view, pr.digest), {})[sender] = pr
        self._check_prepared(now)

    def _equivocates(self, seen: dict, sender: str, msg, what: str) -> bool:
        """Record `msg` per (sender, view, height); True (and evidence) if it conflicts with an earlier one."""
        key = (sender, msg.view, msg.height)
        first = seen.setdefault(key, msg)
        if first.digest == msg.digest:
            return False
        self._emit(Evidence(sender, "equivocation", f"two {what} for view {msg.view} height {msg.height}",
                            [encode(first).hex(), encode(msg).hex()]))
        return True

    def _check_prepared(self, now: int) -> None:
        p = self.accepted
        if p is None or self.my_commit is not None and self.my_commit[2] == p.view:
            return
        d = header_hash(p.header)
        preps = self.prepares.get((p.view, d), {})
        if len(preps) < self.cluster.q:
            return
        chosen = sorted(preps.values(), key=lambda x: x.node_id.encode())[: self.cluster.q]
        self.prepared_cert = codec.PreparedCert(proposal=p, prepares=chosen)
        sig = self.signer.sign(signing_bytes("decision", self.m.network_id, encode(p.header)))
        self.my_commit = (d, sig, p.view)
        self._emit(Persist({"inflight": self._inflight()}))
        c = codec.Commit(cluster_id=self.cid, view=p.view, height=p.height, digest=d, node_id=self.me,
                         decision_signature=sig)
        self._broadcast(codec.PeerMessage(commit=c))
        self.commits.setdefault(d, {})[self.me] = c
        self._check_decided(d, now)

    def _on_commit(self, sender, c, now, pm) -> None:
        if c.node_id != sender:
            self._reject("malformed", sender, "commit relayed for another node")
            return
        if c.view > self.view:
            self._seen_higher_view(sender, c.view, now)
        if not self._height_check(sender, "commit", c.height, pm, ("commit", c.view, c.height)):
            return
        # Only Commits of the same view can be evidence (SPEC 12.6).
        if self._equivocates(self.seen_commit, sender, c, "commits"):
            return
        self.commits.setdefault(c.digest, {})[sender] = c
        self._check_decided(c.digest, now)

    def _check_decided(self, d: bytes, now: int) -> None:
        cs = self.commits.get(d, {})
        if len(cs) < self.cluster.q:
            return
        if d not in self.known:
            self._need_sync(self.height + 1, next(iter(cs)))
            return
        p, ex = self.known[d]
        msg = signing_bytes("decision", self.m.network_id, encode(p.header))
        good = []
        for node, c in list(cs.items()):
            if node == self.me or verify(self.m.nodes[node].ed25519, msg, c.decision_signature):
                good.append(c)
            else:
                del cs[node]
                self._reject("bad_signature", node, "commit decision signature")
        if len(good) < self.cluster.q:
            return
        good.sort(key=lambda x: x.node_id.encode())
        qc = codec.QuorumCert(signatures=[codec.NodeSignature(node_id=c.node_id, signature=c.decision_signature)
                                          for c in good[: self.cluster.q]])
        dec = codec.Decision(header=p.header, batch=p.batch, outputs=ex.outputs, qc=qc)
        self._apply_decision(dec, ex, now)

    def _apply_decision(self, dec, ex, now: int) -> None:
        d = header_hash(dec.header)
        in_view = sum(1 for c in self.commits.get(d, {}).values() if c.view == self.view) >= self.cluster.q
        self._emit(Persist({"decision": dec}))
        ex.apply()
        self._advance(dec.header)
        self.decisions_count += 1
        self._forget_decided(dec.batch)
        for src, pool in self.remote.items():
            nxt = self.state.in_seq(src)
            for s in [s for s in pool if s < nxt]:
                del pool[s]
        self._reset_height()
        self.selected = None if self.selected is None or self.selected.height <= self.height else self.selected
        for tbl in (self.seen_props, self.seen_prep, self.seen_commit):
            for k in [k for k in tbl if k[-1] <= self.height]:
                del tbl[k]
        self._emit(Decided(dec, ex))
        self._after_progress(now, in_view)

    def _after_progress(self, now: int, quorum_in_view: bool = False) -> None:
        self._replay_future(now)
        self._vc_after_progress(now, quorum_in_view)
        if self.is_leader() and (self.requests or any(self.remote.values())):
            # These inputs already waited a whole round: propose now, without batch_wait, so that the
            # runtime writes this decision and the next proposal in one transaction.
            self.batch_due = now
            self._want_batch(now)

    # ------------------------------------------------------------------ timers

    def on_tick(self, now: int) -> list:
        if self.is_leader() and self.view_active and not self.in_vc:
            if self.batch_due is not None and now >= self.batch_due:
                self._maybe_propose(now)
            if now - self.last_hb_sent >= self.t["heartbeat_interval"]:
                self.last_hb_sent = now
                self._broadcast(codec.PeerMessage(heartbeat=codec.Heartbeat(
                    cluster_id=self.cid, view=self.view, height=self.height, leader_id=self.me)))
        elif (not self.in_vc and not self.is_leader()
              and now - self.last_leader_contact > self.t["heartbeat_timeout"]):
            self._suspect(now, "leader silent")
        if now - self.last_scan >= 50:
            self.last_scan = now
            self._scan_pools(now)
        self._sync_tick(now)
        self._vc_tick(now)
        return self._take()

    def _scan_pools(self, now: int) -> None:
        if self.in_vc:
            return
        censored = self._scan_requests(now)
        for pool in self.remote.values():
            for _cd, added in pool.values():
                if now - added > self.t["censorship"]:
                    censored = True
        if censored and not self.is_leader():
            self._suspect(now, "censorship timeout")

    def restart_timers(self, now: int) -> None:
        """Reset every pool timer (after a view change, the new leader gets a full period)."""
        for ent in self.requests.values():
            ent[1] = ent[2] = now
            ent[4] = None  # the censorship timer starts again at the next scan
        for _src, pool in self.remote.items():
            for s, (cd, _t) in list(pool.items()):
                pool[s] = (cd, now)
        self.last_leader_contact = now
