"""SPEC 15.1 against a real impl_b node: hostile admin requests are answered by the table, slow
connections are closed after 5 s, at most 64 are served and the node never adds a thread for them."""

import contextlib
import socket
import time

import pytest

from .hostile import closed_by_peer, raw, threads
from .netproc import Network


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    net = Network(tmp_path_factory.mktemp("impl_b_admin"))
    try:
        net.start_fresh(["c0-n0"])
        yield net
    finally:
        net.close()


def _ask(net, data: bytes, timeout: float = 5.0) -> bytes:
    s = raw(net.m.nodes["c0-n0"].admin_port, data, timeout)
    out = b""
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while True:
            got = s.recv(65536)
            if not got:
                break
            out += got
            if b"\r\n\r\n" in out:
                head, _, body = out.partition(b"\r\n\r\n")
                n = int(next(x for x in head.split(b"\r\n") if x.lower().startswith(b"content-length:"))[15:])
                if len(body) >= n:
                    break
    s.close()
    return out


def _status_line(resp: bytes) -> int:
    return int(resp.split(b" ", 2)[1])


def test_bad_targets_get_400_and_are_counted(node):
    before = node.status("c0-n0")["rejected"].get("bad_http_request", 0)
    for target in ["/log/\u00b2".encode(), b"/log/" + b"7" * 5000, b"/log/01", b"/log/18446744073709551616"]:
        resp = _ask(node, b"GET " + target + b" HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert _status_line(resp) == 400, resp[:80]
        assert b"Content-Length:" in resp
    assert _status_line(_ask(node, b"GET /log/0 HTTP/1.1\r\nConnection: close\r\n\r\n")) == 404
    assert _status_line(_ask(node, b"DELETE /status HTTP/1.1\r\nConnection: close\r\n\r\n")) == 405
    assert _status_line(_ask(node, b"GET /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")) == 400
    assert _status_line(_ask(node, b"A" * 9000)) == 414
    after = node.status("c0-n0")["rejected"].get("bad_http_request", 0)
    assert after >= before + 7
    assert node.procs["c0-n0"].poll() is None


def test_head_and_keep_alive(node):
    resp = _ask(node, b"HEAD /status HTTP/1.1\r\nConnection: close\r\n\r\n")
    head, _, body = resp.partition(b"\r\n\r\n")
    assert _status_line(resp) == 200 and body == b"" and b"Content-Length:" in head
    s = raw(node.m.nodes["c0-n0"].admin_port, b"GET /health HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\n\r\n")
    got = b""
    s.settimeout(5)
    while got.count(b"ok\n") < 2:
        got += s.recv(4096)
    s.close()


def test_slow_connections_are_capped_and_closed(node):
    pid = node.procs["c0-n0"].pid
    port = node.m.nodes["c0-n0"].admin_port
    before = threads(pid)
    slow_before = node.status("c0-n0")["rejected"].get("slow_peer", 0)
    socks = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /sta")  # never finished
        socks.append(s)
    time.sleep(0.5)
    assert threads(pid) <= before + 1
    # Beyond 64 open connections the node answers 503 at once.
    refused = 0
    for s in socks[64:]:
        s.settimeout(3)
        with contextlib.suppress(OSError):
            if s.recv(4096).startswith(b"HTTP/1.1 503"):
                refused += 1
    assert refused >= 100
    # The first 64 are closed at their 5 s deadline, counted slow_peer.
    assert all(closed_by_peer(s, 10) for s in socks[:64])
    for s in socks:
        s.close()
    assert node.admin("c0-n0", "/health") == (200, b"ok\n")
    st = node.status("c0-n0")
    assert st["rejected"].get("slow_peer", 0) >= slow_before + 64
    assert st["rejected"].get("connection_limit", 0) >= 100
    assert threads(pid) <= before + 1
