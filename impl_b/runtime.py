"""The node runtime: the consensus thread that drives the pure Replica, executes its actions
(durable writes, sends), serves sync and decision queues, pulls remote queues and answers clients.

Threads: the I/O loop (ioloop.py) and the admin HTTP server feed this thread through a queue;
everything that touches consensus state runs here, under `self.lock` (the admin reads under it).
"""

import collections
import contextlib
import heapq
import os
import sys
import threading
import time

from . import codec
from .actions import Decided, Evidence, Persist, Reject, Send
from .binding import ClientBindings
from .checks import Checker, audit_paths, build_compact, client_destination, sign_message
from .codec import encode
from .consensus import Replica
from .crypto import backend_name
from .logs import now_ms
from .queues import QueueMixin
from .rsm import execute
from .storage import StorageFailure

# Timer resolution of the consensus work. Every SPEC timer is >= 250 ms; batch_wait deadlines and
# testbed-delayed messages have their own exact deadlines (_next_due), so a tick every 50 ms (not
# 20) only coarsens the pool and waiter scans, which are rate-limited to 50 ms anyway.
TICK_MS = 50
DECISION_CACHE = (4096, 32 << 20)  # decisions, bytes
REPLY_CACHE_BYTES = 8 << 20
CODE_NAMES = {1: "malformed", 2: "bad_signature", 3: "unauthorised", 4: "wrong_cluster", 5: "too_large",
              6: "stale", 7: "overloaded", 8: "timeout"}
ERROR_CODES = {"malformed": 1, "non_canonical": 1, "bad_signature": 2, "unauthorised_client": 3,
               "wrong_cluster": 4, "oversized": 5, "stale": 6, "overloaded": 7}


class Runtime(QueueMixin):
    """Everything of one running node except sockets and HTTP."""

    def __init__(self, manifest, node_id: str, signer, store, log, faults=None):
        self.m = manifest
        self.me = node_id
        self.info = manifest.nodes[node_id]
        self.cid = self.info.cluster
        self.cluster = manifest.clusters[self.cid]
        self.signer = signer
        self.store = store
        self.log = log
        self.faults = faults
        self.checker = Checker(manifest)
        self.lock = threading.RLock()
        # Event intake: a deque (atomic append/popleft) and an Event that is only set while this
        # thread sleeps, instead of a queue.Queue taking a lock and notifying per message.
        self.events: collections.deque = collections.deque()
        self._wakeup = threading.Event()
        self._sleeping = False
        self._next_tick = 0
        self.io = None
        self.started_ms = now_ms()
        self.t0 = time.monotonic()
        self.replica = Replica(manifest, node_id, signer, self.checker, now=self.now())
        self.replica.wrong_results = bool(faults and faults.active("wrong_result") and self.cluster.role == "shard")
        self.replica.group_forwards = True  # one Forward per batch of events, not one per request
        if faults is not None:
            self.replica.censored = faults.censored_keys(manifest)
        self.decisions: dict[int, object] = {}  # recent decisions (bounded: DECISION_CACHE), else the store
        self._dec_size: dict[int, int] = {}
        self._dec_bytes = 0
        self._reply_bytes = 0
        self.paths: dict[int, list] = {}  # height -> audit paths of its outputs (bounded)
        self.replies: dict[tuple, bytes] = {}  # (height, client_key) -> encoded ClientReply (bounded)
        self.answers: dict[tuple, int] = {}  # (client_key, request_id) -> height of the answer
        self.waiters: dict[tuple, list] = {}  # (client_key, request_id) -> [(link_id, deadline)]
        self.last_decision_ms = 0
        self.counters = {"decisions": 0, "view_changes": 0, "client_requests": 0, "client_replies": 0,
                         "client_errors": 0, "batch_inputs": 0, "client_bundles": 0}
        self.client_errors: dict[str, int] = {}
        self.peer_up: dict[str, bool] = {}
        self.peer_seen: dict[str, int] = {}
        self.delayed: list = []
        self.last_waiter_scan = 0
        self.sessions = ClientBindings()  # SPEC 13.1 session binding (client port)
        self.closed_links: set[int] = set()  # client links closed since the last waiter scan
        self.stopping = False
        self._init_queues()

    def now(self) -> int:
        return int((time.monotonic() - self.t0) * 1000)

    def storage_failed(self, op: str, text: str) -> None:
        """SPEC 12.8 fail-stop, called by the store on any engine error, from whichever thread: stop
        at once (nothing more is sent, voted or reported), one `storage_failed` line, exit 5."""
        self.stopping = True
        self.log.log("error", "storage_failed", f"storage {op} failed: {text}", op=op, error=text)
        with contextlib.suppress(OSError, ValueError):
            print(f"storage failure ({op}): {text}", file=sys.stderr, flush=True)
        os._exit(5)

    # ------------------------------------------------------------ startup

    def restore(self) -> None:
        view, active, decisions, inflight, new_view = self.store.load()
        self.replica.restore(view, active, decisions, inflight, new_view, now=self.now(), asked=self.store.asked)
        for d in decisions:
            self._index(d)
        self.counters["decisions"] = 0

    def _cache_decision(self, h: int, dec) -> None:
        """Keep recent decisions in memory up to DECISION_CACHE (count and bytes: big values must not
        make the cache hold gigabytes); older ones are read from the store."""
        n = len(encode(dec))
        self.decisions[h] = dec
        self._dec_size[h] = n
        self._dec_bytes += n
        while len(self.decisions) > 1 and (len(self.decisions) > DECISION_CACHE[0] or self._dec_bytes > DECISION_CACHE[1]):
            old = next(iter(self.decisions))
            del self.decisions[old]
            self._dec_bytes -= self._dec_size.pop(old)

    def _index(self, dec) -> None:
        h = dec.header.height
        self._cache_decision(h, dec)
        for o in dec.outputs:
            if o.destination.startswith("client:"):
                for r in o.responses:
                    self.answers[(bytes.fromhex(o.destination[7:]), r.request_id)] = h
            else:
                self.queue_index.setdefault(o.destination, {})[o.seq] = h

    # ------------------------------------------------------------ event intake (any thread)

    def post(self, *ev) -> None:
        self.events.append(ev)
        if self._sleeping:
            self._wakeup.set()

    def run(self) -> None:
        """Consensus thread main loop (the two-thread mode; node.py normally drives `step` from
        the I/O thread instead)."""
        events = self.events
        while not self.stopping:
            if not events:
                due = self._next_due()
                # Announce the sleep before the last look at the deque: a post() after that look
                # sees the flag and sets the Event, so no event waits for the timeout.
                self._sleeping = True
                if not events:
                    self._wakeup.wait(max(due - self.now(), 1) / 1000)
                self._sleeping = False
                self._wakeup.clear()
            self.step()

    def step(self) -> int:
        """Handle up to 257 queued events, flush grouped Forwards, run the timers when due.

        Returns the milliseconds until this must run again with no new event (0: events wait)."""
        events = self.events
        with self.lock:
            for _ in range(257):
                if not events:
                    break
                self._handle(events.popleft())
            if self.replica.forward_buf:
                self._execute(self.replica.flush_forwards())
            now = self.now()
            if now >= self._next_due():
                self._next_tick = now + TICK_MS
                self._tick(now)
            if events:
                return 0
            return max(self._next_due() - self.now(), 1)

    def _next_due(self) -> int:
        due = self._next_tick
        batch_due = self.replica.proposal_due()
        if batch_due is not None:
            due = min(due, batch_due)
        if self.delayed:
            due = min(due, self.delayed[0][0])
        return due

    def _handle(self, ev) -> None:
        kind = ev[0]
        now = self.now()
        try:
            if kind == "peer":
                _k, link_id, node, pm = ev
                self.peer_seen[node] = now_ms()
                self._on_peer(link_id, node, pm, now)
            elif kind == "client":
                self._on_client(ev[1], ev[2], now)
            elif kind == "reject":
                self.log.reject(ev[1], ev[2], ev[3])
            elif kind == "closed":  # a client-port connection closed: free what it held
                self.sessions.closed(ev[1])
                self.closed_links.add(ev[1])
            elif kind == "link":
                self.peer_up[ev[1]] = ev[2]
                self.log.log("info", "peer_up" if ev[2] else "peer_down", f"link to {ev[1]}", peer=ev[1])
                if ev[2]:
                    self._execute(self.replica.on_link_up(ev[1], now))
        except StorageFailure:
            raise  # fail-stop, never a peer's bad input (SPEC 12.8)
        except Exception as e:  # bad input must never kill the node; count it and go on
            self.log.reject("malformed", str(ev[2]) if len(ev) > 2 else "?", f"handler error {type(e).__name__}: {e}")
            self.log.log("error", "handler_error", repr(e))

    def _tick(self, now: int) -> None:
        self._execute(self.replica.on_tick(now))
        self._tick_queues(now)
        self._expire_waiters(now)
        while self.delayed and self.delayed[0][0] <= now:
            _t, _s, to, data = heapq.heappop(self.delayed)
            if isinstance(to, tuple):  # ("conn", link_id): a delayed reply
                self.io.send_conn(to[1], data)
            else:
                self.io.send_node(to, data)

    # ------------------------------------------------------------ actions

    def _execute(self, acts: list) -> None:
        written = -1  # index of the last Persist already written as part of an earlier group
        for i, a in enumerate(acts):
            if isinstance(a, Send):
                self._send(a.to, a.msg)
            elif isinstance(a, Persist):
                if i > written:
                    written = self._persist_group(acts, i)
            elif isinstance(a, Decided):
                self._on_decided(a.decision)
            elif isinstance(a, Reject):
                self.log.reject(a.reason, a.peer, a.detail)
            elif isinstance(a, Evidence):
                self.log.add_evidence(a.node, a.kind, a.detail, a.messages)

    def _persist_group(self, acts: list, first: int) -> int:
        """Write acts[first] and every later Persist met before the next Send in one transaction.

        Making a record durable earlier than required is always safe, and one fsync then covers
        e.g. a decision and the leader's next proposal. Returns the index of the last one written."""
        records, last = [], first
        for j in range(first, len(acts)):
            b = acts[j]
            if isinstance(b, Send):
                break
            if isinstance(b, Persist):
                records.append(b.record)
                last = j
        self.store.persist_all(records)
        for rec in records:
            if "view" in rec:
                v, active = rec["view"]
                self.log.log("info", "view_change", f"view {v} {'active' if active else 'entered'}", view=v)
        return last

    def _send(self, to: str, pm) -> None:
        if self.faults is None:
            self.io.send_node(to, encode(pm))
            return
        for delay, data in self.faults.outgoing(to, pm, self._equivocal):
            if delay:
                heapq.heappush(self.delayed, (self.now() + delay, id(data), to, data))
            else:
                self.io.send_node(to, data)

    def reply(self, link_id: int, node: str, pm) -> None:
        """A response on the connection its request came in on (SPEC 13), through the testbed
        fault rules like every other outgoing peer message (SPEC 16)."""
        if self.faults is None:
            self.io.send_conn(link_id, encode(pm))
            return
        for delay, data in self.faults.outgoing(node, pm):
            if delay:
                heapq.heappush(self.delayed, (self.now() + delay, id(data), ("conn", link_id), data))
            else:
                self.io.send_conn(link_id, data)

    def _equivocal(self, p):
        """testbed `equivocate`: a second valid proposal, its batch without the last input."""
        if len(p.batch.inputs) < 2:
            return None
        r = self.replica
        alt = p.copy(batch=codec.Batch(inputs=p.batch.inputs[:-1]), signature=b"")
        alt.header = execute(r.state, self.m, alt.batch, alt.height, r.head_hash).header
        sign_message(self.signer, self.m.network_id, alt)
        return alt

    def _on_decided(self, dec) -> None:
        self._index(dec)
        self.counters["decisions"] += 1
        self.counters["batch_inputs"] += len(dec.batch.inputs)
        self.counters["view_changes"] = self.replica.view_changes
        self.last_decision_ms = now_ms()
        h = dec.header.height
        self.log.log("debug", "decided", f"height {h}", height=h, inputs=len(dec.batch.inputs))
        for o in dec.outputs:
            if o.destination.startswith("client:"):
                ck = bytes.fromhex(o.destination[7:])
                # SPEC 14.3 grouped answers: one ClientReply per connection for this leaf, however
                # many of its requests wait on that connection.
                links: dict[int, int] = {}
                for r in o.responses:
                    for link_id, _dl in self.waiters.pop((ck, r.request_id), []):
                        links.setdefault(link_id, r.request_id)
                for link_id, rid in links.items():
                    self._answer(link_id, ck, rid)
        self._serve_held(self.now())

    # ------------------------------------------------------------ peers

    def _on_peer(self, link_id: int, node: str, pm, now: int) -> None:
        kind = pm.which()
        if kind == "sync_request":
            self._serve_sync(link_id, node, pm.sync_request)
        elif kind == "queue_pull":
            self._serve_pull(link_id, node, pm.queue_pull, now)
        elif kind == "queue_batch":
            self._on_queue_batch(node, pm.queue_batch, now)
        elif node in self.cluster.members:
            self._execute(self.replica.on_peer(node, pm, now))
        else:
            self.log.reject("wrong_cluster", node, f"{kind} from a node of another cluster")

    def _serve_sync(self, link_id: int, node: str, req) -> None:
        if req.cluster_id != self.cid or node not in self.cluster.members:
            self.log.reject("wrong_cluster", node, "sync request")
            return
        top = self.replica.height
        out = self.reply_items(lambda h: self.decision(h) if 1 <= h <= top else None, req.from_height, req.max_count)
        self.reply(link_id, node, codec.PeerMessage(sync_response=codec.SyncResponse(cluster_id=self.cid,
                                                                                  decisions=out)))

    def compact(self, h: int, dest: str):
        """Compact decision of height h for dest, with the decision's audit paths computed once."""
        paths = self.paths.get(h)
        dec = self.decision(h)
        if paths is None:
            paths = self.paths[h] = audit_paths(dec)
            while len(self.paths) > 512:
                del self.paths[next(iter(self.paths))]
        return build_compact(dec, dest, paths=paths)

    def decision(self, h: int):
        d = self.decisions.get(h)
        if d is None:
            d = self.store.decision(h)
        return d

    # ------------------------------------------------------------ clients

    def _on_client(self, link_id: int, cm, now: int) -> None:
        """SPEC 14.3 in the table's order: cluster, key (and the session's binding), shape, limits,
        admission (12.5 share, 13.1 sessions) before the signature, then the signature."""
        kind = cm.which()
        req = getattr(cm, kind)
        if kind == "submit_bundle":
            self._on_bundle(link_id, req, now)
            return
        reason = self.checker.request_precheck(req, self.cid) or self._binding_reason(link_id, req.client_key)
        if not reason and kind == "submit" and not self._known(req) and not self.replica.admits(req.client_key):
            reason = "overloaded"
        reason = reason or self.checker.signature_reason(req)
        if reason:
            self.log.reject(reason, "client", f"client {kind}")
            self._client_error(link_id, ERROR_CODES.get(reason, 1), req.request_id, reason)
            return
        if not self._bind(link_id, req.client_key, [req.request_id]):
            return
        key = (req.client_key, req.request_id)
        if kind == "submit":
            self.counters["client_requests"] += 1
        if key in self.answers:
            self._answer(link_id, *key)
            return
        if self.replica.request_below_window(req):
            self._client_error(link_id, 6, req.request_id, "request id below the dedup window")
            return
        if kind == "submit":
            self._execute(self.replica.on_request(req, now))
        self.waiters.setdefault(key, []).append((link_id, now + self.m.timeouts["client_timeout"]))

    def _known(self, req) -> bool:
        """Already answered, stale or pooled: a resend takes no new room, so admission passes."""
        return ((req.client_key, req.request_id) in self.answers or self.replica.request_below_window(req)
                or self.replica.pooled(req))

    def _binding_reason(self, link_id: int, ck: bytes) -> str | None:
        bound = self.sessions.bound.get(link_id)
        return "unauthorised_client" if bound is not None and bound != ck else None

    def _bind(self, link_id: int, ck: bytes, rids: list) -> bool:
        """Bind the session to `ck` on its first request that passed the signature (SPEC 13.1); the
        65th session of one key is answered OVERLOADED and closed (connection_limit)."""
        verdict = self.sessions.bind(link_id, ck)
        if verdict == "new":
            self.io.mark_bound(link_id)
        elif verdict == "full":
            self.log.reject("connection_limit", "client", "65th session of one client key")
            for rid in rids:
                self._client_error(link_id, 7, rid, "too many sessions for this client key")
            self.io.close_conn(link_id, flush=True)
            return False
        return True

    def _on_bundle(self, link_id: int, b, now: int) -> None:
        """SPEC 14.6: a bundle is checked as a whole; its items are answered one by one (errors) or
        by leaf (answers); the outstanding ones go to the pool as one entry."""
        reason = self.checker.bundle_precheck(b, self.cid) or self._binding_reason(link_id, b.client_key)
        ck = b.client_key
        answered, stale, outstanding = [], [], []
        if not reason:
            for it in b.items:
                if (ck, it.request_id) in self.answers:
                    answered.append(it.request_id)
                elif self.replica.id_below_window(ck, it.request_id):
                    stale.append(it.request_id)
                else:
                    outstanding.append(it.request_id)
            if outstanding and not self.replica.pooled(b) and not self.replica.admits(ck, len(b.items)):
                self.log.reject("overloaded", "client", "client share or request pool full")
                self._answer_items(link_id, ck, answered, stale)
                for rid in outstanding:
                    self._client_error(link_id, 7, rid, "client share or request pool full")
                return
            reason = self.checker.signature_reason(b)
        if reason:
            self.log.reject(reason, "client", "client bundle")
            for rid in [it.request_id for it in b.items] or [0]:
                self._client_error(link_id, ERROR_CODES.get(reason, 1), rid, reason)
            return
        if not self._bind(link_id, ck, [it.request_id for it in b.items]):
            return
        self.counters["client_bundles"] += 1
        self.counters["client_requests"] += len(b.items)
        self._answer_items(link_id, ck, answered, stale)
        if not outstanding:
            return
        self._execute(self.replica.on_bundle(b, now))
        deadline = now + self.m.timeouts["client_timeout"]
        for rid in outstanding:
            self.waiters.setdefault((ck, rid), []).append((link_id, deadline))

    def _answer_items(self, link_id: int, ck: bytes, answered: list, stale: list) -> None:
        leaves: set = set()
        for rid in answered:
            h = self.answers[(ck, rid)]
            if h not in leaves:  # one reply per leaf, however many items it answers
                leaves.add(h)
                self._answer(link_id, ck, rid)
        for rid in stale:
            self._client_error(link_id, 6, rid, "request id below the dedup window")

    def _answer(self, link_id: int, ck: bytes, rid: int) -> None:
        # Every request of one client key in a decision is answered with the same compact decision
        # (one leaf per client): encode it once per decision, not once per waiting request.
        key = (self.answers[(ck, rid)], ck)
        data = self.replies.get(key)
        if data is None:
            cd = self.compact(key[0], client_destination(ck))
            if self.faults is not None and self.faults.active("false_client_response"):
                cd = codec.decode("CompactDecision", encode(cd))
                for r in cd.leaf.responses:
                    r.value = r.value + b"!"
                codec.touch(cd)
            data = self.replies[key] = encode(codec.ClientReply(answer=cd))
            self._reply_bytes += len(data)
            while len(self.replies) > 1 and (len(self.replies) > 256 or self._reply_bytes > REPLY_CACHE_BYTES):
                self._reply_bytes -= len(self.replies.pop(next(iter(self.replies))))
        self.counters["client_replies"] += 1
        self.io.send_conn(link_id, data)

    def _client_error(self, link_id: int, code: int, rid: int, msg: str) -> None:
        self.counters["client_errors"] += 1
        name = CODE_NAMES.get(code, "malformed")
        self.client_errors[name] = self.client_errors.get(name, 0) + 1
        err = codec.ClientError(code=code, request_id=rid, message=msg)
        self.io.send_conn(link_id, encode(codec.ClientReply(error=err)))

    def _expire_waiters(self, now: int) -> None:
        if not self.waiters:
            self.closed_links.clear()
            return
        if now - self.last_waiter_scan < 50:
            return
        self.last_waiter_scan = now
        closed, self.closed_links = self.closed_links, set()
        for key in list(self.waiters):
            keep = []
            for link_id, dl in self.waiters[key]:
                if link_id in closed:
                    continue
                if dl <= now:
                    self._client_error(link_id, 8, key[1], "no decision in time")
                else:
                    keep.append((link_id, dl))
            if keep:
                self.waiters[key] = keep
            else:
                del self.waiters[key]

    # ------------------------------------------------------------ status

    def status(self) -> dict:
        r = self.replica
        peers = []
        for n in (self.io.dial_nodes if self.io else []):
            peers.append({"node_id": n, "cluster_id": self.m.nodes[n].cluster,
                          "connected": bool(self.io.connected(n)), "last_seen_ms": self.peer_seen.get(n, 0)})
        self.counters["view_changes"] = r.view_changes
        return {
            "node_id": self.me, "cluster_id": self.cid, "role": self.cluster.role, "implementation": "impl_b",
            "crypto_backend": backend_name(),
            "codec": "impl_b wirecodec (own canonical proto3 codec)", "network_id": self.m.network_id,
            "view": r.view, "leader": r.leader, "in_view_change": r.in_vc, "height": r.height,
            "head_hash": r.head_hash.hex(), "last_decision_ms": self.last_decision_ms,
            "started_ms": self.started_ms, "peers": peers,
            "queues": {"next_in": {s: r.state.in_seq(s) for s in self.m.other_role_clusters(self.cid)},
                       "next_out": {d: s for d, s in r.state.next_out.items()}},
            "pending": {"requests": r.pool_items, "remote": sum(len(p) for p in r.remote.values())},
            "counters": dict(self.counters), "rejected": dict(self.log.rejected),
            "byzantine_evidence": list(self.log.evidence),
            "testbed_faults": self.faults.describe() if self.faults else [],
            "impl_b_debug": {"sync_to": r.sync_to, "accepted": r.accepted is not None, "requests": len(r.requests),
                             "remote": {s: len(p) for s, p in r.remote.items()}, "view_active": r.view_active,
                             "vc_sent": r.vc_sent, "waiters": len(self.waiters), "held_pulls": len(self.held),
                             "events": len(self.events), "bound_sessions": len(self.sessions.bound),
                             "pool_local": dict(sorted(((k.hex()[:16], v) for k, v in r.local_items.items()))),
                             **(self.io.limits_status() if self.io else {})},
        }
