"""The node's client port (SPEC 14.3, 14.6): checks requests and bundles, pools them, and answers
each request with the compact decision of its client's leaf (grouped per connection and leaf)."""

from __future__ import annotations

import asyncio
import contextlib

from impl_a import heraclius_pb2 as pb
from impl_a.codec import encode
from impl_a.crypto import sha256
from impl_a.errors import RemoteViolation
from impl_a.logs import now_ms
from impl_a.memtrim import TrimAfterPeak
from impl_a.sessions import (
    MAX_CLIENT_MESSAGE,
    MESSAGES_PER_TURN,
    QUEUED_CLOSE,
    QUEUED_PAUSE,
    READ_BUFFER,
    SessionTable,
)
from impl_a.storage import StorageFailed
from impl_a.transport import Link, LinkClosed, check_client_hello
from impl_a.verify import (
    bundle_signature_ok,
    check_bundle,
    check_plain_request,
    client_destination,
    header_hash,
    request_signature_ok,
)

CLIENT_CHUNK = 1 << 16  # socket read size on the client port
TRIM_HIGH, TRIM_LOW = 4 << 20, 1 << 20  # client-port bytes held: trim the heap after a peak

ERROR_CODES = {"malformed": pb.CLIENT_ERROR_MALFORMED, "non_canonical": pb.CLIENT_ERROR_MALFORMED,
               "bad_signature": pb.CLIENT_ERROR_BAD_SIGNATURE, "unauthorised_client": pb.CLIENT_ERROR_UNAUTHORISED,
               "wrong_cluster": pb.CLIENT_ERROR_WRONG_CLUSTER, "oversized": pb.CLIENT_ERROR_TOO_LARGE,
               "overloaded": pb.CLIENT_ERROR_OVERLOADED}

# SPEC 14.3: one ClientReply{answer} per (connection, leaf) instead of one per request.
GROUP_ANSWERS = True


class _Waiter:
    """One request waiting on one connection for its decision, with its client_timeout timer."""

    __slots__ = ("link", "rid", "timer")

    def __init__(self, link: Link, rid: int):
        self.link = link
        self.rid = rid
        self.timer: asyncio.TimerHandle | None = None


class ClientPort:
    """Client connections of one node; rt is its NodeRuntime (replica, queue server, counters)."""

    def __init__(self, rt):
        self.rt = rt
        self.waiters: dict[tuple[bytes, int], list[_Waiter]] = {}
        self.group_answers = GROUP_ANSWERS
        self._submits: list = []
        self._reserved: dict[bytes, int] = {}  # items admitted this turn, not yet in the pool
        self.table = SessionTable()
        self._read_ok = asyncio.Event()
        self._read_ok.set()
        self._trim = TrimAfterPeak(TRIM_HIGH, TRIM_LOW)  # memory of closed connections back to the OS

    # -- connections (SPEC 13, 13.1) ----------------------------------------------------------------
    async def serve(self, reader, writer) -> None:
        rt = self.rt
        if self.table.full():  # refused before message 2
            rt.log.reject("connection_limit", "client", "client-port session limit")
            writer.close()
            return
        link = await rt.handshake(reader, writer, "client", check_client_hello, MAX_CLIENT_MESSAGE,
                                  chunk=CLIENT_CHUNK)
        if link is None:
            return
        loop = asyncio.get_running_loop()
        sess, evict = self.table.open(link, loop.time())
        if evict is not None:
            self._drop(evict, "connection_limit", "oldest unbound client session")
        link.meter = self._meter
        link.gate = self._gate
        try:
            handled = 0
            while rt.running and not link.closed:
                cm = await link.recv(pb.ClientMessage)
                sess.last = loop.time()
                try:
                    self.on_message(cm, link, sess)
                except StorageFailed:
                    raise
                except Exception as exc:  # noqa: BLE001 - SPEC 13.1: closes this connection only
                    raise LinkClosed("malformed", f"{type(exc).__name__}: {exc}") from None
                handled += 1
                if handled % MESSAGES_PER_TURN == 0:
                    await asyncio.sleep(0)  # SPEC 13.1 fairness: the other connections, timers, admin
        except LinkClosed as exc:
            if exc.reason:
                rt.log.reject(exc.reason, "client", exc.detail)
        finally:
            self.table.close(sess)
            link.close()

    def _meter(self, delta: int) -> None:
        self.table.read_bytes += delta
        if self.table.read_bytes > READ_BUFFER:
            self._read_ok.clear()
        elif not self._read_ok.is_set():
            self._read_ok.set()

    async def _gate(self, link: Link) -> None:
        """Awaited before each socket read of a client link (SPEC 13.1 backpressure)."""
        if link.backlog() > QUEUED_PAUSE:
            await link.drain()
        if not self._read_ok.is_set():
            await self._read_ok.wait()

    def _drop(self, sess, reason: str, detail: str) -> None:
        self.rt.log.reject(reason, "client", detail)
        self.table.close(sess)
        if reason == "slow_peer":
            sess.conn.abort()  # its unread answers are dropped, not kept until it reads
        else:
            sess.conn.linger_close()  # e.g. after OVERLOADED for the 65th session (errata AD-7)

    def tick(self) -> None:
        """Close idle unbound sessions and connections whose queued replies pass the limits."""
        now = asyncio.get_running_loop().time()
        for sess in self.table.idle_unbound(now):
            self._drop(sess, "slow_peer", "unbound client session idle for 10 s")
        queued = [(sess.conn.backlog(), sess) for sess in self.table.all]
        for q, sess in queued:
            if sess.stalled(q, sess.conn.taken(), now):
                self._drop(sess, "slow_peer", "over 1 MiB queued and nothing read for 10 s")
        queued = [q for q in queued if q[1] in self.table.all]
        for sess in SessionTable.over_queued([q for q in queued if q[0]]):
            self._drop(sess, "slow_peer", "client does not read its answers")
        self._trim.observe(sum(q for q, _ in queued) + self.table.read_bytes)

    def _queued_check(self, link: Link) -> None:
        if link.backlog() > QUEUED_CLOSE:
            self.rt.log.reject("slow_peer", "client", "over 4 MiB of answers queued")
            link.abort()

    # -- requests (SPEC 14.3) -----------------------------------------------------------------------
    def on_message(self, cm: pb.ClientMessage, link: Link, sess=None) -> None:
        which = cm.WhichOneof("body")
        if which == "submit_bundle":
            self._on_bundle(cm.submit_bundle, link, sess)
            return
        submit = which == "submit"
        req = cm.submit if submit else cm.fetch
        rt, r = self.rt, self.rt.replica
        rid = req.request_id
        try:
            check_plain_request(rt.m, req, r.cluster.id)
            self._same_key(sess, req.client_key)
        except RemoteViolation as exc:
            self._refuse(link, exc, req.client_key, [rid])
            return
        ident = (req.client_key, rid)
        h = r.client_index.get(ident)
        stale = h is None and r.state.below_floor(*ident)
        if (submit and h is None and not stale and ident not in r.req_pool
                and not r.admits(req.client_key, 1, self._reserved.get(req.client_key, 0))):
            rt.log.reject("overloaded", "client", "pool full or client share used")
            self._error(link, pb.CLIENT_ERROR_OVERLOADED, rid, "overloaded")
            return
        if header_hash(req) not in r.verified and not request_signature_ok(rt.m, req):
            self._refuse(link, RemoteViolation("bad_signature", "client request signature"), req.client_key, [rid])
            return
        if not self._bind(sess, req.client_key, link, [rid]):
            return
        if submit:
            rt.counters["client_requests"] += 1
        if h is not None:
            self._reply(link, h, req.client_key, [rid])
        elif stale:
            self._error(link, pb.CLIENT_ERROR_STALE, rid, "request id below the floor")
        else:
            self._wait(link, ident)
            if submit and ident not in r.req_pool:
                self._submit(req, req.client_key, 1)

    def _same_key(self, sess, key: bytes) -> None:
        if sess is not None and sess.key is not None and sess.key != key:
            raise RemoteViolation("unauthorised_client", "session is bound to another client key")

    def _bind(self, sess, key: bytes, link: Link, rids: list[int]) -> bool:
        """SPEC 13.1: the first request that passed the signature check binds the session."""
        if sess is None or sess.key is not None:
            return True
        if self.table.bind(sess, key):
            return True
        for rid in rids:
            self._error(link, pb.CLIENT_ERROR_OVERLOADED, rid, "too many sessions for this client key")
        self._drop(sess, "connection_limit", "65th session of one client key")
        return False

    def _on_bundle(self, b: pb.RequestBundle, link: Link, sess=None) -> None:
        """SPEC 14.6: checked as a whole (order of 14.3); then each item is answered, refused or
        waited for alone."""
        rt, r = self.rt, self.rt.replica
        digest = sha256(encode(b))
        rids = [i.request_id for i in b.items] or [0]  # no items: one error with request_id 0 (errata BB1)
        try:
            check_bundle(rt.m, b, r.cluster.id, signature=False)
            self._same_key(sess, b.client_key)
        except RemoteViolation as exc:
            self._refuse(link, exc, b.client_key, rids)
            return
        key = b.client_key
        answered: dict[int, list[int]] = {}
        waiting, stale = [], []
        for item in b.items:
            ident = (key, item.request_id)
            h = r.client_index.get(ident)
            if h is not None:
                answered.setdefault(h, []).append(item.request_id)
            elif r.state.below_floor(*ident):
                stale.append(item.request_id)
            else:
                waiting.append(ident)
        pooled = (key, digest) in r.req_pool
        if waiting and not pooled and not r.admits(key, len(b.items), self._reserved.get(key, 0)):
            rt.log.reject("overloaded", "client", "pool full or client share used")
            for rid in rids:
                code = pb.CLIENT_ERROR_STALE if rid in stale else pb.CLIENT_ERROR_OVERLOADED
                self._error(link, code, rid, "overloaded")
            return
        if digest not in r.verified and not bundle_signature_ok(rt.m, b):
            self._refuse(link, RemoteViolation("bad_signature", "client bundle signature"), key, rids)
            return
        if not self._bind(sess, key, link, rids):
            return
        rt.counters["client_requests"] += len(b.items)
        rt.counters["client_bundles"] += 1
        for rid in stale:
            self._error(link, pb.CLIENT_ERROR_STALE, rid, "request id below the floor")
        if waiting:
            for ident in waiting:
                self._wait(link, ident)
            if not pooled:
                self._submit(b, key, len(b.items))
        for h, rids_h in answered.items():
            self._reply(link, h, key, rids_h)

    def _refuse(self, link: Link, exc: RemoteViolation, client_key: bytes, rids: list[int]) -> None:
        self.rt.log.reject(exc.reason, "client:" + client_key.hex()[:16], exc.detail)
        code = ERROR_CODES.get(exc.reason, pb.CLIENT_ERROR_MALFORMED)
        for rid in rids:
            self._error(link, code, rid, exc.reason)

    # -- waiting and answering --------------------------------------------------------------------
    def _wait(self, link: Link, ident: tuple[bytes, int]) -> None:
        w = _Waiter(link, ident[1])
        w.timer = asyncio.get_running_loop().call_later(self.rt.m.timeouts["client_timeout"] / 1000,
                                                        self._expire, ident, w)
        self.waiters.setdefault(ident, []).append(w)

    def _expire(self, ident: tuple[bytes, int], w: _Waiter) -> None:
        lst = self.waiters.get(ident)
        if lst and w in lst:
            lst.remove(w)
            if not lst:
                del self.waiters[ident]
            self._error(w.link, pb.CLIENT_ERROR_TIMEOUT, w.rid, "no decision in time")

    def on_decided(self, d: pb.Decision) -> None:
        """Answer every request waiting for a response of this decision: one message per connection
        and client leaf when grouping, else one per request."""
        for leaf in d.outputs:
            if not leaf.destination.startswith("client:") or not self.waiters:
                continue
            key = bytes.fromhex(leaf.destination[7:])
            per_link: dict[Link, list[int]] = {}
            for resp in leaf.responses:
                for w in self.waiters.pop((key, resp.request_id), ()):
                    w.timer.cancel()
                    per_link.setdefault(w.link, []).append(w.rid)
            for link, rids in per_link.items():
                self._reply(link, d.header.height, key, rids)

    def _reply(self, link: Link, h: int, client_key: bytes, rids: list[int]) -> None:
        if link.closed:
            return
        rt = self.rt
        dest = client_destination(client_key)
        if rt.faults.of("false_client_response"):
            cd = rt.server.compact(h, dest)
            data = encode(pb.ClientReply(answer=rt.faults.tamper(cd))) if cd is not None else None
        else:
            data = rt.server.client_reply(h, dest)  # flushes the store: the answer is durable
        if data is None:
            for rid in rids:
                self._error(link, pb.CLIENT_ERROR_TIMEOUT, rid, "answer unavailable")
            return
        n = 1 if self.group_answers else len(rids)
        rt.counters["client_replies"] += n
        with contextlib.suppress(LinkClosed):
            for _ in range(n):
                link.send_nowait(data)
        self._queued_check(link)

    def _error(self, link: Link, code: int, rid: int, message: str) -> None:
        if link.closed:  # e.g. a request whose client went away before its timeout
            return
        rt = self.rt
        name = pb.ClientErrorCode.Name(code).removeprefix("CLIENT_ERROR_").lower()
        rt.client_errors[name] = rt.client_errors.get(name, 0) + 1
        with contextlib.suppress(LinkClosed):
            link.send_nowait(encode(pb.ClientReply(error=pb.ClientError(code=code, request_id=rid, message=message))))
        self._queued_check(link)

    # -- pooling ------------------------------------------------------------------------------------
    def _submit(self, msg, key: bytes, n: int) -> None:
        """Requests and bundles checked during one event-loop turn are handed over together (one Forward)."""
        self._submits.append(msg)
        self._reserved[key] = self._reserved.get(key, 0) + n
        if len(self._submits) == 1:
            asyncio.get_running_loop().call_soon(self._submit_all)

    def _submit_all(self) -> None:
        msgs, self._submits = self._submits, []
        self._reserved.clear()
        self.rt._guard(self._submit_now, msgs)

    def _submit_now(self, msgs: list) -> None:
        self.rt.replica.now = now_ms()
        self.rt.replica.on_client_requests(msgs)
        self.rt._drain()
