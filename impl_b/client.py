"""impl_b client library (SPEC 14): signed GET/PUT, validated answers, retries across members.

    c = Client(manifest, signer)          # or Client.from_files(manifest_path, key_path)
    ans = c.put(b"k", b"v"); ans = c.get(b"k")   # -> Answer, or raises ClientFailure

The command line of SPEC 4.1 is in client_cli.py (`python -m impl_b.client`).
"""

import collections
import contextlib
import os
import random
import socket
import threading
import time
import weakref

from . import codec, crypto
from .bundler import Bundler, NodeError
from .checks import Checker, client_destination, sign_message
from .codec import encode
from .manifest import load
from .schema import OP_GET, OP_PUT
from .session import LinkError, Session, node_key_checker


class ClientFailure(Exception):
    """No valid answer from the coordinator cluster before the deadline, or a final error (SPEC
    14.5: f + 1 members answered the same final code, `final_code`)."""

    def __init__(self, cluster: str, request_id: int, failures: dict, final_code: int = 0):
        detail = "; ".join(f"{n}: {why}" for n, why in failures.items())
        what = f"final error {final_code}" if final_code else "no valid answer"
        super().__init__(f"cluster {cluster}, request {request_id}: {what} ({detail})")
        self.cluster, self.request_id, self.failures = cluster, request_id, failures
        self.final_code = final_code


# SPEC 14.5: codes every correct member computes alike (final once f + 1 members agree); TIMEOUT (8)
# and OVERLOADED (7) are never final.
FINAL_CODES = frozenset({1, 2, 3, 4, 5, 6})


def round_backoff(r: int, rng: random.Random) -> float:
    """Seconds to wait after retry round r (1-based): b = min(1000, 50 * 2^(r-1)) ms, from [b/2, b]."""
    b = min(1000.0, 50.0 * 2 ** min(r - 1, 10)) / 1000
    return rng.uniform(b / 2, b)


class Retries:
    """SPEC 14.5 retry state of one operation, without I/O: which member to try next, when, and
    whether an error is final. `pick(now)` returns a member to try now, or None (wait `wait(now)`)."""

    def __init__(self, members: list, start: int, f: int, rng: random.Random, redial: dict):
        self.members, self.f, self.rng = members, f, rng
        self.pos = start
        self.round = 1
        self.tried: set = set()
        self.redial = redial  # node -> (next dial time, backoff): shared by a client's operations
        self.codes: dict[int, set] = {}
        self.round_end = None  # monotonic time before which round `round` may not start

    def pick(self, now: float):
        if self.round_end is not None:
            if now < self.round_end:
                return None
            self.round_end = None
        for _ in range(len(self.members)):
            node = self.members[self.pos]
            self.pos = (self.pos + 1) % len(self.members)
            if node in self.tried:
                continue
            self.tried.add(node)
            if self.redial.get(node, (0.0, 0.0))[0] > now:
                continue  # its connection just failed: not before the transport's reconnect backoff
            return node
        self.round_end = now + round_backoff(self.round, self.rng)  # every member tried this round
        self.round += 1
        self.tried = set()
        return None

    def wait(self, now: float) -> float:
        return max(0.0, (self.round_end or now) - now)

    def connection_failed(self, node: str, now: float) -> None:
        _t, b = self.redial.get(node, (0.0, 0.05))
        b = min(2.0, max(0.1, b * 2))
        self.redial[node] = (now + b, b)

    def connected(self, node: str) -> None:
        self.redial.pop(node, None)

    def error(self, node: str, code: int) -> bool:
        """Record member `node` answering `code`; True once the error is final."""
        if code not in FINAL_CODES:
            return False
        agree = self.codes.setdefault(code, set())
        agree.add(node)
        return len(agree) >= self.f + 1


class Answer:
    """A validated answer: our request, the coordinator's compact decision and our response in it."""

    __slots__ = ("request", "compact", "response", "node")

    def __init__(self, request, compact, response, node: str):
        self.request, self.compact, self.response, self.node = request, compact, response, node

    op = property(lambda self: "get" if self.request.op.kind == OP_GET else "put")
    key = property(lambda self: self.request.op.key)
    found = property(lambda self: self.response.found)
    cluster = property(lambda self: self.compact.header.cluster_id)
    height = property(lambda self: self.compact.header.height)
    shard = property(lambda self: self.response.shard_id)
    shard_height = property(lambda self: self.response.shard_height)
    request_id = property(lambda self: self.request.request_id)

    @property
    def value(self) -> bytes | None:
        """GET: the value read (None when absent); PUT: the value written."""
        if self.request.op.kind == OP_PUT:
            return self.request.op.value
        return self.response.value if self.response.found else None

    def __repr__(self):
        return f"Answer({self.op} {self.key!r} -> found={self.found} value={self.value!r} at {self.cluster}/{self.height})"


class RequestIds:
    """Strictly increasing request ids: microseconds at creation, then +1 per request (SPEC 14.2).

    Ids advance by one per request, not with the clock: concurrent users of one key must stay
    within the coordinator's dedup window of 65536 ids of each other."""

    def __init__(self):
        self._next = int(time.time() * 1_000_000)
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._next += 1
            return self._next


# One generator per process: every Client of this process (e.g. the users of a workload sharing
# one key) draws from it, so request ids stay unique per client key.
_PROCESS_IDS = RequestIds()


class Connection:
    """A blocking Noise link to one node's client port."""

    def __init__(self, manifest, node: str, timeout: float):
        info = manifest.nodes[node]
        self.node = node
        self.sock = socket.create_connection((info.host, info.client_port), timeout=min(timeout, 5.0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sess = Session(True, os.urandom(32), manifest.network_id, "",
                            node_key_checker(manifest, node),
                            manifest.limits["max_message_bytes"])
        self.inbox: list[bytes] = []
        deadline = time.monotonic() + min(timeout, 5.0)
        self._flush()
        while not self.sess.ready:
            self._read(deadline)

    def _flush(self) -> None:
        if self.sess.out:
            self.sock.sendall(bytes(self.sess.out))
            self.sess.out.clear()

    def _read(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self.sock.settimeout(left)
        data = self.sock.recv(65536)  # a larger n costs a fresh mapping per call
        if not data:
            raise ConnectionError("connection closed by node")
        self.inbox += self.sess.feed(data)
        self._flush()

    def send(self, msg) -> None:
        self.sess.send([encode(msg)])
        self._flush()

    def recv(self, deadline: float):
        """The next reply, decoded (replies byte-identical to a recent one share its decoding)."""
        while not self.inbox:
            self._read(deadline)
        return _REPLIES.decode(self.inbox.pop(0))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class _ReplyCache:
    """Recent ClientReply encodings -> [decoded reply, {(checker, cluster, destination): reason}, {id: response}].

    All users of one client key get the same leaf (SPEC 10: one per destination), so at a batch of
    n requests every user would decode and check the n responses of the same compact decision:
    this makes it once per distinct reply and process. Entries are only read, never changed."""

    def __init__(self, size: int = 1024):
        self.size = size
        self._d: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def entry(self, raw: bytes) -> list:
        with self._lock:
            e = self._d.get(raw)
        if e is None:
            e = [codec.decode("ClientReply", raw), {}, None]
            with self._lock:
                self._d[raw] = e
                while len(self._d) > self.size:
                    self._d.popitem(last=False)
        return e

    def decode(self, raw: bytes):
        return self.entry(raw)[0]

    def verdict(self, reply, checker, cluster: str, dest: str):
        """compact_reason of reply.answer for (cluster, dest), and the responses by request id."""
        e = self.entry(encode(reply))
        key = (checker, cluster, dest)  # the verdict depends on the manifest behind the checker
        if key not in e[1]:
            e[1][key] = checker.compact_reason(reply.answer, cluster, dest, "client", None)
        if e[1][key] is not None:
            return e[1][key], {}
        if e[2] is None:
            by_id: dict = {}
            for r in reply.answer.leaf.responses:
                by_id.setdefault(r.request_id, r)  # the first, as `validate` finds it
            e[2] = by_id
        return None, e[2]


_REPLIES = _ReplyCache()
_CHECKERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CHECKERS_LOCK = threading.Lock()


def _shared_checker(manifest) -> Checker:
    """One Checker (and so one QC cache) per manifest for all clients of this process."""
    with _CHECKERS_LOCK:
        if manifest not in _CHECKERS:
            _CHECKERS[manifest] = Checker(manifest)
        return _CHECKERS[manifest]


class Client:
    """A client of one coordinator cluster."""

    def __init__(self, manifest, signer, cluster: str | None = None, timeout_ms: int = 10000, seed=None,
                 ids: RequestIds | None = None, bundler: Bundler | None = None):
        self.m = manifest
        self.signer = signer
        self.cluster = cluster or manifest.default_coordinator(signer.public)
        if self.cluster not in manifest.coordinators:
            raise ValueError(f"{self.cluster!r} is not a coordinator cluster")
        self.members = manifest.clusters[self.cluster].members
        self.timeout_ms = timeout_ms
        self.checker = _shared_checker(manifest)
        self.ids = ids or _PROCESS_IDS
        self.rng = random.Random(seed)
        self.pos = self.rng.randrange(len(self.members))
        self.conn: Connection | None = None
        self.redial: dict = {}  # member -> (no dial before, backoff) after a failed connection
        self.rejected_answers = 0
        # Shared with the other users of this process (see bundler.py): ready requests go out
        # together as RequestBundles over one connection per member.
        self.bundler = bundler
        if bundler is not None:
            self.pos = bundler.start

    @classmethod
    def from_files(cls, manifest_path: str, key_path: str, **kw) -> "Client":
        return cls(load(manifest_path), crypto.Signer(crypto.read_key_file(key_path)), **kw)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def get(self, key: bytes) -> Answer:
        return self.execute(OP_GET, key, b"")

    def put(self, key: bytes, value: bytes) -> Answer:
        return self.execute(OP_PUT, key, value)

    def new_bundler(self) -> Bundler:
        """A Bundler for the users of this process that share this client's key and cluster."""
        return Bundler(self.m, self.signer, self.cluster, self.checker, start=self.pos)

    def make_request(self, kind: int, key: bytes, value: bytes, sign: bool = True):
        """A new request; unsigned when `sign` is False (signed when sent alone; a bundle signs once)."""
        req = codec.ClientRequest(client_key=self.signer.public, request_id=self.ids.next(),
                                  cluster_id=self.cluster, op=codec.Operation(kind=kind, key=key, value=value))
        if sign:
            sign_message(self.signer, self.m.network_id, req)
        return req

    def execute(self, kind: int, key: bytes, value: bytes, req=None) -> Answer:
        """Send `req` to the members in turn until a valid answer, a final error (f + 1 members
        agree) or the deadline, with jittered backoff between rounds (SPEC 14.5)."""
        req = req or self.make_request(kind, key, value)
        deadline = time.monotonic() + self.timeout_ms / 1000
        failures: dict[str, str] = {}
        f = (len(self.members) - 1) // 3
        plan = Retries(self.members, self.pos, f, self.rng, self.redial)
        first = True
        while True:
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                break
            node = plan.pick(now)
            if node is None:
                time.sleep(min(plan.wait(now), left))
                continue
            per_try = min(left, max(1.5, left / len(self.members)))
            try:
                if self.bundler is not None:
                    ans = self.bundler.submit(node, req, not first, per_try)
                else:
                    ans = self._direct(node, req, left, per_try)
                plan.connected(node)
                if ans is not None:
                    self.pos = self.members.index(node)
                    return ans
                failures[node] = "invalid answer"
            except NodeError as e:
                failures[node] = str(e)
                if e.code == 0:
                    plan.connection_failed(node, time.monotonic())
                elif plan.error(node, e.code):
                    self.close()
                    raise ClientFailure(self.cluster, req.request_id, failures, final_code=e.code) from None
            except (OSError, TimeoutError, ConnectionError, LinkError, codec.DecodeError) as e:
                failures[node] = f"{type(e).__name__}: {e}"
                if not isinstance(e, TimeoutError):
                    plan.connection_failed(node, time.monotonic())
            first = False
            self.close()
        raise ClientFailure(self.cluster, req.request_id, failures)

    def _direct(self, node: str, req, left: float, per_try: float) -> Answer | None:
        """One attempt on this client's own connection."""
        if self.conn is None or self.conn.node != node:
            self.close()
            self.conn = Connection(self.m, node, left)
        if not req.signature:
            sign_message(self.signer, self.m.network_id, req)
        self.conn.send(codec.ClientMessage(submit=req))
        return self._await(req, time.monotonic() + min(per_try, left))

    def _await(self, req, deadline: float) -> Answer | None:
        while True:
            reply = self.conn.recv(deadline)
            if reply.error is not None:
                if reply.error.request_id in (0, req.request_id):
                    raise NodeError(f"error {reply.error.code}: {reply.error.message}", reply.error.code)
                continue
            ans = self._validate_reply(reply, req)
            if ans is _OTHER:
                continue  # a valid (e.g. grouped, SPEC 14.4) answer for requests we no longer wait for
            if ans is not None:
                return ans
            self.rejected_answers += 1
            return None

    def _validate_reply(self, reply, req):
        """`validate` through the process-wide reply cache (same verdicts, computed once per reply).

        Returns the Answer, None for an invalid answer, or _OTHER for a valid compact decision
        without a response to `req` (responses for ids we do not wait for are ignored)."""
        if reply.answer is None:
            return None
        reason, by_id = _REPLIES.verdict(reply, self.checker, self.cluster, client_destination(self.signer.public))
        if reason is not None:
            return None
        r = by_id.get(req.request_id)
        if r is None:
            return _OTHER
        if r.kind != req.op.kind:
            return None
        return Answer(req, reply.answer, r, self.conn.node if self.conn else "")

    def validate(self, cd, req) -> Answer | None:
        """SPEC 14.4: a valid compact decision of our coordinator holding our response."""
        dest = client_destination(self.signer.public)
        if cd is None or self.checker.compact_reason(cd, self.cluster, dest, "client", None) is not None:
            return None
        for r in cd.leaf.responses:
            if r.request_id == req.request_id:
                if r.kind != req.op.kind:
                    return None
                return Answer(req, cd, r, self.conn.node if self.conn else "")
        return None


_OTHER = object()  # _validate_reply: a valid answer that does not answer this request


if __name__ == "__main__":
    import sys

    from .client_cli import main

    sys.exit(main())
