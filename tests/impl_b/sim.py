"""Deterministic in-process simulated network and clock for impl_b's consensus state machine."""

import heapq
import os
import random

from impl_b import codec, devnet
from impl_b.actions import Decided, Evidence, Persist, Reject, Send
from impl_b.checks import Checker, build_compact, client_destination, sign_message
from impl_b.codec import encode
from impl_b.consensus import Replica
from impl_b.crypto import Signer
from impl_b.manifest import validate
from impl_b.schema import OP_GET, OP_PUT
from impl_b.storage import Store


class MemStore:
    """Durable records of one simulated node (survives a simulated crash)."""

    def __init__(self):
        self.view = (0, True)
        self.decisions: list = []
        self.inflight: dict = {}
        self.new_view = None
        self.asked = 0

    def persist(self, rec: dict) -> None:
        if "decision" in rec:
            d = rec["decision"]
            assert d.header.height == len(self.decisions) + 1
            self.decisions.append(codec.decode("Decision", encode(d)))
            self.inflight = {}
        if "inflight" in rec:
            self.inflight = dict(rec["inflight"])
        if "view" in rec:
            self.view = rec["view"]
        if rec.get("new_view") is not None:
            self.new_view = rec["new_view"]
        if "asked" in rec:
            self.asked = rec["asked"]


class LmdbStore:
    """A node's real impl_b LMDB storage, seen through MemStore's interface (kill = drop the handle)."""

    def __init__(self, path: str):
        self.path = path
        self.store = Store(path)

    def persist(self, rec: dict) -> None:
        self.store.persist(rec)

    def load(self):
        return self.store.load()

    @property
    def decisions(self) -> list:
        return [self.store.decision(h) for h in range(1, self.store.height + 1)]

    def crash(self) -> None:
        self.store.close()  # every write was already committed with fsync

    def reopen(self) -> None:
        self.store = Store(self.path)


class Sim:
    def __init__(self, layout=None, seed: int = 1, timeouts: dict | None = None, nodes_per_cluster: int = 4,
                 lmdb_root: str | None = None):
        layout = layout or {"c0": "coordinator", "s0": "shard"}
        t = {"heartbeat_interval": 50, "heartbeat_timeout": 400, "request_forward": 200, "censorship": 800,
             "view_change": 600, "sync_retry": 100, "batch_wait": 2}
        t.update(timeouts or {})
        doc, self.secrets = devnet.build(layout, nodes_per_cluster=nodes_per_cluster, ports=False, timeouts=t,
                                         clients=("alice",))
        self.m = validate(doc)
        self.rng = random.Random(seed)
        self.now = 0
        self.heap: list = []
        self.seq = 0
        self.checker = Checker(self.m)
        self.stores = {n: LmdbStore(os.path.join(lmdb_root, n)) if lmdb_root else MemStore() for n in self.m.nodes}
        self.replicas: dict[str, Replica] = {}
        self.down: set[str] = set()
        self.drop_rate = 0.0
        self.delay = (1, 5)
        self.cut: set[frozenset] = set()
        self.tamper = {}  # node -> function(to, pm) -> list of PeerMessage to send instead
        self.rejects: list = []
        self.evidence: list = []
        self.answers: dict[tuple, object] = {}
        for n in self.m.nodes:
            self._boot(n)
        self.client = Signer(self.secrets["alice"]["ed25519"])
        self.next_id = 1
        self._schedule(10, ("tick",))

    def _boot(self, n: str) -> None:
        r = Replica(self.m, n, Signer(self.secrets[n]["ed25519"]), Checker(self.m), now=self.now)
        st = self.stores[n]
        if isinstance(st, LmdbStore):
            view, active, decisions, inflight, nv = st.load()
            r.restore(view, active, decisions, inflight, nv, asked=st.store.asked)
        else:
            r.restore(st.view[0], st.view[1], list(st.decisions), st.inflight, st.new_view, asked=st.asked)
        self.replicas[n] = r

    def _schedule(self, delay: int, ev: tuple) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (self.now + delay, self.seq, ev))

    # -------------------------------------------------------------- actions

    def _run(self, node: str, acts: list) -> None:
        for a in acts:
            if isinstance(a, Persist):
                self.stores[node].persist(a.record)
            elif isinstance(a, Send):
                msgs = [a.msg]
                if node in self.tamper:
                    msgs = self.tamper[node](a.to, a.msg)
                for pm in msgs:
                    self._send(node, a.to, pm)
            elif isinstance(a, Decided):
                self._decided(node, a.decision)
            elif isinstance(a, Reject):
                self.rejects.append((node, a.reason, a.peer, a.detail))
            elif isinstance(a, Evidence):
                self.evidence.append((node, a.node, a.kind))

    def _send(self, frm: str, to: str, pm) -> None:
        if frm in self.down or to in self.down or frozenset((frm, to)) in self.cut:
            return
        if self.drop_rate and self.rng.random() < self.drop_rate:
            return
        data = encode(pm) if not isinstance(pm, bytes) else pm
        self._schedule(self.rng.randint(*self.delay), ("msg", frm, to, data))

    def _serve_sync(self, node: str, to: str, req) -> None:
        decs = self.stores[node].decisions[req.from_height - 1: req.from_height - 1 + min(req.max_count, 256)]
        resp = codec.SyncResponse(cluster_id=self.m.nodes[node].cluster, decisions=decs)
        self._send(node, to, codec.PeerMessage(sync_response=resp))

    def _decided(self, node: str, dec) -> None:
        cluster = self.m.nodes[node].cluster
        for o in dec.outputs:
            cd = build_compact(dec, o.destination)
            if o.destination.startswith("client:"):
                for resp in o.responses:
                    reason = self.checker.compact_reason(cd, cluster, o.destination, "client", None)
                    assert reason is None, reason
                    self.answers.setdefault(resp.request_id, resp)
                continue
            data = encode(cd)
            for n in self.m.clusters[o.destination].members:
                self._schedule(self.rng.randint(*self.delay), ("remote", n, data))

    # -------------------------------------------------------------- driving

    def step_until(self, t_end: int, cond=None) -> bool:
        while self.heap and self.heap[0][0] <= t_end:
            t, _s, ev = heapq.heappop(self.heap)
            self.now = t
            kind = ev[0]
            if kind == "tick":
                for n, r in self.replicas.items():
                    if n not in self.down:
                        self._run(n, r.on_tick(self.now))
                self._schedule(10, ("tick",))
                if cond is not None and cond():
                    return True
            elif kind == "msg":
                _k, frm, to, data = ev
                if to in self.down or frm in self.down or frozenset((frm, to)) in self.cut:
                    continue
                try:
                    pm = codec.decode("PeerMessage", data)
                except codec.DecodeError as e:
                    self.rejects.append((to, e.reason, frm, "decode"))
                    continue
                if pm.sync_request is not None:
                    self._serve_sync(to, frm, pm.sync_request)
                    continue
                self._run(to, self.replicas[to].on_peer(frm, pm, self.now))
            elif kind == "remote":
                _k, to, data = ev
                if to in self.down:
                    continue
                r = self.replicas[to]
                cd = codec.decode("CompactDecision", data)
                src = cd.header.cluster_id
                reason = self.checker.compact_reason(cd, src, r.cid, r.cluster.role, None)
                assert reason is None, reason
                self._run(to, r.on_remote(cd, self.now))
            elif kind == "submit":
                _k, to, data = ev
                if to in self.down:
                    continue
                req = codec.decode("ClientRequest", data)
                assert self.checker.request_reason(req, self.m.nodes[to].cluster) is None
                self._run(to, self.replicas[to].on_request(req, self.now))
            elif kind == "submit_bundle":
                _k, to, data = ev
                if to in self.down:
                    continue
                b = codec.decode("RequestBundle", data)
                assert self.checker.bundle_reason(b, self.m.nodes[to].cluster) is None
                self._run(to, self.replicas[to].on_bundle(b, self.now))
        return cond is not None and cond()

    def run_until(self, cond, limit_ms: int = 20000) -> bool:
        end = self.now + limit_ms
        return self.step_until(end, cond)

    def request(self, kind: int, key: bytes, value: bytes = b"", to: str = "c0-n1", rid: int | None = None):
        if rid is None:
            rid = self.next_id
            self.next_id += 1
        op = codec.Operation(kind=kind, key=key, value=value)
        targets = [to] if isinstance(to, str) else to
        cluster = self.m.nodes[targets[0]].cluster
        req = codec.ClientRequest(client_key=self.client.public, request_id=rid, cluster_id=cluster, op=op)
        sign_message(self.client, self.m.network_id, req)
        for t in targets:
            self._schedule(1, ("submit", t, encode(req)))
        return rid

    def bundle(self, ops: list, to: str | list = "c0-n1") -> list:
        """Submit `ops` [(kind, key, value), ...] as one signed RequestBundle; returns the item ids."""
        items = []
        for kind, key, value in ops:
            items.append(codec.BundleItem(request_id=self.next_id, op=codec.Operation(kind=kind, key=key, value=value)))
            self.next_id += 1
        targets = [to] if isinstance(to, str) else to
        b = codec.RequestBundle(client_key=self.client.public, cluster_id=self.m.nodes[targets[0]].cluster, items=items)
        sign_message(self.client, self.m.network_id, b)
        for t in targets:
            self._schedule(1, ("submit_bundle", t, encode(b)))
        return [it.request_id for it in items]

    def put(self, key: bytes, value: bytes, **kw) -> int:
        return self.request(OP_PUT, key, value, **kw)

    def get(self, key: bytes, **kw) -> int:
        return self.request(OP_GET, key, **kw)

    def crash(self, n: str) -> None:
        self.down.add(n)
        if isinstance(self.stores[n], LmdbStore):
            self.stores[n].crash()

    def restart(self, n: str) -> None:
        self.down.discard(n)
        if isinstance(self.stores[n], LmdbStore):
            self.stores[n].reopen()
        self._boot(n)

    def close(self) -> None:
        for st in self.stores.values():
            if isinstance(st, LmdbStore):
                st.crash()

    def heights(self, cluster: str) -> dict:
        return {n: self.replicas[n].height for n in self.m.clusters[cluster].members}

    def logs_agree(self, cluster: str) -> bool:
        """Logs of all nodes of `cluster` (QC left out) are identical up to the lowest height."""
        members = self.m.clusters[cluster].members
        low = min(len(self.stores[n].decisions) for n in members)
        for h in range(low):
            encs = {encode(self.stores[n].decisions[h].copy(qc=None)) for n in members}
            if len(encs) != 1:
                return False
        return True


CLIENT_DEST = client_destination
