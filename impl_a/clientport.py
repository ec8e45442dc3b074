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
from impl_a.transport import Link, LinkClosed, accept, check_client_hello
from impl_a.verify import check_bundle, check_client_request, client_destination

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

    async def serve(self, reader, writer) -> None:
        rt = self.rt
        try:
            link = await accept(reader, writer, rt.m.network_id, rt.x_secret, rt.hello(rt.me),
                                rt.m.limits["max_message_bytes"], check_client_hello)
        except LinkClosed as exc:
            if exc.reason:
                rt.log.reject(exc.reason, "client", exc.detail)
            writer.close()
            return
        try:
            while rt.running:
                cm = await link.recv(pb.ClientMessage)
                rt._guard(self.on_message, cm, link)
                await link.drain()  # a client that does not read its answers stops being read
        except LinkClosed as exc:
            if exc.reason:
                rt.log.reject(exc.reason, "client", exc.detail)
        finally:
            link.close()

    def on_message(self, cm: pb.ClientMessage, link: Link) -> None:
        which = cm.WhichOneof("body")
        if which == "submit_bundle":
            self._on_bundle(cm.submit_bundle, link)
            return
        submit = which == "submit"
        req = cm.submit if submit else cm.fetch
        rt, r = self.rt, self.rt.replica
        try:
            check_client_request(rt.m, req, r.cluster.id)
        except RemoteViolation as exc:
            self._refuse(link, exc, req.client_key, [req.request_id])
            return
        ident = (req.client_key, req.request_id)
        if submit:
            rt.counters["client_requests"] += 1
        h = r.client_index.get(ident)
        if h is not None:
            self._reply(link, h, req.client_key, [req.request_id])
        elif r.state.below_floor(*ident):
            self._error(link, pb.CLIENT_ERROR_STALE, req.request_id, "request id below the floor")
        elif submit and ident not in r.req_pool and not r.pool_room(1):
            rt.log.reject("overloaded", "client", "request pool full")
            self._error(link, pb.CLIENT_ERROR_OVERLOADED, req.request_id, "overloaded")
        else:
            self._wait(link, ident)
            if submit:
                self._submit(req)

    def _on_bundle(self, b: pb.RequestBundle, link: Link) -> None:
        """SPEC 14.6: checked as a whole; then each item is answered, refused or waited for alone."""
        rt, r = self.rt, self.rt.replica
        digest = sha256(encode(b))
        try:
            if digest not in r.verified:
                check_bundle(rt.m, b, r.cluster.id)
        except RemoteViolation as exc:
            # a bundle without items names no request: one error with request_id 0 (errata BB1)
            self._refuse(link, exc, b.client_key, [i.request_id for i in b.items] or [0])
            return
        rt.counters["client_requests"] += len(b.items)
        rt.counters["client_bundles"] += 1
        key = b.client_key
        answered: dict[int, list[int]] = {}
        waiting = []
        for item in b.items:
            ident = (key, item.request_id)
            h = r.client_index.get(ident)
            if h is not None:
                answered.setdefault(h, []).append(item.request_id)
            elif r.state.below_floor(*ident):
                self._error(link, pb.CLIENT_ERROR_STALE, item.request_id, "request id below the floor")
            else:
                waiting.append(ident)
        if waiting:
            if (key, digest) not in r.req_pool and not r.pool_room(len(b.items)):
                rt.log.reject("overloaded", "client", "request pool full")
                for ident in waiting:
                    self._error(link, pb.CLIENT_ERROR_OVERLOADED, ident[1], "overloaded")
            else:
                for ident in waiting:
                    self._wait(link, ident)
                self._submit(b)
        for h, rids in answered.items():
            self._reply(link, h, key, rids)

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

    def _error(self, link: Link, code: int, rid: int, message: str) -> None:
        if link.closed:  # e.g. a request whose client went away before its timeout
            return
        rt = self.rt
        name = pb.ClientErrorCode.Name(code).removeprefix("CLIENT_ERROR_").lower()
        rt.client_errors[name] = rt.client_errors.get(name, 0) + 1
        with contextlib.suppress(LinkClosed):
            link.send_nowait(encode(pb.ClientReply(error=pb.ClientError(code=code, request_id=rid, message=message))))

    # -- pooling ------------------------------------------------------------------------------------
    def _submit(self, msg) -> None:
        """Requests and bundles checked during one event-loop turn are handed over together (one Forward)."""
        self._submits.append(msg)
        if len(self._submits) == 1:
            asyncio.get_running_loop().call_soon(self._submit_all)

    def _submit_all(self) -> None:
        msgs, self._submits = self._submits, []
        self.rt._guard(self._submit_now, msgs)

    def _submit_now(self, msgs: list) -> None:
        self.rt.replica.now = now_ms()
        self.rt.replica.on_client_requests(msgs)
        self.rt._drain()
