"""Consensus core (SPEC 12) as a pure state machine.

Events in: peer messages, client requests, verified remote inputs, timer ticks (with `now` in ms).
Actions out (Replica.actions, drained by the driver, executed in order):
  ("persist", decisions, meta)      make durable before anything later in the list is done
  ("send", node_id, PeerMessage)    send on our outbound link
  ("reply", node_id, PeerMessage)   send back on the link the request came in on
  ("decided", Decision)             a height was decided and applied
  ("reject", reason, peer, detail)  count (and rate-limit log) a rejected input
  ("evidence", node, kind, detail, [bytes])
  ("event", name, fields)           something worth a log line (view change, ...)
The only reads from outside are of the node's own decision log (to serve catch-up).
"""

from __future__ import annotations

from collections import OrderedDict

from impl_a import heraclius_pb2 as pb
from impl_a.catchup import CatchUpMixin
from impl_a.codec import decode, encode
from impl_a.crypto import SigningKey, ed25519_verify, sha256
from impl_a.errors import RemoteViolation
from impl_a.leader import LeaderMixin
from impl_a.manifest import Manifest
from impl_a.rsm import ZERO32, Execution, State, build_header, check_batch_limits
from impl_a.verify import (
    QcCache,
    check_bundle,
    check_client_request,
    decision_signing_bytes,
    header_hash,
    sign_message,
)
from impl_a.viewchange import ViewChangeMixin

AHEAD = 4
POOL_SCAN = 2048
FORWARD_MAX = 1024  # a receiver reads at most this many requests (and bundles) of one Forward
FORWARD_BYTES = 1 << 20  # a sender starts a new Forward past this size (bundles are up to 256 KiB)
POOL_CHECK_MS = 50  # pool timers are seconds long: checking them on every 10 ms tick is wasted work


class Replica(LeaderMixin, ViewChangeMixin, CatchUpMixin):
    """One cluster member's consensus and replicated state."""

    def __init__(self, manifest: Manifest, node_id: str, key: SigningKey, store, now: int,
                 faults: dict | None = None):
        self.m = manifest
        self.me = node_id
        self.node = manifest.nodes[node_id]
        self.cluster = manifest.clusters[self.node.cluster]
        self.members = {n.id: n for n in self.cluster.nodes}
        self.key = key
        self.store = store
        self.now = now
        self.faults = faults or {}
        # testbed censor_client (SPEC 16): keys of the clients whose requests we never propose as leader
        self.censored = {k for k, cid in manifest.clients.items() if cid in self.faults.get("censor_client", ())}
        self.t = manifest.timeouts
        self.lim = manifest.limits
        self.actions: list = []
        self.qc_cache = QcCache()
        self.verified: set[bytes] = set()
        self.state = State(manifest, self.cluster.id)
        self.height = 0
        self.head_hash = ZERO32
        self.view = 0
        self.in_vc = False
        self.queue_index: dict[tuple[str, int], int] = {}
        self.client_index: dict[tuple[bytes, int], int] = {}
        self.counters = {"decisions": 0, "view_changes": 0, "batch_inputs": 0}
        self.last_decision_ms = 0
        # Request pool in arrival order: (client_key, request_id) -> [ClientRequest, arrived, forwarded,
        # censorship timer start, items admitted from our client port] and (client_key, sha256 of the
        # bundle) -> [RequestBundle, ...] (SPEC 12.5).
        self.req_pool: OrderedDict[tuple[bytes, int | bytes], list] = OrderedDict()
        self.pool_items = 0  # requests in the pool, each bundle item counted (max_pending_requests)
        # SPEC 12.5 admission: items per client key admitted from this member's client port, still pooled
        self.own_items: dict[bytes, int] = {}
        self.share = max(1, min(self.lim["max_batch_inputs"],
                                self.lim["max_pending_requests"] // max(1, len(manifest.clients))))
        self.remote_pool: dict[str, dict[int, list]] = {}
        self._reset_height()
        self._init_view_change()
        self._init_catchup()
        self.last_leader_contact = now
        self.last_hb_sent = 0
        self.batch_since: int | None = None
        self._pool_checked = 0
        self._replay()

    # -- helpers ----------------------------------------------------------------------------------
    @property
    def leader(self) -> str:
        return self.cluster.leader(self.view).id

    def is_leader(self) -> bool:
        return self.leader == self.me

    def _send_all(self, msg: pb.PeerMessage) -> None:
        for nid in self.members:
            if nid != self.me:
                self.actions.append(("send", nid, msg))

    def _reject(self, reason: str, peer: str, detail: str = "") -> None:
        self.actions.append(("reject", reason, peer, detail))

    def _evidence(self, node: str, kind: str, detail: str, msgs: list[bytes]) -> None:
        self.actions.append(("evidence", node, kind, detail, msgs))

    def _sign(self, domain: str, msg, field: str = "signature") -> None:
        sign_message(self.key, domain, self.m.network_id, msg, field)
        if self.faults.get("bad_signature"):
            kind = domain.replace("-", "_")  # signing domain -> PeerMessage member name
            setattr(msg, field, self.faults["bad_signature"](kind, getattr(msg, field)))

    def _verify(self, node_id: str, domain: str, msg, field: str = "signature") -> bool:
        from impl_a.verify import message_signature_ok

        node = self.members.get(node_id)
        return node is not None and message_signature_ok(node.ed25519_public, domain, self.m.network_id, msg, field)

    def _reset_height(self) -> None:
        """Forget the in-flight state of the height that was just decided."""
        self.proposals: dict[bytes, tuple[pb.Proposal, Execution, list]] = {}
        self.accepted: dict[int, bytes] = {}
        self.prepares: dict[tuple[int, bytes], dict[str, pb.Prepare]] = {}
        self.prepare_seen: dict[tuple[str, int], pb.Prepare] = {}
        self.commits: dict[bytes, dict[str, pb.Commit]] = {}
        self.commit_seen: dict[str, pb.Commit] = {}
        self.prepared: pb.PreparedCert | None = None
        self.committed_digest: bytes | None = None
        self.own_decision_sig = b""  # the decision signature this node made at this height, if any
        self.future: dict[int, dict[tuple[str, str], tuple[str, pb.PeerMessage]]] = {}
        self.early_proposals: dict[int, tuple[str, pb.Proposal]] = {}
        self.selected: tuple[int, pb.DecisionHeader, pb.Batch] | None = getattr(self, "selected", None)

    # -- restart ----------------------------------------------------------------------------------
    def _replay(self) -> None:
        h = 1
        while True:
            rows = self.store.decisions(h, 256)
            if not rows:
                break
            for data in rows:
                d = pb.Decision()
                d.ParseFromString(data)
                ex = Execution(self.state, d.header.height, qc_cache=self.qc_cache)
                ex.run(d.batch, check=False)
                self._apply(d, ex, replay=True)
                h += 1
        raw = self.store.meta("view")
        if raw:
            self.view = int(raw.decode())
        for name in ("accepted", "prepared"):
            raw = self.store.meta(name)
            if not raw:
                continue
            if name == "accepted":
                p = decode(pb.Proposal, raw)
                if p.height == self.height + 1:
                    self._adopt(p)
            else:
                pc = decode(pb.PreparedCert, raw)
                if pc.proposal.height == self.height + 1:
                    self.prepared = pc
                    self._adopt(pc.proposal, record_accept=False)
        raw = self.store.meta("commit")
        if raw:
            c = decode(pb.Commit, raw)
            if c.height == self.height + 1:
                self.committed_digest = c.digest
                self.commits.setdefault(c.digest, {})[self.me] = c
        raw = self.store.meta("vc_requested")
        if raw:
            self.vc_requested = int(raw.decode())
        raw = self.store.meta("new_view")
        if raw:
            nv = decode(pb.NewView, raw)
            if nv.view == self.view:
                self.installed_nv = nv
        self._resume()

    def _execution(self, height: int) -> Execution:
        """Execution for proposing and voting (the testbed wrong_result fault corrupts only these)."""
        return Execution(self.state, height, self.verified, self.qc_cache,
                         wrong_result="wrong_result" in self.faults)

    def _adopt(self, p: pb.Proposal, record_accept: bool = True) -> bytes:
        ex = self._execution(p.height)
        outputs = ex.run(p.batch, check=False)
        digest = header_hash(p.header)
        self.proposals[digest] = (p, ex, outputs)
        if record_accept:
            self.accepted[p.view] = digest
        return digest

    # -- events -----------------------------------------------------------------------------------
    def tick(self, now: int) -> None:
        self.now = now
        if self.is_leader() and not self.in_vc:
            self._maybe_propose()
            if now - self.last_hb_sent >= self.t["heartbeat_interval"]:
                self.last_hb_sent = now
                self._send_all(pb.PeerMessage(heartbeat=pb.Heartbeat(
                    cluster_id=self.cluster.id, view=self.view, height=self.height, leader_id=self.me)))
        elif not self.in_vc and now - self.last_leader_contact > self.t["heartbeat_timeout"]:
            self._start_view_change(self.view + 1, "heartbeat timeout")
        self._pool_timers()
        self._vc_tick()
        self._sync_tick()
        self.check_timers_armed()

    def _pool_timers(self) -> None:
        now, fwd_ms, cens_ms = self.now, self.t["request_forward"], self.t["censorship"]
        if now - self._pool_checked < POOL_CHECK_MS:
            return
        self._pool_checked = now
        again = []
        # The pool is in arrival order and timers are (re)set in that order, so the oldest entries
        # come first: scanning a bounded prefix keeps a tick cheap with a large pool.
        # SPEC 12.5: the censorship timer of a request runs only while it is among the
        # max_batch_inputs oldest pooled inputs; it starts when the request becomes one of them.
        censored, window = False, self.lim["max_batch_inputs"]
        for scanned, entry in enumerate(self.req_pool.values()):
            if scanned < window:
                if entry[3] is None:
                    entry[3] = now
                elif now - entry[3] > cens_ms:
                    censored = True
            elif scanned >= POOL_SCAN or len(again) >= 256:
                break
            if now - entry[2] > fwd_ms and len(again) < 256:
                entry[2] = now
                again.append(entry[0])
        for per_src in self.remote_pool.values():
            if per_src and now - min(e[1] for e in per_src.values()) > cens_ms:
                censored = True
        if again and not self.is_leader() and not self.in_vc:
            self._forward(again)
        if censored and not self.in_vc:
            self._start_view_change(self.view + 1, "censorship timeout")

    # -- request pool (SPEC 12.5) ----------------------------------------------------------------------
    def entry_done(self, key: tuple, msg) -> bool:
        """A pooled request is done when its id was accepted or is at or below the client's floor; a
        bundle when that holds for every one of its items."""
        if isinstance(key[1], bytes):
            return all(self.state.request_done(key[0], item.request_id) for item in msg.items)
        return self.state.request_done(*key)

    def pool_drop(self, key: tuple) -> None:
        entry = self.req_pool.pop(key, None)
        if entry is not None:
            self.pool_items -= len(entry[0].items) if isinstance(key[1], bytes) else 1
            if entry[4]:
                left = self.own_items.get(key[0], 0) - entry[4]
                if left > 0:
                    self.own_items[key[0]] = left
                else:
                    self.own_items.pop(key[0], None)

    def admits(self, client_key: bytes, n: int, reserved: int = 0) -> bool:
        """SPEC 12.5 admission from the client port: the pool has room for n more items and the
        client's own pooled items stay within its share (reserved: items already let in this turn)."""
        return (self.pool_room(n + reserved)
                and self.own_items.get(client_key, 0) + reserved + n <= self.share)

    def pool_room(self, n: int) -> bool:
        return self.pool_items + n <= self.lim["max_pending_requests"]

    def _pool_add(self, key: tuple, msg, n: int, forward: bool, own: bool = False) -> bool:
        if key in self.req_pool or self.entry_done(key, msg):
            return False
        if not self.pool_room(n):
            self._reject("overloaded", "client", "request pool full")
            return False
        self.req_pool[key] = [msg, self.now, self.now, None, n if own else 0]
        self.pool_items += n
        if own:
            self.own_items[key[0]] = self.own_items.get(key[0], 0) + n
        if self.batch_since is None:
            self.batch_since = self.now
        if not self.is_leader() and not self.in_vc:
            if forward:
                self._forward([msg])
        elif self.is_leader():
            self._maybe_propose()
        return True

    def on_client_request(self, req: pb.ClientRequest, forward: bool = True, own: bool = False) -> bool:
        """A request validated by the client port (check_client_request passed); True if pooled."""
        if self._pool_add((req.client_key, req.request_id), req, 1, forward, own):
            self.verified.add(header_hash(req))
            return True
        return False

    def on_client_bundle(self, b: pb.RequestBundle, forward: bool = True, digest: bytes | None = None,
                         own: bool = False) -> bool:
        """A bundle validated as a whole (check_bundle passed): one pool entry; True if pooled."""
        digest = digest or sha256(encode(b))
        if self._pool_add((b.client_key, digest), b, len(b.items), forward, own):
            self.verified.add(digest)
            return True
        return False

    def on_client_requests(self, msgs: list) -> None:
        """Requests and bundles that arrived together: one Forward carries all the new ones (SPEC 12.5
        lets them be grouped), so the leader decodes one message instead of one per request."""
        fresh = [m for m in msgs if (self.on_client_bundle(m, forward=False, own=True)
                                     if isinstance(m, pb.RequestBundle)
                                     else self.on_client_request(m, forward=False, own=True))]
        if fresh and not self.is_leader() and not self.in_vc:
            self._forward(fresh)

    def _forward(self, msgs: list) -> None:
        """Send requests and bundles to the leader, in Forwards of bounded count and size."""
        fw, size = pb.Forward(), 0
        room = min(FORWARD_BYTES, self.lim["max_message_bytes"] - 1024)  # SPEC 12.5: split to fit a message
        for m in msgs:
            n = m.ByteSize() + 8
            if (len(fw.requests) + len(fw.bundles) >= FORWARD_MAX or size + n > room) and size:
                self.actions.append(("send", self.leader, pb.PeerMessage(forward=fw)))
                fw, size = pb.Forward(), 0
            (fw.bundles if isinstance(m, pb.RequestBundle) else fw.requests).append(m)
            size += n
        if size:
            self.actions.append(("send", self.leader, pb.PeerMessage(forward=fw)))

    def on_remote(self, cd: pb.CompactDecision) -> None:
        """A compact decision already verified by the queue puller (SPEC 10 points 1-5)."""
        src = cd.header.cluster_id
        if cd.leaf.seq < self.state.next_in_of(src):
            return
        per = self.remote_pool.setdefault(src, {})
        if cd.leaf.seq not in per and len(per) < 4096:
            per[cd.leaf.seq] = [cd, self.now]
            if self.batch_since is None:
                self.batch_since = self.now
            if self.is_leader():
                self._maybe_propose()

    def on_link_up(self, peer: str) -> None:
        """Our outbound link to a member (re)connected: it may have restarted and lost messages."""
        if peer in self.members and peer != self.me:
            self.announce(peer)

    def on_message(self, sender: str, msg: pb.PeerMessage) -> None:
        kind = msg.WhichOneof("body")
        body = getattr(msg, kind)
        if sender not in self.members:
            self._reject("unknown_node", sender, kind)
            return
        cid = getattr(body, "cluster_id", None)
        if cid is not None and cid != self.cluster.id:
            self._reject("wrong_cluster", sender, kind)
            return
        handler = getattr(self, "_on_" + kind, None)
        if handler is None:
            self._reject("malformed", sender, f"unexpected {kind}")
            return
        try:
            handler(sender, body)
        except RemoteViolation as exc:
            self._reject(exc.reason, sender, exc.detail)

    def _buffer(self, sender: str, kind: str, h: int, msg) -> bool:
        """Keep a message for a height above height+1 (bounded); True if it was a future message."""
        if h <= self.height + 1:
            return False
        if h <= self.height + AHEAD:
            self.future.setdefault(h, {})[(kind, sender)] = (kind, msg)
        self._want_height(sender, h - 1)
        return True

    # -- normal case ------------------------------------------------------------------------------
    def _on_heartbeat(self, sender: str, hb: pb.Heartbeat) -> None:
        if hb.view == self.view and sender == self.leader and hb.leader_id == sender:
            self.last_leader_contact = self.now
            if self.awaiting_new_view:  # the leader runs the view we wait in: ask for its NewView
                self._ask_for_new_view(hb.view, [sender])
        elif hb.view > self.view and sender == self.cluster.leader(hb.view).id:
            self._ask_for_new_view(hb.view, [sender])
        if hb.height > self.height:
            self._want_height(sender, hb.height)

    def _on_forward(self, sender: str, fw: pb.Forward) -> None:
        for req in fw.requests[:FORWARD_MAX]:
            try:
                h = header_hash(req)
                if h not in self.verified:
                    check_client_request(self.m, req, self.cluster.id)
                self.on_client_request(req)
            except RemoteViolation as exc:
                self._reject(exc.reason, sender, "forwarded request: " + exc.detail)
        for b in fw.bundles[:FORWARD_MAX]:
            try:
                h = sha256(encode(b))
                if h not in self.verified:
                    check_bundle(self.m, b, self.cluster.id)
                self.on_client_bundle(b, digest=h)
            except RemoteViolation as exc:
                self._reject(exc.reason, sender, "forwarded bundle: " + exc.detail)

    def _on_proposal(self, sender: str, p: pb.Proposal) -> None:
        if p.height <= self.height:
            self._reject("stale", sender, f"proposal for height {p.height}")
            return
        if self._buffer(sender, "proposal", p.height, p):
            return
        if (p.view > self.view or (p.view == self.view and self.in_vc)) and p.view <= self.view + AHEAD:
            self.early_proposals[p.view] = (sender, p)  # its NewView may still be on the way
            if (p.view > self.view or self.awaiting_new_view) and sender == self.cluster.leader(p.view).id:
                self._ask_for_new_view(p.view, [sender])
            return
        if p.view != self.view or self.in_vc:
            self._reject("stale" if p.view <= self.view else "out_of_order", sender, f"proposal of view {p.view}")
            return
        leader = self.cluster.leader(p.view).id
        if p.leader_id != leader or sender != leader:
            self._reject("not_leader", sender, "proposal not from the leader")
            return
        if not self._verify(leader, "proposal", p):
            self._invalid_proposal(p, "bad_signature", "proposal signature")
            return
        digest = header_hash(p.header)
        if p.view in self.accepted:
            if self.accepted[p.view] != digest:
                first = self.proposals[self.accepted[p.view]][0]
                self._evidence(leader, "equivocation", f"two proposals for view {p.view} height {p.height}",
                               [encode(first), encode(p)])
                self._start_view_change(self.view + 1, "leader equivocated")
            return
        if (self.selected and self.selected[0] == p.height
                and (encode(p.header) != encode(self.selected[1]) or encode(p.batch) != encode(self.selected[2]))):
            self._invalid_proposal(p, "invalid_proposal", "proposal differs from the NewView selection")
            return
        try:
            outputs, ex = self._validate_batch(p)
        except RemoteViolation as exc:
            self._invalid_proposal(p, "invalid_proposal", exc.detail or exc.reason)
            return
        self.last_leader_contact = self.now
        self.proposals[digest] = (p, ex, outputs)
        self.accepted[p.view] = digest
        self._vote(p, digest)

    def _validate_batch(self, p: pb.Proposal) -> tuple[list, Execution]:
        check_batch_limits(self.m, p.batch)
        ex = self._execution(p.height)
        outputs = ex.run(p.batch, check=True)
        header = build_header(self.cluster.id, p.height, self.head_hash, p.batch, outputs)
        if encode(header) != encode(p.header):
            raise RemoteViolation("invalid_proposal", "header does not match re-execution")
        return outputs, ex

    def _invalid_proposal(self, p: pb.Proposal, reason: str, detail: str) -> None:
        self._reject(reason, p.leader_id, detail)
        self._evidence(p.leader_id, "invalid_proposal", detail, [encode(p)])
        self._start_view_change(self.view + 1, "invalid proposal")

    def _vote(self, p: pb.Proposal, digest: bytes, persisted: bool = False) -> None:
        prep = pb.Prepare(cluster_id=self.cluster.id, view=p.view, height=p.height, digest=digest, node_id=self.me)
        self._sign("prepare", prep)
        if not persisted:
            self.actions.append(("persist", [], [("accepted", encode(p))]))
        self.prepares.setdefault((p.view, digest), {})[self.me] = prep
        self.prepare_seen[(self.me, p.view)] = prep
        self._send_all(pb.PeerMessage(prepare=prep))
        self._check_prepared(p.view, digest)

    def _on_prepare(self, sender: str, pr: pb.Prepare) -> None:
        if pr.height <= self.height:
            self._reject("stale", sender, "prepare")
            return
        if self._buffer(sender, "prepare", pr.height, pr):
            return
        if pr.node_id != sender or len(pr.digest) != 32 or not self.view <= pr.view <= self.view + AHEAD:
            self._reject("malformed" if pr.node_id != sender else "stale", sender, "prepare")
            return
        if not self._verify(sender, "prepare", pr):
            self._reject("bad_signature", sender, "prepare")
            return
        seen = self.prepare_seen.get((sender, pr.view))
        if seen is not None:
            if seen.digest != pr.digest:
                self._evidence(sender, "equivocation", f"two prepares for view {pr.view} height {pr.height}",
                               [encode(seen), encode(pr)])
            return
        self.prepare_seen[(sender, pr.view)] = pr
        self.prepares.setdefault((pr.view, pr.digest), {})[sender] = pr
        self._note_higher_view(sender, pr.view)
        self._check_prepared(pr.view, pr.digest)

    def _check_prepared(self, view: int, digest: bytes) -> None:
        if self.accepted.get(view) != digest or view != self.view or self.in_vc:
            return
        votes = self.prepares.get((view, digest), {})
        if len(votes) < self.cluster.q or (self.prepared and self.prepared.proposal.view == view):
            return
        p = self.proposals[digest][0]
        cert = pb.PreparedCert(proposal=p, prepares=[votes[n] for n in sorted(votes, key=str.encode)][:self.cluster.q])
        self.prepared = cert
        sig = self.key.sign(decision_signing_bytes(self.m.network_id, p.header))
        if self.faults.get("bad_signature"):
            sig = self.faults["bad_signature"]("commit", sig)
        commit = pb.Commit(cluster_id=self.cluster.id, view=view, height=p.height, digest=digest, node_id=self.me,
                           decision_signature=sig)
        self.committed_digest = digest
        self.own_decision_sig = sig
        self.actions.append(("persist", [], [("prepared", encode(cert)), ("commit", encode(commit))]))
        self.commits.setdefault(digest, {})[self.me] = commit
        self._send_all(pb.PeerMessage(commit=commit))
        self._try_decide(digest)

    def _on_commit(self, sender: str, c: pb.Commit) -> None:
        if c.height <= self.height:
            self._reject("stale", sender, "commit")
            return
        if self._buffer(sender, "commit", c.height, c):
            return
        if c.node_id != sender or len(c.digest) != 32 or len(c.decision_signature) != 64:
            self._reject("malformed", sender, "commit")
            return
        seen = self.commit_seen.get(sender)
        if seen is not None and seen.digest == c.digest:
            return
        if seen is not None and seen.view == c.view:  # other views: legitimate (SPEC 12.6)
            self._evidence(sender, "equivocation", f"two commits for view {c.view} height {c.height}",
                           [encode(seen), encode(c)])
        if seen is not None:  # keep one commit per sender so a liar cannot grow our tables
            self.commits.get(seen.digest, {}).pop(sender, None)
        self.commit_seen[sender] = c
        self.commits.setdefault(c.digest, {})[sender] = c
        self._note_higher_view(sender, c.view)
        self._try_decide(c.digest)

    def _try_decide(self, digest: bytes) -> None:
        commits = self.commits.get(digest, {})
        if len(commits) < self.cluster.q:
            return
        if digest not in self.proposals:
            for nid in commits:
                if nid != self.me:
                    self._want_height(nid, self.height + 1, soft=True)
            return
        p, ex, outputs = self.proposals[digest]
        msg = decision_signing_bytes(self.m.network_id, p.header)
        good = []
        # Our own decision signature was made here a moment ago; only the testbed bad_signature fault
        # can make it invalid, and then it is checked like the others.
        trust_own = "bad_signature" not in self.faults
        for nid in sorted(commits, key=str.encode):
            c = commits[nid]
            if ((trust_own and nid == self.me and c.decision_signature == self.own_decision_sig)
                    or ed25519_verify(self.members[nid].ed25519_public, msg, c.decision_signature)):
                good.append(pb.NodeSignature(node_id=nid, signature=c.decision_signature))
            else:
                del commits[nid]
                self.commit_seen.pop(nid, None)
                self._reject("bad_signature", nid, "decision signature")
        if len(good) < self.cluster.q:
            return
        d = pb.Decision(header=p.header, batch=p.batch, outputs=outputs,
                        qc=pb.QuorumCert(signatures=good[:self.cluster.q]))
        same_view = sum(1 for c in commits.values() if c.view == self.view)
        self._commit_decision(d, ex)
        if same_view >= self.cluster.q:
            self._end_lone_suspicion()

    def _commit_decision(self, d: pb.Decision, ex: Execution) -> None:
        self.actions.append(("persist", [(d.header.height, encode(d))],
                             [("accepted", None), ("prepared", None), ("commit", None)]))
        self._apply(d, ex)
        self.actions.append(("decided", d))
        future = self.future.get(self.height + 1, {})
        self._reset_height()
        if self.selected and self.selected[0] <= self.height:
            self.selected = None
        for (kind, sender), (_, msg) in list(future.items()):
            self.on_message(sender, pb.PeerMessage(**{kind: msg}))
        self._after_decide()
        if self.is_leader():
            self._maybe_propose()

    def _apply(self, d: pb.Decision, ex: Execution, replay: bool = False) -> None:
        ex.apply()
        self.height = d.header.height
        self.head_hash = header_hash(d.header)
        self.counters["decisions"] += 1
        self.counters["batch_inputs"] += len(d.batch.inputs)
        self.last_decision_ms = self.now
        if len(self.verified) > 200000:
            self.verified.clear()
        for leaf in d.outputs:
            self.queue_index[(leaf.destination, leaf.seq)] = self.height
            for r in leaf.responses:
                self.client_index[(bytes.fromhex(leaf.destination[7:]), r.request_id)] = self.height
        for inp in d.batch.inputs:
            which = inp.WhichOneof("kind")
            if which == "client":
                self.pool_drop((inp.client.client_key, inp.client.request_id))
            elif which == "bundle" and self.req_pool:
                self.pool_drop((inp.bundle.client_key, sha256(encode(inp.bundle))))
        if len(self.req_pool) <= POOL_SCAN or self.height % 64 == 0:
            for key in [k for k, e in self.req_pool.items() if self.entry_done(k, e[0])]:
                self.pool_drop(key)
        for src, per in self.remote_pool.items():
            nxt = self.state.next_in_of(src)
            for seq in [s for s in per if s < nxt]:
                del per[seq]
        # Inputs that arrived while this height was in flight have waited long enough.
        self.batch_since = None
