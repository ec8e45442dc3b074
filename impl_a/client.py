"""Client library (SPEC 14): signed GET/PUT, retries across coordinator members, answer validation.

Command line: python -m impl_a.client (see impl_a/client_cli.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass

import nacl.bindings as nb

from impl_a import heraclius_pb2 as pb
from impl_a.codec import decode, encode
from impl_a.crypto import SigningKey, sha256
from impl_a.errors import LocalError, RemoteViolation
from impl_a.manifest import Manifest
from impl_a.transport import Link, LinkClosed, connect
from impl_a.verify import (
    GET,
    MAX_BUNDLE_BYTES,
    MAX_BUNDLE_ITEMS,
    PUT,
    QcCache,
    check_compact,
    check_operation,
    client_destination,
    sign_message,
)

RECENT_REPLIES = 64
# SPEC 14.6: first attempts that become ready together go out as one signed RequestBundle.
BUNDLING = True
BUNDLE_OVERHEAD = 256  # client key, cluster id, signature and the ClientMessage around the items


class NoValidAnswer(Exception):
    """No member of the coordinator cluster gave a valid answer in time."""

    def __init__(self, cluster: str, request_id: int, failures: dict[str, str], final: str | None = None):
        detail = "; ".join(f"{n}: {why}" for n, why in failures.items()) or "no attempt possible"
        what = f"final error {final}" if final else "no valid answer"
        super().__init__(f"{what} from cluster {cluster} for request {request_id} ({detail})")
        self.cluster = cluster
        self.request_id = request_id
        self.failures = failures
        self.final = final


@dataclass
class Result:
    op: str
    key: bytes
    found: bool
    value: bytes | None
    cluster: str
    height: int
    node: str
    shard: str
    shard_height: int
    request_id: int


class _Conn:
    """One Noise link to a coordinator member, with replies dispatched by request id and an outbox
    whose requests leave together (one bundle per flush)."""

    def __init__(self, link: Link, client: Client):
        self.link = link
        self.client = client
        self.waiting: dict[int, asyncio.Future] = {}
        # A node answers every request of one decision with the same bytes (the client's leaf holds all
        # of them): decode those bytes once and hand the same reply to every request they answer.
        self.recent: OrderedDict[bytes, pb.ClientReply] = OrderedDict()
        self.outbox: list[pb.ClientRequest] = []
        self._flush_armed = False
        self._sending = False
        self.reader = asyncio.get_running_loop().create_task(self._read())

    def _decode(self, data: bytes) -> pb.ClientReply:
        reply = self.recent.get(data)
        if reply is None:
            try:
                reply = decode(pb.ClientReply, data)
            except RemoteViolation as exc:
                raise LinkClosed(exc.reason, exc.detail) from None
            self.recent[data] = reply
            if len(self.recent) > RECENT_REPLIES:
                self.recent.popitem(last=False)
        return reply

    async def _read(self) -> None:
        try:
            while True:
                reply = self._decode(await self.link.recv_bytes())
                if reply.HasField("error"):
                    fut = self.waiting.get(reply.error.request_id)
                    if fut is not None and not fut.done():
                        fut.set_result(reply)
                else:
                    self.client.on_answer(self, reply)
        except (LinkClosed, asyncio.CancelledError) as exc:
            err = exc if isinstance(exc, LinkClosed) else LinkClosed(None, "closed")
            for fut in self.waiting.values():
                if not fut.done():
                    fut.set_exception(err)
        finally:
            self.link.close()

    @property
    def alive(self) -> bool:
        return not self.reader.done()

    def close(self) -> None:
        self.reader.cancel()
        self.link.close()

    # -- sending ------------------------------------------------------------------------------------
    def enqueue(self, req: pb.ClientRequest) -> None:
        """Send req with the others that become ready in this event-loop turn or while a send is in
        progress: alone as a ClientRequest, or together as one RequestBundle."""
        self.outbox.append(req)
        if not self._flush_armed and not self._sending:
            self._flush_armed = True
            asyncio.get_running_loop().call_soon(self._start_flush)

    def _start_flush(self) -> None:
        self._flush_armed = False
        if self.outbox and not self._sending:
            self._sending = True
            asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        try:
            while self.outbox:
                reqs = self.client.take_bundle(self.outbox)
                try:
                    await self.link.send_bytes(encode(self.client.message_for(reqs)))
                except LinkClosed as exc:
                    for r in reqs:
                        fut = self.waiting.get(r.request_id)
                        if fut is not None and not fut.done():
                            fut.set_exception(exc)
        finally:
            self._sending = False


class Client:
    def __init__(self, manifest: Manifest, key_seed: bytes, cluster: str | None = None, timeout_ms: int = 10000,
                 seed: int | None = None):
        self.m = manifest
        self.key = SigningKey(key_seed)
        if self.key.public not in manifest.clients:
            raise LocalError("client key is not listed in manifest.clients", 3)
        self.name = manifest.clients[self.key.public]
        self.cluster = cluster or manifest.coordinator_for(self.key.public)
        c = manifest.clusters.get(self.cluster)
        if c is None or c.role != "coordinator":
            raise LocalError(f"{self.cluster!r} is not a coordinator cluster", 2)
        self.members = c.nodes
        self.f = (len(self.members) - 1) // 3
        self._redial: dict[str, tuple[float, float]] = {}  # node id -> (not before, backoff s)
        self.timeout_ms = timeout_ms
        self.rng = random.Random(seed)
        self.next_id = int(time.time() * 1_000_000)
        self.qc_cache = QcCache()
        self.checked: OrderedDict[int, pb.ClientReply] = OrderedDict()
        self.conns: dict[str, _Conn] = {}
        self.rejected_answers = 0
        self._static = nb.randombytes(32)
        self._dialing: dict[str, asyncio.Lock] = {}
        self.bundling = BUNDLING
        self.bundles_sent = 0
        self._turn_start: int | None = None
        # the largest bundle encoding a node takes (SPEC 14.6), less room for its envelope
        self._bundle_room = min(MAX_BUNDLE_BYTES, manifest.limits["max_batch_bytes"],
                                manifest.limits["max_message_bytes"]) - BUNDLE_OVERHEAD - len(self.cluster)

    async def close(self) -> None:
        for c in self.conns.values():
            c.close()
        self.conns.clear()
        await asyncio.sleep(0)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def new_request(self, kind: int, key: bytes, value: bytes = b"", sign: bool = True) -> pb.ClientRequest:
        """A new request; unsigned when sign is False (execute() signs it if it goes out alone)."""
        op = pb.Operation(kind=kind, key=key, value=value)
        try:
            check_operation(self.m, op)
        except RemoteViolation as exc:
            raise LocalError(f"invalid operation: {exc.detail}", 2) from None
        self.next_id += 1
        req = pb.ClientRequest(client_key=self.key.public, request_id=self.next_id, cluster_id=self.cluster, op=op)
        if sign:
            self._sign(req)
        return req

    def _sign(self, req: pb.ClientRequest) -> pb.ClientRequest:
        if not req.signature:
            sign_message(self.key, "client-request", self.m.network_id, req)
        return req

    async def get(self, key: bytes) -> Result:
        return await self.execute(self.new_request(GET, key, sign=False))

    async def put(self, key: bytes, value: bytes) -> Result:
        return await self.execute(self.new_request(PUT, key, value, sign=False))

    def take_bundle(self, outbox: list[pb.ClientRequest]) -> list[pb.ClientRequest]:
        """Remove and return the longest prefix of outbox that fits one bundle (SPEC 14.6 limits).
        Ids are allocated in increasing order, and a conn's outbox keeps that order."""
        size, n = 0, 0
        for req in outbox[:MAX_BUNDLE_ITEMS]:
            size += req.op.ByteSize() + 24  # item tag, length, request id, op tag and length
            if n and size > self._bundle_room:
                break
            n += 1
        taken = outbox[:n]
        del outbox[:n]
        return taken

    def message_for(self, reqs: list[pb.ClientRequest]) -> pb.ClientMessage:
        """One ready request goes as a plain ClientRequest; several as one RequestBundle, signed once."""
        if len(reqs) == 1:
            return pb.ClientMessage(submit=self._sign(reqs[0]))
        reqs = sorted(reqs, key=lambda r: r.request_id)
        b = pb.RequestBundle(client_key=self.key.public, cluster_id=self.cluster,
                             items=[pb.BundleItem(request_id=r.request_id, op=r.op) for r in reqs])
        sign_message(self.key, "client-bundle", self.m.network_id, b)
        self.bundles_sent += 1
        return pb.ClientMessage(submit_bundle=b)

    def on_answer(self, conn: _Conn, reply: pb.ClientReply) -> None:
        """SPEC 14.4: a valid answer answers every outstanding request of this client whose id is in
        the leaf, whichever connection it waits on. Requests waiting on the connection the answer came
        in on get it as is (execute() validates it and counts a rejection); those waiting elsewhere
        get it only if it is valid, so a faulty node cannot disturb requests sent to other nodes."""
        valid: bool | None = None
        for resp in reply.answer.leaf.responses:
            fut = conn.waiting.get(resp.request_id)
            if fut is None:
                for other in self.conns.values():
                    if other is not conn and resp.request_id in other.waiting:
                        if valid is None:
                            valid = self._answer_ok(reply)
                        fut = other.waiting[resp.request_id] if valid else None
                        break
            if fut is not None and not fut.done():
                fut.set_result(reply)

    def _answer_ok(self, reply: pb.ClientReply) -> bool:
        try:
            self._check_answer(reply)
        except RemoteViolation:
            return False
        return True

    def _check_answer(self, reply: pb.ClientReply) -> None:
        if id(reply) not in self.checked:  # the same decoded reply answers several requests
            check_compact(self.m, reply.answer, self.cluster, client_destination(self.key.public),
                          qc_cache=self.qc_cache)
            self.checked[id(reply)] = reply  # holding it keeps its id from being reused
            if len(self.checked) > RECENT_REPLIES * 4:
                self.checked.popitem(last=False)

    def _first_member(self) -> int:
        """Requests made ready in one event-loop turn start at the same member, so they can share
        one bundle; the member is drawn at random once per turn."""
        if not self.bundling:
            return self.rng.randrange(len(self.members))
        if self._turn_start is None:
            self._turn_start = self.rng.randrange(len(self.members))
            asyncio.get_running_loop().call_soon(self._end_turn)
        return self._turn_start

    def _end_turn(self) -> None:
        self._turn_start = None

    async def _conn(self, node, timeout: float) -> _Conn:
        lock = self._dialing.setdefault(node.id, asyncio.Lock())
        async with lock:
            c = self.conns.get(node.id)
            if c is not None and c.alive:
                return c
            loop = asyncio.get_running_loop()
            not_before, backoff = self._redial.get(node.id, (0.0, 0.0))
            if loop.time() < not_before:  # SPEC 14.5: no redial sooner than the reconnect backoff
                raise LinkClosed(None, "reconnect backoff")
            hello = pb.Hello(protocol_version=1, network_id=self.m.network_id)
            # SPEC 13: on the client port the dialled node is identified by its static key alone.
            try:
                link = await connect(node.host, node.client_port, self.m.network_id, self._static, hello,
                                     node.x25519_public, self.m.limits["max_message_bytes"],
                                     timeout=max(0.001, min(5.0, timeout)))
            except LinkClosed:
                backoff = min(2.0, backoff * 2) if backoff else 0.1  # SPEC 13: 100 ms doubling to 2 s
                self._redial[node.id] = (loop.time() + backoff, backoff)
                raise
            self._redial.pop(node.id, None)
            c = _Conn(link, self)
            self.conns[node.id] = c
            return c

    def _validate(self, reply: pb.ClientReply, req: pb.ClientRequest) -> pb.ClientResponse:
        cd = reply.answer
        self._check_answer(reply)
        for resp in cd.leaf.responses:
            if resp.request_id == req.request_id:
                if resp.kind != req.op.kind:
                    raise RemoteViolation("malformed", "response kind differs from the request")
                return resp
        raise RemoteViolation("malformed", "answer does not hold our request id")

    async def execute(self, req: pb.ClientRequest) -> Result:
        """SPEC 14.5: rounds over the members until a valid answer, a final error (f + 1 members
        agree on a code about the request) or the deadline, with jittered backoff between rounds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_ms / 1000
        n = len(self.members)
        start = self._first_member()
        failures: dict[str, str] = {}
        votes: dict[int, set[str]] = {}  # final-kind error code -> members that answered it
        attempt, rnd = 0, 0
        while loop.time() < deadline:
            for i in range(n):
                if loop.time() >= deadline:
                    break
                node = self.members[(start + i) % n]
                outcome = await self._attempt(node, req, attempt, deadline, failures)
                attempt += 1
                if isinstance(outcome, Result):
                    return outcome
                if outcome is not None:  # a final-kind error code from this member
                    votes.setdefault(outcome, set()).add(node.id)
                    if len(votes[outcome]) >= self.f + 1:
                        raise NoValidAnswer(self.cluster, req.request_id, failures,
                                            final=pb.ClientErrorCode.Name(outcome))
            rnd += 1
            await asyncio.sleep(min(max(0.0, deadline - loop.time()), retry_backoff(rnd, self.rng)))
        raise NoValidAnswer(self.cluster, req.request_id, failures)

    async def _attempt(self, node, req: pb.ClientRequest, attempt: int, deadline: float,
                       failures: dict[str, str]) -> Result | int | None:
        """One try at one member: its Result, a final-kind error code, or None (retry elsewhere)."""
        loop = asyncio.get_running_loop()
        per_try = self.m.timeouts["client_timeout"] / 1000 + 1.0
        try:
            conn = await self._conn(node, deadline - loop.time())
            fut = loop.create_future()
            conn.waiting[req.request_id] = fut
            try:
                if attempt == 0 and self.bundling:
                    conn.enqueue(req)
                else:  # a retry goes alone, as a ClientRequest with the same id and operation
                    await conn.link.send(pb.ClientMessage(submit=self._sign(req)))
                reply = await asyncio.wait_for(fut, max(0.001, min(per_try, deadline - loop.time())))
            finally:
                conn.waiting.pop(req.request_id, None)
            if reply.HasField("error"):
                code = reply.error.code
                failures[node.id] = f"{pb.ClientErrorCode.Name(code)}: {reply.error.message}"
                return None if code in (pb.CLIENT_ERROR_TIMEOUT, pb.CLIENT_ERROR_OVERLOADED) else code
            resp = self._validate(reply, req)
        except RemoteViolation as exc:
            self.rejected_answers += 1
            failures[node.id] = f"invalid answer ({exc.reason}: {exc.detail})"
            return None
        except LinkClosed as exc:
            failures[node.id] = f"connection failed ({exc.detail})"
            return None
        except TimeoutError:
            failures[node.id] = "timed out"
            return None
        cd = reply.answer
        return Result(op="get" if req.op.kind == GET else "put", key=req.op.key, found=resp.found,
                      value=(resp.value if resp.found else None) if req.op.kind == GET else req.op.value,
                      cluster=self.cluster, height=cd.header.height, node=node.id, shard=resp.shard_id,
                      shard_height=resp.shard_height, request_id=req.request_id)


def retry_backoff(round_no: int, rng: random.Random) -> float:
    """SPEC 14.5: seconds to wait after round r, uniform in [b/2, b], b = min(1000, 50 * 2^(r-1)) ms."""
    b = min(1000.0, 50.0 * 2 ** min(round_no - 1, 16))
    return rng.uniform(b / 2, b) / 1000


def default_coordinator(manifest: Manifest, client_key: bytes) -> str:
    (x,) = struct.unpack(">Q", sha256(client_key)[:8])
    return manifest.coordinators[x % len(manifest.coordinators)]


if __name__ == "__main__":
    import sys

    from impl_a.client_cli import main

    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
