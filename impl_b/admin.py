"""Admin HTTP server of SPEC 15 / 15.1: /health, /status, /metrics and /log/<height>."""

import contextlib
import json
import selectors
import socket
import threading
import time

from . import adminparse
from .codec import encode
from .limits import ADMIN_CONNECTIONS, ADMIN_DEADLINE, LINGER_BYTES, LINGER_SECONDS


def metrics_text(rt) -> str:
    st = rt.status()
    lab = f'node="{rt.me}",cluster="{rt.cid}"'
    c = st["counters"]
    lines = []

    def metric(name, typ, helptext, samples):
        lines.append(f"# HELP {name} {helptext}")
        lines.append(f"# TYPE {name} {typ}")
        for extra, v in samples:
            lines.append(f"{name}{{{lab}{extra}}} {v}")

    metric("heraclius_height", "gauge", "last decided height", [("", st["height"])])
    metric("heraclius_view", "gauge", "current view", [("", st["view"])])
    metric("heraclius_decisions_total", "counter", "decisions applied", [("", c["decisions"])])
    metric("heraclius_batch_inputs_total", "counter", "inputs in applied decisions", [("", c["batch_inputs"])])
    metric("heraclius_view_changes_total", "counter", "views entered after view 0", [("", c["view_changes"])])
    metric("heraclius_client_requests_total", "counter", "requests accepted on the client port",
           [("", c["client_requests"])])
    metric("heraclius_client_bundles_total", "counter", "RequestBundles accepted on the client port",
           [("", c["client_bundles"])])
    metric("heraclius_client_replies_total", "counter", "answers sent to clients", [("", c["client_replies"])])
    metric("heraclius_client_errors_total", "counter", "ClientReply{error} messages sent by code",
           [(f',code="{k}"', v) for k, v in sorted(rt.client_errors.items())])
    metric("heraclius_pending_requests", "gauge", "size of the request pool", [("", st["pending"]["requests"])])
    metric("heraclius_pending_remote", "gauge", "size of the remote-input pool", [("", st["pending"]["remote"])])
    metric("heraclius_rejected_total", "counter", "rejected inputs by reason",
           [(f',reason="{k}"', v) for k, v in sorted(st["rejected"].items())])
    metric("heraclius_byzantine_evidence_total", "counter", "evidence records by kind",
           [(f',kind="{k}"', v) for k, v in sorted(rt.log.evidence_counts.items())])
    metric("heraclius_peer_up", "gauge", "outbound link established",
           [(f',peer="{p["node_id"]}"', int(p["connected"])) for p in st["peers"]])
    return "\n".join(lines) + "\n"


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
           414: "URI Too Long", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}


def response(status: int, body: bytes, ctype: str = "text/plain", head: bool = False, close: bool = False,
             extra: tuple = ()) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}", f"Content-Length: {len(body)}"]
    if body:
        lines.append(f"Content-Type: {ctype}")
    lines += list(extra)
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else body)


def answer(rt, v) -> bytes:
    """The HTTP answer to one parsed admin request (adminparse.Verdict) for runtime `rt`."""
    if v.status != 200:
        rt.log.reject("bad_http_request", "admin", f"{v.status} {v.why}")
        extra = ("Allow: GET, HEAD",) if v.status == 405 else ()
        return response(v.status, f"{v.why}\n".encode(), head=v.head, close=v.close, extra=extra)
    if v.route == "health":
        return response(200, b"ok\n", head=v.head, close=v.close)
    if v.route == "status":
        with rt.lock:
            body = json.dumps(rt.status()).encode()
        return response(200, body, "application/json", v.head, v.close)
    if v.route == "metrics":
        with rt.lock:
            body = metrics_text(rt).encode()
        return response(200, body, "text/plain; version=0.0.4", v.head, v.close)
    with rt.lock:
        h = v.height
        d = rt.decision(h) if 1 <= h <= rt.replica.height else None
    if d is None:
        return response(404, b"not decided\n", head=v.head, close=v.close)
    return response(200, encode(d.copy(qc=None)), "application/octet-stream", v.head, v.close)


class _Conn:
    __slots__ = ("sock", "inbuf", "out", "deadline", "close_after", "lingering", "linger_left", "pipelined")

    def __init__(self, sock, now: float):
        self.sock = sock
        self.inbuf = bytearray()
        self.out = bytearray()
        self.deadline = now + ADMIN_DEADLINE
        self.close_after = False
        self.lingering = False  # answered and shut down for writing: reading off what is left
        self.linger_left = LINGER_BYTES  # bytes still read and discarded before the close
        self.pipelined = False  # more bytes after the last answered request: serve them once it is out


class AdminServer:
    """SPEC 15.1 admin port on one thread with its own selector: at most 64 connections, a 5 s
    deadline per request (and idle keep-alive), every request answered by the table of
    adminparse. Status is read under the runtime lock, which the consensus step holds for one
    bounded round at a time."""

    def __init__(self, rt, sock):
        self.rt = rt
        self.lsock = sock
        sock.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(sock, selectors.EVENT_READ, None)
        self.conns: dict = {}
        self.more: set = set()  # connections with a further pipelined request already read
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="impl_b-admin", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping = True
        self.thread.join(timeout=2)

    # ------------------------------------------------------------ loop

    def _run(self) -> None:
        while not self.stopping:
            for c in list(self.more):  # one answer per turn: each goes out in its own send
                self.more.discard(c)
                if c.sock.fileno() in self.conns:
                    self._serve(c)
                    self._flush(c)
            for key, mask in self.sel.select(timeout=0 if self.more else 0.2):
                try:
                    if key.data is None:
                        self._accept()
                    else:
                        self._io(key.data, mask)
                except Exception as e:  # noqa: BLE001 - one connection's failure closes it alone
                    if key.data is not None:
                        self._close(key.data, "malformed", f"admin handler error {type(e).__name__}: {e}")
            now = time.monotonic()
            for c in [c for c in self.conns.values() if now > c.deadline]:
                if c.lingering:
                    self._close(c, None, "")
                    continue
                with contextlib.suppress(OSError):
                    c.sock.send(response(408, b"request timeout\n", close=True))
                self._close(c, "slow_peer", "admin request not complete within 5 s")
        for c in list(self.conns.values()):
            self._close(c, None, "")

    def _accept(self) -> None:
        for _ in range(64):
            try:
                s, _addr = self.lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            s.setblocking(False)
            if len(self.conns) >= ADMIN_CONNECTIONS:
                with contextlib.suppress(OSError):  # no slot to linger in: read off what already came
                    s.send(response(503, b"too many admin connections\n", close=True))
                    s.shutdown(socket.SHUT_WR)
                    s.recv(LINGER_BYTES)
                s.close()
                self.rt.log.reject("connection_limit", "admin", "more than 64 admin connections")
                continue
            c = _Conn(s, time.monotonic())
            self.conns[s.fileno()] = c
            self.sel.register(s, selectors.EVENT_READ, c)

    def _io(self, c: _Conn, mask: int) -> None:
        if mask & selectors.EVENT_READ:
            try:
                data = c.sock.recv(16384)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                self._close(c, None, "")
                return
            if data == b"":
                self._close(c, None, "")
                return
            if c.lingering:  # discarded: the answer is out, only the close is left (1 s or 64 KiB)
                c.linger_left -= len(data or b"")
                if c.linger_left <= 0:
                    self._close(c, None, "")
                return
            if data:
                c.inbuf += data
                self._serve(c)
        if c.sock.fileno() in self.conns:
            self._flush(c)

    def _serve(self, c: _Conn) -> None:
        """Answer the first complete request in the buffer; a further one waits for the next turn."""
        if not c.inbuf or c.close_after or c.out:
            return
        v = adminparse.parse(bytes(c.inbuf))
        if v is None:
            return
        del c.inbuf[:v.consumed]
        c.out += self._answer(v)
        c.deadline = time.monotonic() + ADMIN_DEADLINE
        if v.close:
            c.close_after = True
        elif c.inbuf:
            c.pipelined = True

    def _answer(self, v) -> bytes:
        return answer(self.rt, v)

    def _flush(self, c: _Conn) -> None:
        while c.out:
            try:
                n = c.sock.send(c.out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close(c, None, "")
                return
            del c.out[:n]
        if not c.out and c.pipelined:
            c.pipelined = False
            self.more.add(c)
        if not c.out and c.close_after:
            # Lingering close: shut the sending side and read off what the client still sends, so
            # that closing with unread bytes does not reset the connection over the answer.
            with contextlib.suppress(OSError):
                c.sock.shutdown(socket.SHUT_WR)
            c.lingering = True
            c.inbuf = bytearray()
            c.deadline = time.monotonic() + LINGER_SECONDS
            with contextlib.suppress(KeyError, ValueError):
                self.sel.modify(c.sock, selectors.EVENT_READ, c)
            return
        want = selectors.EVENT_WRITE if c.out else selectors.EVENT_READ
        with contextlib.suppress(KeyError, ValueError):
            self.sel.modify(c.sock, want, c)

    def _close(self, c: _Conn, reason: str | None, detail: str) -> None:
        fd = c.sock.fileno()
        if fd < 0 or self.conns.pop(fd, None) is None:
            return
        if reason:
            self.rt.log.reject(reason, "admin", detail)
        self.more.discard(c)
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(c.sock)
        c.sock.close()
