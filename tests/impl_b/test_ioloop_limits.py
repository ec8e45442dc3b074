"""SPEC 13.1 session counts on an IOLoop in a thread with real sockets, the limits lowered so that
a few connections reach them: established client sessions (1024 in production) and bound sessions
leaving the unbound set."""

import socket
import time

import pytest

from impl_b import devnet, ioloop, limits
from impl_b.manifest import validate

from .hostile import client_session, closed_by_peer

DOC, SECRETS = devnet.build({"c0": "coordinator", "s0": "shard"}, ports=False)
M = validate(DOC)


def _listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


@pytest.fixture
def loop(monkeypatch):
    monkeypatch.setattr(limits, "CLIENT_SESSIONS", 3)
    monkeypatch.setattr(limits, "UNBOUND_SESSIONS", 2)
    socks = [_listener(), _listener()]
    rejects, closed = [], []
    lp = ioloop.IOLoop(M, "c0-n0", SECRETS["c0-n0"]["x25519"], [], on_peer=lambda *a: None,
                       on_client=lambda *a: None, on_reject=lambda r, p, d: rejects.append(r),
                       on_link=lambda *a: None, peer_sock=socks[0], client_sock=socks[1],
                       on_closed=closed.append)
    lp.rejects, lp.closed_ids, lp.port = rejects, closed, socks[1].getsockname()[1]
    lp.start()
    yield lp
    lp.stop()
    lp.join(timeout=5)


def _wait(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_established_sessions_are_capped_and_bound_ones_leave_the_unbound_set(loop):
    a, _ = client_session(loop.port, M.network_id)
    b, _ = client_session(loop.port, M.network_id)
    assert _wait(lambda: len(loop.client_ready) == 2)
    for lid in list(loop.client_ready):
        loop.mark_bound(lid)  # as the runtime does after a request passed its signature
    assert _wait(lambda: not loop.unbound)
    c, _ = client_session(loop.port, M.network_id)
    assert _wait(lambda: len(loop.client_ready) == 3 and len(loop.unbound) == 1)
    d = socket.create_connection(("127.0.0.1", loop.port), timeout=5)  # the 4th session
    assert closed_by_peer(d, 5)
    assert _wait(lambda: "connection_limit" in loop.rejects)
    assert len(loop.client_ready) == 3 and loop.rejects.count("connection_limit") == 1
    a.close()
    assert _wait(lambda: len(loop.client_ready) == 2 and len(loop.closed_ids) == 1)
    e, _ = client_session(loop.port, M.network_id)  # room again
    for s in (b, c, d, e):
        s.close()
