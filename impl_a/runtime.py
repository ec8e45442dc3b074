"""The node's asyncio driver: runs the pure Replica, its queue server and puller over real links,
durable storage, the client port and the admin port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

from impl_a import heraclius_pb2 as pb
from impl_a.admin import AdminServer
from impl_a.clientport import ClientPort
from impl_a.codec import encode
from impl_a.consensus import Replica
from impl_a.crypto import SigningKey, x25519_public
from impl_a.faults import Faults
from impl_a.logs import LEVELS, Log, now_ms
from impl_a.manifest import Manifest
from impl_a.queues import Puller, QueueServer
from impl_a.sessions import HANDSHAKES as HANDSHAKE_SLOTS
from impl_a.sessions import MESSAGES_PER_TURN
from impl_a.storage import Storage, StorageFailed, WriteBehind
from impl_a.transport import (
    LISTEN_BACKLOG,
    RECV_CHUNK,
    Link,
    LinkClosed,
    accept,
    check_peer_identity,
    connect,
)

TICK_S = 0.01
TICK_MAX_S = 0.05
OUT_BACKLOG_MESSAGES = 4
STORAGE_EXIT = 5  # SPEC 4 / 12.8
LIMITS_CHECK_MS = 200  # idle unbound sessions and queued client bytes (SPEC 13.1)


def _reraise(exc: BaseException) -> None:
    raise exc


class _ParkedPull:
    """A QueuePull held open (SPEC 10 long poll) until its first decision exists or its time is up."""

    __slots__ = ("nid", "pull", "link", "timer")

    def __init__(self, nid: str, pull: pb.QueuePull, link: Link):
        self.nid, self.pull, self.link = nid, pull, link
        self.timer: asyncio.TimerHandle | None = None


class NodeRuntime:
    def __init__(self, manifest: Manifest, node_id: str, ed_seed: bytes, x_secret: bytes, data_dir: str, log: Log):
        self.m = manifest
        self.me = node_id
        self.node = manifest.nodes[node_id]
        self.log = log
        self.x_secret = x_secret
        self.store = WriteBehind(Storage(data_dir), self.storage_failed)
        self.faults = Faults(self.node.faults if manifest.testbed else [])
        self.started_ms = now_ms()
        self.replica = Replica(manifest, node_id, SigningKey(ed_seed), self.store, now_ms(),
                               faults=self.faults.consensus_hooks())
        self.server = QueueServer(self.replica)
        self.puller = Puller(self.replica)
        cluster = self.replica.cluster
        self.peers = [n.id for n in cluster.nodes if n.id != node_id]
        self.peers += [n.id for c in manifest.clusters.values() if c.role != cluster.role for n in c.nodes]
        self.out_links: dict[str, Link] = {}
        # An outbound link whose unsent bytes pass this drops further messages (as a full queue did);
        # the protocol's retransmissions (heartbeats, catch-up, re-forwarding) recover.
        self.out_backlog_max = OUT_BACKLOG_MESSAGES * manifest.limits["max_message_bytes"]
        self.parked_pulls: list[_ParkedPull] = []
        self.reply_link: dict[str, Link] = {}
        self.last_seen: dict[str, int] = {}
        self.counters = {"client_requests": 0, "client_bundles": 0, "client_replies": 0}
        self.client_errors: dict[str, int] = {}
        self.tasks: set[asyncio.Task] = set()
        self.servers: list[asyncio.AbstractServer] = []
        self.running = True
        self.fatal = False
        self.stop_event = asyncio.Event()
        self._internal_errors: dict[str, float] = {}
        self._wake_armed = False
        self.handshaking: dict[str, dict] = {"peer": {}, "client": {}}  # writers in the handshake phase
        self._limits_checked = 0
        self._encoded: tuple[object, bytes] = (None, b"")
        self.admin = AdminServer(self)
        self.clients = ClientPort(self)

    def hello(self, node_id: str = "") -> pb.Hello:
        return pb.Hello(protocol_version=1, network_id=self.m.network_id, node_id=node_id)

    def _spawn(self, coro) -> asyncio.Task:
        t = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)
        return t

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        n = self.node
        bl = LISTEN_BACKLOG
        self.servers.append(await asyncio.start_server(self._peer_conn, n.bind, n.peer_port, backlog=bl))
        self.servers.append(await asyncio.start_server(self.clients.serve, n.bind, n.client_port, backlog=bl))
        self.servers.append(await asyncio.start_server(self.admin.handle, n.admin_bind, n.admin_port))
        for nid in self.peers:
            self._spawn(self._dialer(nid))
        self._spawn(self._ticker())
        self.admin.ready = True
        self.log.emit("info", "ready", "node ready", height=self.replica.height, view=self.replica.view,
                      cluster=self.replica.cluster.id)

    async def stop(self) -> None:
        self.running = False
        for s in self.servers:
            s.close()
        for t in list(self.tasks):
            t.cancel()
        for link in list(self.out_links.values()) + list(self.reply_link.values()):
            link.close()
        await asyncio.sleep(0)
        self.store.close()
        self.log.emit("info", "stopped", "node stopped")

    async def _ticker(self) -> None:
        # Timers run in fractions of heartbeat_interval (250 ms by default); nothing on the hot path
        # waits for a tick (batch_wait has its own wake, pulls restart when a reply arrives), so
        # ticking every 10 ms only burns CPU on eight nodes sharing two cores.
        period = max(TICK_S, min(TICK_MAX_S, self.m.timeouts["heartbeat_interval"] / 5000))
        while self.running:
            self._guard(self._tick_once)
            await asyncio.sleep(period)

    def _tick_once(self) -> None:
        now = now_ms()
        if now - self._limits_checked >= LIMITS_CHECK_MS:
            self._limits_checked = now
            self.clients.tick()
        self.replica.tick(now)
        self.puller.tick(now)
        self._drain()

    def _guard(self, fn, *args) -> None:
        """Run one event handler. A storage failure is fatal (durability is gone); any other bug is
        logged (at most once per 10 s per kind) and the node carries on with the next event."""
        try:
            fn(*args)
        except StorageFailed as exc:  # on_failure already stopped a real node; a test driver stops here
            self.fatal = True
            self.stop_event.set()
            self.running = False
            self.log.emit("error", "storage_failed", f"storage failure, stopping: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bug must not wedge the node
            self._internal(exc, getattr(fn, "__name__", "?"))

    def _internal(self, exc: Exception, where: str) -> None:
        """Log a bug at most once per 10 s per kind."""
        key = type(exc).__name__
        last = self._internal_errors.get(key, 0.0)
        if time.monotonic() - last >= 10:
            self._internal_errors[key] = time.monotonic()
            self.log.emit("error", "internal_error", f"{key}: {exc}", where=where)

    def storage_failed(self, op: str, exc: BaseException) -> None:
        """SPEC 12.8 fail-stop: one error line, then exit 5 at once (nothing more is sent or served,
        nothing undurable is ever reported, and no write is retried)."""
        self.log.emit("error", "storage_failed", f"storage failure during {op}, stopping: {exc}", op=op,
                      error=str(exc))
        with contextlib.suppress(Exception):
            self.log.fh.flush()
        os._exit(STORAGE_EXIT)

    # -- actions --------------------------------------------------------------------------------
    def _drain(self) -> None:
        r = self.replica
        decided = []
        while r.actions:
            acts, r.actions = r.actions, []
            self._encoded = (None, b"")  # one encoding per broadcast message, not one per recipient
            for act in acts:
                kind = act[0]
                if kind == "persist":
                    self.store.stage(act[1], act[2])  # made durable before anything leaves the node
                elif kind in ("send", "reply"):
                    self.store.flush()
                    self._send(act[1], act[2], reply=kind == "reply")
                elif kind == "decided":
                    self.server.remember(act[1])
                    decided.append(act[1])
                elif kind == "reject":
                    self.log.reject(act[1], act[2], act[3])
                elif kind == "evidence":
                    self.log.add_evidence(*act[1:])
                elif kind == "event":
                    level = "error" if act[1] == "invariant_violated" else "info"
                    self.log.emit(level, act[1], act[1].replace("_", " "), **act[2])
        # Waiting pulls and clients are answered once the actions are done: serving flushes the
        # store, and by then a decision usually shares its fsync with the next proposal or vote.
        for d in decided:
            self._on_decided(d)
        wake = r.wake_in()
        if wake is not None and not self._wake_armed:
            self._wake_armed = True
            asyncio.get_running_loop().call_later(wake / 1000, self._wake)

    def _wake(self) -> None:
        self._wake_armed = False
        self._guard(self._tick_once)

    def _send(self, nid: str, msg: pb.PeerMessage, reply: bool = False) -> None:
        # Written straight into the link (one write per link and loop turn, see Link.send_nowait):
        # no queue and sender task between the consensus core and the socket.
        link = self.reply_link.get(nid) if reply else None
        last, encoded = self._encoded
        if last is not msg:
            encoded = encode(msg)
            self._encoded = (msg, encoded)
        for delay, data in self.faults.outgoing(nid, msg, encoded):
            if link is not None and not link.closed:
                if delay:
                    asyncio.get_running_loop().call_later(delay, self._write, link, data)
                else:
                    self._write(link, data)
            else:  # no usable reply link: our own outbound link, as before
                if delay:
                    asyncio.get_running_loop().call_later(delay, self._send_out, nid, data)
                else:
                    self._send_out(nid, data)

    def _send_out(self, nid: str, data: bytes) -> None:
        link = self.out_links.get(nid)
        if link is not None:
            self._write(link, data)

    def _write(self, link: Link, data: bytes) -> None:
        """Every peer link, outbound or the one a peer dialled: past out_backlog_max unsent bytes new
        messages are dropped (SPEC 13.1: bounded per link; retransmissions recover)."""
        if link.backlog() > self.out_backlog_max:
            return
        with contextlib.suppress(LinkClosed):
            link.send_nowait(data)

    def _on_decided(self, d: pb.Decision) -> None:
        if self.parked_pulls:
            self._serve_parked()
        if self.log.level <= LEVELS["debug"]:
            self.log.emit("debug", "decided", f"decided height {d.header.height}", height=d.header.height,
                          inputs=len(d.batch.inputs))
        self.clients.on_decided(d)

    # -- peer links -----------------------------------------------------------------------------
    async def _dialer(self, nid: str) -> None:
        target = self.m.nodes[nid]
        backoff = 0.1
        while self.running:
            try:
                link = await connect(target.host, target.peer_port, self.m.network_id, self.x_secret,
                                     self.hello(self.me), target.x25519_public, self.m.limits["max_message_bytes"],
                                     expected_node=nid, local_host=self.node.bind)
            except LinkClosed as exc:
                if exc.reason:
                    self.log.reject(exc.reason, nid, exc.detail)
                await asyncio.sleep(backoff)
                backoff = min(2.0, backoff * 2)
                continue
            backoff = 0.1
            self.out_links[nid] = link
            self.log.emit("info", "peer_up", f"link to {nid} up", peer=nid)
            self._guard(self._link_up, nid)
            try:
                await self._read_loop(nid, link)  # until the link fails; sends go straight into it
            finally:
                link.close()
                if self.out_links.get(nid) is link:
                    del self.out_links[nid]
                self.log.emit("info", "peer_down", f"link to {nid} down", peer=nid)
            await asyncio.sleep(backoff)

    def _link_up(self, nid: str) -> None:
        self.replica.now = now_ms()
        self.replica.on_link_up(nid)
        self._drain()

    def _check_peer(self, hello: pb.Hello, remote_static: bytes) -> None:
        check_peer_identity(self.m, hello, remote_static)

    async def handshake(self, reader, writer, where: str, check, max_message: int, chunk: int = RECV_CHUNK):
        """Responder handshake on either port within the node's handshake slots (SPEC 13.1); the
        established Link, or None (closed and counted)."""
        port = "client" if where == "client" else "peer"
        slots = self.handshaking[port]  # SPEC 13.1 (errata AD-3): per port, the oldest makes room
        if len(slots) >= HANDSHAKE_SLOTS:
            oldest = next(iter(slots))
            del slots[oldest]
            self.log.reject("connection_limit", where, "oldest handshake closed for a new connection")
            with contextlib.suppress(Exception):
                oldest.transport.abort()
        slots[writer] = None
        try:
            return await accept(reader, writer, self.m.network_id, self.x_secret, self.hello(self.me),
                                max_message, check, chunk=chunk)
        except LinkClosed as exc:
            if exc.reason and writer in slots:  # not when it was closed for a newer one (counted then)
                self.log.reject(exc.reason, where, exc.detail)
            writer.close()
            return None
        except (ConnectionError, OSError):
            writer.close()
            return None
        finally:
            slots.pop(writer, None)

    async def _peer_conn(self, reader, writer) -> None:
        link = await self.handshake(reader, writer, "inbound", self._check_peer, self.m.limits["max_message_bytes"])
        if link is None:
            return
        nid = link.hello.node_id
        old = self.reply_link.get(nid)
        self.reply_link[nid] = link
        if old is not None:
            old.close()
        await self._read_loop(nid, link)

    async def _read_loop(self, nid: str, link: Link) -> None:
        try:
            handled = 0
            while self.running:
                msg = await link.recv(pb.PeerMessage)
                self.last_seen[nid] = now_ms()
                self._on_peer_message(nid, msg, link)
                handled += 1
                if handled % MESSAGES_PER_TURN == 0:
                    await asyncio.sleep(0)  # SPEC 13.1 fairness between connections
        except LinkClosed as exc:
            if exc.reason:
                self.log.reject(exc.reason, nid, exc.detail)
        finally:
            link.close()
            if self.reply_link.get(nid) is link:
                del self.reply_link[nid]

    def _on_peer_message(self, nid: str, msg: pb.PeerMessage, link: Link) -> None:
        """An exception while handling one message closes that link only and is counted (SPEC 13.1)."""
        try:
            self._handle_peer_message(nid, msg, link)
        except StorageFailed as exc:
            self._guard(_reraise, exc)
        except Exception as exc:  # noqa: BLE001
            self._internal(exc, "peer message")
            raise LinkClosed("malformed", f"{type(exc).__name__} while handling a message") from None

    def _handle_peer_message(self, nid: str, msg: pb.PeerMessage, link: Link) -> None:
        now = now_ms()
        self.replica.now = now
        kind = msg.WhichOneof("body")
        if kind == "queue_pull":
            self._on_pull(nid, msg.queue_pull, link)
            return
        if kind == "queue_batch":
            self.puller.on_batch(nid, msg.queue_batch, now)
            self.puller.tick(now)  # pull the next part of the queue now, not at the next tick
        else:
            self.reply_link.setdefault(nid, link)
            if kind == "sync_request":
                self.reply_link[nid] = link
            self.replica.on_message(nid, msg)
        self._drain()

    def _on_pull(self, nid: str, pull: pb.QueuePull, link: Link) -> None:
        """Answer a QueuePull now if its first decision exists (or the node withholds), else park it
        until a decision makes it available or queue_long_poll ms have passed (SPEC 10)."""
        if self.faults.withhold() or self.server.available(pull):
            self._answer_pull(nid, pull, link)
            return
        parked = _ParkedPull(nid, pull, link)
        parked.timer = asyncio.get_running_loop().call_later(self.m.timeouts["queue_long_poll"] / 1000,
                                                             self._pull_expired, parked)
        self.parked_pulls.append(parked)

    def _pull_expired(self, parked: _ParkedPull) -> None:
        if parked in self.parked_pulls:
            self.parked_pulls.remove(parked)
            self._guard(self._answer_pull, parked.nid, parked.pull, parked.link)

    def _serve_parked(self) -> None:
        keep = []
        for parked in self.parked_pulls:
            if parked.link.closed:
                parked.timer.cancel()
            elif self.server.available(parked.pull):
                parked.timer.cancel()
                self._answer_pull(parked.nid, parked.pull, parked.link)
            else:
                keep.append(parked)
        self.parked_pulls = keep

    def _answer_pull(self, nid: str, pull: pb.QueuePull, link: Link) -> None:
        if not self.faults.withhold():
            qb = self.server.serve(pull)
            if self.faults.of("tamper_compact"):
                tampered = [self.faults.tamper(cd) for cd in qb.decisions]
                del qb.decisions[:]
                qb.decisions.extend(tampered)
        else:
            qb = pb.QueueBatch(source_cluster=self.replica.cluster.id, destination=pull.destination)
        msg = pb.PeerMessage(queue_batch=qb)
        for delay, data in self.faults.outgoing(nid, msg, encode(msg)):
            if delay:
                asyncio.get_running_loop().call_later(delay, self._write, link, data)
            else:
                self._write(link, data)

    def public_keys_ok(self, ed_public: bytes) -> bool:
        return ed_public == self.node.ed25519_public and x25519_public(self.x_secret) == self.node.x25519_public
