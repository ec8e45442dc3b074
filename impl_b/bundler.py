"""Request bundling for the many users of one client process (SPEC 14.6), and the grouped answers
that come back (SPEC 14.3/14.4).

A Bundler keeps one shared Noise connection (a Pipe) per coordinator member. Users hand it their
request and wait; a sender thread per pipe sends everything that became ready since its last send
(while a send is in progress, requests pile up) as one signed RequestBundle of at most 256 items,
or a lone ready request as a plain ClientRequest. Users woken by one grouped answer are this
client's "same event-loop turn": the sender waits (at most LINGER_S) until as many requests as that
answer completed have been handed in, so that they share one bundle. A reader thread per pipe matches replies: an error
completes the item it names, a valid answer completes every waiting request whose id and kind its
leaf holds. Retries are the caller's (Client.execute): a retried request goes alone, as a
ClientRequest with the same id and operation, which the coordinator's deduplication makes safe.
"""

import contextlib
import socket
import threading
import time

from . import codec
from .checks import MAX_BUNDLE_BYTES, MAX_BUNDLE_ITEMS, client_destination, sign_message
from .codec import encode
from .session import LinkError

# Room left for the bundle's own fields (key, cluster id, signature) under the byte limit.
_BUNDLE_OVERHEAD = 256
# Longest wait of the sender for the users woken by one answer (it ends early once they all sent).
LINGER_S = 0.02


class NodeError(Exception):
    """A ClientError answer from a node (the caller moves on to the next member); `code` is the
    ClientError code (0 when the failure was not an answer)."""

    def __init__(self, msg: str, code: int = 0):
        super().__init__(msg)
        self.code = code


class _Slot:
    """One waiting request."""

    __slots__ = ("req", "alone", "done", "answer", "error")

    def __init__(self, req, alone: bool):
        self.req, self.alone = req, alone
        self.done = threading.Event()
        self.answer = None
        self.error: Exception | None = None

    def finish(self, answer=None, error: Exception | None = None) -> None:
        self.answer, self.error = answer, error
        self.done.set()


class Pipe:
    """A shared connection to one member's client port with its sender and reader threads."""

    def __init__(self, owner: "Bundler", node: str):
        self.owner, self.node = owner, node
        self.lock = threading.Lock()  # guards conn, waiting and ready
        self.wake = threading.Condition(self.lock)
        self.connect_lock = threading.Lock()
        self.conn = None
        self.waiting: dict[int, _Slot] = {}
        self.ready: list[_Slot] = []
        self.expect = 0  # users woken by the last answers that have not handed in a request yet
        self.expect_until = 0.0
        self.closed = False

    # ------------------------------------------------------------ user side

    def submit(self, req, alone: bool, timeout: float):
        """Send `req` (in a bundle unless `alone`) and wait for its outcome up to `timeout` s."""
        self._connect(timeout)
        slot = _Slot(req, alone)
        with self.lock:
            if self.conn is None:
                raise ConnectionError("connection closed")
            self.waiting[req.request_id] = slot
            self.ready.append(slot)
            if self.expect > 0:
                self.expect -= 1
            if self.expect == 0:  # the sender waits for the last expected one only
                self.wake.notify()
        if not slot.done.wait(timeout):
            with self.lock:
                if self.waiting.get(req.request_id) is slot:
                    del self.waiting[req.request_id]
            if not slot.done.is_set():
                raise TimeoutError("timed out")
        if slot.error is not None:
            raise slot.error
        return slot.answer

    def _connect(self, timeout: float) -> None:
        from .client import Connection

        with self.connect_lock:
            if self.conn is not None or self.closed:
                return
            conn = Connection(self.owner.m, self.node, timeout)
            conn.sock.settimeout(None)
            with self.lock:
                self.conn = conn
            threading.Thread(target=self._send_loop, args=(conn,), daemon=True,
                             name=f"bundler-send-{self.node}").start()
            threading.Thread(target=self._read_loop, args=(conn,), daemon=True,
                             name=f"bundler-read-{self.node}").start()

    def _broken(self, conn, why: Exception) -> None:
        """Fail every waiting request of `conn` and forget it (the next submit reconnects)."""
        with self.lock:
            if self.conn is not conn:
                return
            self.conn = None
            slots = list(self.waiting.values())
            self.waiting.clear()
            self.ready.clear()
            self.wake.notify_all()
        with contextlib.suppress(OSError):
            conn.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader blocked in recv
        conn.close()
        for s in slots:
            s.finish(error=ConnectionError(f"connection lost: {why}"))

    def close(self) -> None:
        with self.lock:
            self.closed = True
            conn = self.conn
        if conn is not None:
            self._broken(conn, ConnectionError("client closed"))

    # ------------------------------------------------------------ sender thread

    def _send_loop(self, conn) -> None:
        while True:
            with self.lock:
                while not self.ready and self.conn is conn:
                    self.wake.wait(1.0)
                while self.expect > 0 and self.conn is conn:
                    left = self.expect_until - time.monotonic()
                    if left <= 0:
                        self.expect = 0
                        break
                    self.wake.wait(left)
                if self.conn is not conn:
                    return
                slots, self.ready = self.ready, []
            try:
                msgs = self.owner.messages(slots)
                conn.sess.send([encode(m) for m in msgs])
                data = bytes(conn.sess.out)
                conn.sess.out.clear()
                conn.sock.sendall(data)
            except (OSError, LinkError) as e:
                self._broken(conn, e)
                return

    # ------------------------------------------------------------ reader thread

    def _read_loop(self, conn) -> None:
        try:
            while True:
                data = conn.sock.recv(65536)
                if not data:
                    raise ConnectionError("connection closed by node")
                for raw in conn.sess.feed(data):
                    self._on_reply(raw)
        except (OSError, LinkError, codec.DecodeError) as e:
            self._broken(conn, e)

    def _on_reply(self, raw: bytes) -> None:
        from .client import _REPLIES, Answer

        reply = _REPLIES.decode(raw)
        if reply.error is not None:
            with self.lock:
                slot = self.waiting.pop(reply.error.request_id, None)
            if slot is not None:
                slot.finish(error=NodeError(f"error {reply.error.code}: {reply.error.message}", reply.error.code))
            return
        owner = self.owner
        reason, by_id = _REPLIES.verdict(reply, owner.checker, owner.cluster, owner.dest)
        if reason is not None:
            # An invalid answer concerns only the requests sent to this member (SPEC 14.4): they are
            # retried on the next one.
            owner.count_rejected()
            leaf = reply.answer.leaf
            with self.lock:
                bad = [self.waiting.pop(r.request_id, None) for r in (leaf.responses if leaf else [])]
            for slot in bad:
                if slot is not None:
                    slot.finish()
            return
        # A valid answer completes every request it answers, on whichever pipe it waits (SPEC 14.4).
        for pipe in owner.all_pipes():
            pipe._complete(reply.answer, by_id, pipe is self, Answer, self.node)

    def _complete(self, cd, by_id: dict, own: bool, answer_cls, node: str) -> None:
        done = []
        with self.lock:
            waiting = self.waiting
            for rid, r in by_id.items():
                slot = waiting.get(rid)
                if slot is None:
                    continue  # not waited for: ignored
                if r.kind != slot.req.op.kind:
                    if not own:
                        continue
                    r = None  # our id with another kind: not an answer to this request
                del waiting[rid]
                done.append((slot, r))
            if len(done) > 1:
                self.expect += len(done)
                self.expect_until = time.monotonic() + LINGER_S
        for slot, r in done:
            # r None: an invalid answer, the caller tries the next member
            slot.finish(answer_cls(slot.req, cd, r, node) if r is not None else None)


class Bundler:
    """Shared pipes of one client key and coordinator cluster (one per client process)."""

    def __init__(self, manifest, signer, cluster: str, checker, start: int = 0):
        self.m, self.signer, self.cluster, self.checker = manifest, signer, cluster, checker
        # Every user starts at the same member, so that their requests share bundles.
        self.start = start
        self.dest = client_destination(signer.public)
        self.max_bytes = min(MAX_BUNDLE_BYTES, manifest.limits["max_batch_bytes"]) - _BUNDLE_OVERHEAD
        self.pipes: dict[str, Pipe] = {}
        self.lock = threading.Lock()
        self.rejected_answers = 0
        self.sent = {"requests": 0, "bundles": 0, "bundled_items": 0}

    def pipe(self, node: str) -> Pipe:
        with self.lock:
            p = self.pipes.get(node)
            if p is None:
                p = self.pipes[node] = Pipe(self, node)
            return p

    def submit(self, node: str, req, alone: bool, timeout: float):
        return self.pipe(node).submit(req, alone, timeout)

    def all_pipes(self) -> list:
        with self.lock:
            return list(self.pipes.values())

    def count_rejected(self) -> None:
        with self.lock:
            self.rejected_answers += 1

    def close(self) -> None:
        for p in list(self.pipes.values()):
            p.close()

    def messages(self, slots: list) -> list:
        """ClientMessages for the ready requests: lone or retried ones as ClientRequests, the others
        in bundles of ascending ids (at most 256 items and the byte limit each)."""
        msgs, group = [], []
        for s in slots:
            (msgs.append(self._single(s.req)) if s.alone else group.append(s.req))
        group.sort(key=lambda r: r.request_id)
        chunk: list = []
        size = 0
        for req in group:
            item = codec.BundleItem(request_id=req.request_id, op=req.op)
            n = len(encode(item)) + 4
            if chunk and (len(chunk) >= MAX_BUNDLE_ITEMS or size + n > self.max_bytes):
                msgs.append(self._bundle(chunk))
                chunk, size = [], 0
            chunk.append((req, item))
            size += n
        if chunk:
            msgs.append(self._bundle(chunk))
        return msgs

    def _single(self, req):
        if not req.signature:
            sign_message(self.signer, self.m.network_id, req)
        with self.lock:
            self.sent["requests"] += 1
        return codec.ClientMessage(submit=req)

    def _bundle(self, chunk: list):
        if len(chunk) == 1:
            return self._single(chunk[0][0])
        b = codec.RequestBundle(client_key=self.signer.public, cluster_id=self.cluster,
                                items=[item for _req, item in chunk])
        sign_message(self.signer, self.m.network_id, b)
        with self.lock:
            self.sent["bundles"] += 1
            self.sent["bundled_items"] += len(chunk)
        return codec.ClientMessage(submit_bundle=b)

