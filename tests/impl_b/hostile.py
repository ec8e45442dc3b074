"""Helpers for hostile-input tests against real impl_b node processes: raw sockets, a Noise
initiator with any static key, /proc readings."""

import os
import socket
import time

from impl_b import codec
from impl_b.session import Session

ZERO_E = b"\x00\x20" + bytes(32)  # Noise message 1 whose ephemeral key is the zero point


def raw(port: int, data: bytes = b"", timeout: float = 5.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if data:
        s.sendall(data)
    return s


def closed_by_peer(s: socket.socket, timeout: float = 6.0) -> bool:
    """True when the node closes the connection (EOF or reset) within `timeout`."""
    s.settimeout(timeout)
    end = time.monotonic() + timeout
    try:
        while time.monotonic() < end:
            if not s.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


def client_session(port: int, network_id: str, static: bytes | None = None, timeout: float = 5.0):
    """(socket, ready Session) after a client-port XX handshake with static key `static`."""
    s = raw(port, timeout=timeout)
    sess = Session(True, static or os.urandom(32), network_id, "", lambda h, rs: "", 1 << 20)
    s.sendall(bytes(sess.out))
    sess.out.clear()
    while not sess.ready:
        got = s.recv(65536)
        if not got:
            raise ConnectionError("closed during the handshake")
        sess.feed(got)
        if sess.out:
            s.sendall(bytes(sess.out))
            sess.out.clear()
    return s, sess


def send_app(s: socket.socket, sess: Session, messages: list[bytes]) -> None:
    sess.send(messages)
    s.sendall(bytes(sess.out))
    sess.out.clear()


def read_replies(s: socket.socket, sess: Session, count: int, timeout: float = 10.0) -> list:
    out: list = []
    s.settimeout(timeout)
    while len(out) < count:
        got = s.recv(65536)
        if not got:
            break
        out += [codec.decode("ClientReply", m) for m in sess.feed(got)]
    return out


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
