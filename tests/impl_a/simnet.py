"""Deterministic in-process simulated network and clock for impl_a Replicas on real SQLite storage."""

from __future__ import annotations

import heapq
import pathlib
import random

from impl_a import heraclius_pb2 as pb
from impl_a.codec import decode, encode
from impl_a.consensus import Replica
from impl_a.crypto import SigningKey
from impl_a.devnet import make_network, read_key
from impl_a.errors import RemoteViolation
from impl_a.manifest import validate
from impl_a.queues import Puller, QueueServer
from impl_a.storage import Storage
from impl_a.verify import check_client_request, check_compact, client_destination, sign_message

SIM_TIMEOUTS = {"heartbeat_interval": 50, "heartbeat_timeout": 300, "request_forward": 200, "censorship": 900,
                "view_change": 500, "queue_long_poll": 200, "sync_retry": 100, "client_timeout": 2000,
                "batch_wait": 2}


class SimNode:
    def __init__(self, net: SimNet, nid: str):
        self.id = nid
        self.store = Storage(net.root / "data" / nid)
        key = SigningKey(read_key(net.root / "keys" / nid / "ed25519.key"))
        self.replica = Replica(net.m, nid, key, self.store, net.now, faults=net.faults.get(nid))
        self.server = QueueServer(self.replica)
        self.puller = Puller(self.replica)
        self.decided: list[pb.Decision] = []
        self.rejects: list[tuple] = []
        self.evidence: list[tuple] = []
        self.events: list[tuple[str, dict]] = []


class SimNet:
    """Seeded network: every message is encoded, delayed 1..max_delay ms, and decoded canonically."""

    def __init__(self, root: pathlib.Path, clusters=(("c0", "coordinator"),), seed: int = 1, max_delay: int = 5,
                 faults: dict | None = None, clients: int = 1):
        self.root = pathlib.Path(root)
        doc = make_network(self.root, list(clusters), timeouts=SIM_TIMEOUTS, seed=seed, clients=clients)
        self.m = validate(doc)
        self.rng = random.Random(seed)
        self.now = 0
        self.max_delay = max_delay
        self.faults = faults or {}
        self.queue: list = []
        self.link_clock: dict[tuple[str, str], int] = {}
        self.seq = 0
        self.drop_rate = 0.0
        self.blocked: set[tuple[str, str]] = set()
        self.mutators: dict[str, object] = {}
        self.nodes: dict[str, SimNode] = {}
        for nid in self.m.nodes:
            self.nodes[nid] = SimNode(self, nid)
        self.client_key = SigningKey(read_key(self.root / "clients" / "client0.key"))
        self.next_request_id = 1

    # -- faults ------------------------------------------------------------------------------------
    def partition(self, group_a: set[str], group_b: set[str]) -> None:
        for a in group_a:
            for b in group_b:
                self.blocked |= {(a, b), (b, a)}

    def heal(self) -> None:
        self.blocked.clear()

    def crash(self, nid: str) -> None:
        node = self.nodes.pop(nid)
        node.store.close()

    def restart(self, nid: str) -> SimNode:
        self.nodes[nid] = SimNode(self, nid)
        for other in list(self.nodes.values()):  # their links to it come up again, as in the runtime
            if other.id != nid:
                other.replica.on_link_up(nid)
                self._drain(other)
        return self.nodes[nid]

    # -- message plumbing --------------------------------------------------------------------------
    def _post(self, src: str, dst: str, msg: pb.PeerMessage) -> None:
        if (src, dst) in self.blocked or (self.drop_rate and self.rng.random() < self.drop_rate):
            return
        data = encode(msg)
        mut = self.mutators.get(src)
        if mut is not None:
            data = mut(dst, msg, data)
            if data is None:
                return
        self.seq += 1
        at = max(self.now + self.rng.randint(1, self.max_delay), self.link_clock.get((src, dst), 0))
        self.link_clock[(src, dst)] = at  # links are FIFO, like TCP
        heapq.heappush(self.queue, (at, self.seq, src, dst, data))

    def _drain(self, node: SimNode) -> None:
        r = node.replica
        while r.actions:
            act = r.actions.pop(0)
            kind = act[0]
            if kind == "persist":
                node.store.write(act[1], act[2])
            elif kind in ("send", "reply"):
                self._post(node.id, act[1], act[2])
            elif kind == "decided":
                node.decided.append(act[1])
            elif kind == "reject":
                node.rejects.append(act[1:])
            elif kind == "evidence":
                node.evidence.append(act[1:])
            elif kind == "event":
                node.events.append((act[1], act[2]))
                if act[1] == "invariant_violated":  # the replica repairs itself; a test must not pass
                    raise AssertionError(f"{node.id}: {act[2]}")

    def _deliver(self, src: str, dst: str, data: bytes) -> None:
        node = self.nodes.get(dst)
        if node is None:
            return
        try:
            msg = decode(pb.PeerMessage, data)
        except RemoteViolation as exc:
            node.rejects.append((exc.reason, src, exc.detail))
            return
        kind = msg.WhichOneof("body")
        if kind == "queue_pull":
            self._post(dst, src, pb.PeerMessage(queue_batch=node.server.serve(msg.queue_pull)))
        elif kind == "queue_batch":
            node.puller.on_batch(src, msg.queue_batch, self.now)
        else:
            node.replica.on_message(src, msg)
        self._drain(node)

    def run(self, ms: int, tick: int = 5) -> None:
        end = self.now + ms
        next_tick = self.now
        while self.now < end:
            while self.queue and self.queue[0][0] <= self.now:
                _, _, src, dst, data = heapq.heappop(self.queue)
                self._deliver(src, dst, data)
            if self.now >= next_tick:
                for node in list(self.nodes.values()):
                    node.replica.tick(self.now)
                    node.puller.tick(self.now)
                    self._drain(node)
                next_tick = self.now + tick
            self.now += 1

    # -- clients -----------------------------------------------------------------------------------
    def request(self, op_kind: int, key: bytes, value: bytes = b"", cluster: str | None = None,
                request_id: int | None = None) -> pb.ClientRequest:
        cluster = cluster or self.m.coordinators[0]
        rid = request_id if request_id is not None else self.next_request_id
        self.next_request_id = max(self.next_request_id, rid + 1)
        req = pb.ClientRequest(client_key=self.client_key.public, request_id=rid, cluster_id=cluster,
                               op=pb.Operation(kind=op_kind, key=key, value=value))
        sign_message(self.client_key, "client-request", self.m.network_id, req)
        return req

    def submit(self, req: pb.ClientRequest, node_id: str) -> None:
        node = self.nodes[node_id]
        check_client_request(self.m, req, node.replica.cluster.id)
        node.replica.on_client_request(req)
        self._drain(node)

    def answer(self, req: pb.ClientRequest, node_id: str) -> pb.ClientResponse | None:
        """The verified response for req as node_id would serve it, or None if not decided there."""
        node = self.nodes[node_id]
        h = node.replica.client_index.get((req.client_key, req.request_id))
        if h is None:
            return None
        dest = client_destination(req.client_key)
        cd = node.server.compact(h, dest)
        check_compact(self.m, cd, req.cluster_id, dest, qc_cache=None)
        for resp in cd.leaf.responses:
            if resp.request_id == req.request_id:
                return resp
        return None

    def log_bytes(self, nid: str) -> list[bytes]:
        """The node's log with QCs stripped, for byte comparison across nodes."""
        out = []
        for data in self.nodes[nid].store.decisions(1, 10**6):
            d = pb.Decision()
            d.ParseFromString(data)
            d.ClearField("qc")
            out.append(encode(d))
        return out
