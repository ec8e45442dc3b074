"""SPEC 13 / 13.1 / 14.3 / 12.5 on impl_b's client port, against one real node process (its
cluster has no quorum, so everything it admits stays pooled): message caps, incremental reading
and memory bounds, session limits and binding, check order and admission before the signature."""

import os
import socket
import time

import pytest

from impl_b import codec
from impl_b.checks import sign_message
from impl_b.codec import encode
from impl_b.crypto import Signer, read_key_file
from impl_b.schema import OP_GET, OP_PUT

from .hostile import client_session, closed_by_peer, read_replies, rss_kb, send_app
from .netproc import Network

NODE = "c0-n0"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    net = Network(tmp_path_factory.mktemp("impl_b_cp"), clients=("alice", "bob"))
    try:
        net.start_fresh([NODE])
        yield net
    finally:
        net.close()


def _key(net, name):
    return Signer(read_key_file(os.path.join(net.root, "keys", f"{name}.key")))


def _req(net, signer, rid, key=b"k", value=b"", kind=OP_GET, sign=True, cluster="c0", how="submit"):
    r = codec.ClientRequest(client_key=signer.public, cluster_id=cluster, request_id=rid,
                            op=codec.Operation(kind=kind, key=key, value=value))
    if sign:
        sign_message(signer, net.m.network_id, r)
    else:
        r.signature = b"\x01" * 64
    return encode(codec.ClientMessage(**{how: r}))


def _session(net):
    return client_session(net.m.nodes[NODE].client_port, net.m.network_id)


def _debug(net):
    return net.status(NODE)["impl_b_debug"]


def _rej(net, reason):
    return net.status(NODE)["rejected"].get(reason, 0)


def test_announced_length_over_the_client_cap_closes_at_once(node):
    before = _rej(node, "oversized")
    s, sess = _session(node)
    s.sendall(_raw_frame(sess, (16 << 20).to_bytes(4, "big") + b"\x00" * 100))
    assert closed_by_peer(s)
    assert node.wait_until(lambda: _rej(node, "oversized") > before)


def _raw_frame(sess, plain: bytes) -> bytes:
    ct = sess.tx.encrypt(b"", plain)
    return len(ct).to_bytes(2, "big") + ct


def test_partial_messages_are_read_incrementally_and_bounded(node):
    """20 sessions each announce a 262160-byte message (the cap) and send 250 KB of it: the node
    holds about what arrived, and frees it when they close (the old node held 15 MB per session)."""
    pid = node.procs[NODE].pid
    base = rss_kb(pid)
    socks = []
    for _ in range(20):
        s, sess = _session(node)
        s.sendall(_raw_frame(sess, (262160).to_bytes(4, "big") + b"\x00" * 60000))
        for _ in range(3):
            s.sendall(_raw_frame(sess, b"\x00" * 63000))
        socks.append(s)
    assert node.wait_until(lambda: _debug(node)["client_read_bytes"] >= 20 * 240000)
    grown = rss_kb(pid) - base
    assert grown < 40_000, f"RSS grew {grown} kB for 20 partial messages of 250 kB"
    for s in socks:
        s.close()
    assert node.wait_until(lambda: _debug(node)["client_read_bytes"] == 0)
    assert node.procs[NODE].poll() is None


def test_check_order_and_too_large_key(node):
    alice, bob = _key(node, "alice"), _key(node, "bob")
    stranger = Signer(b"\x42" * 32)
    s, sess = _session(node)
    big = b"k" * (node.m.limits["max_key_bytes"] + 1)
    cases = [
        (_req(node, alice, 11, key=big), 5),                          # TOO_LARGE, not MALFORMED
        (_req(node, alice, 12, kind=OP_PUT, value=b"v" * 65537), 5),
        (_req(node, alice, 13, key=b""), 1),                         # shape before limits
        (_req(node, alice, 14, key=big, value=b"x"), 1),             # a GET with a value
        (_req(node, stranger, 15, key=big), 3),                      # key before limits
        (_req(node, alice, 16, key=big, cluster="s0"), 4),           # cluster first
        (_req(node, alice, 17, sign=False), 2),                      # BAD_SIGNATURE last
    ]
    send_app(s, sess, [m for m, _ in cases])
    replies = read_replies(s, sess, len(cases))
    got = {r.error.request_id: r.error.code for r in replies}
    assert got == {11: 5, 12: 5, 13: 1, 14: 1, 15: 3, 16: 4, 17: 2}
    # The session is bound to alice by request 17? No: it failed its signature. Bind it now.
    send_app(s, sess, [_req(node, alice, 18)])
    time.sleep(0.3)
    send_app(s, sess, [_req(node, bob, 19)])
    r = read_replies(s, sess, 1)
    assert r[0].error.code == 3 and r[0].error.request_id == 19  # another key on a bound session
    send_app(s, sess, [_req(node, alice, 20, sign=False)])
    assert read_replies(s, sess, 1)[0].error.code == 2  # still open
    s.close()


def test_admission_answers_overloaded_before_the_signature(node):
    """alice's share (max_pending_requests / 2 clients, at most max_batch_inputs) fills up: then
    even a request with a bad signature is answered OVERLOADED; bob keeps his own share."""
    alice, bob = _key(node, "alice"), _key(node, "bob")
    share = max(1, min(node.m.limits["max_batch_inputs"], node.m.limits["max_pending_requests"] // 2))
    s, sess = _session(node)
    base = 1_000_000
    have = _debug(node)["pool_local"].get(alice.public.hex()[:16], 0)
    msgs = [_req(node, alice, base + i, key=b"a%d" % i) for i in range(share - have)]
    for i in range(0, len(msgs), 200):
        send_app(s, sess, msgs[i:i + 200])
    assert node.wait_until(lambda: _debug(node)["pool_local"].get(alice.public.hex()[:16]) == share, timeout=60)
    ovl = _rej(node, "overloaded")
    bad = _rej(node, "bad_signature")
    send_app(s, sess, [_req(node, alice, base + share + 1, sign=False), _req(node, alice, base + share + 2)])
    codes = [r.error.code for r in read_replies(s, sess, 2)]
    assert codes == [7, 7]
    assert _rej(node, "overloaded") >= ovl + 2 and _rej(node, "bad_signature") == bad
    s2, sess2 = _session(node)
    send_app(s2, sess2, [_req(node, bob, 5, key=b"b")])
    time.sleep(0.5)
    assert _debug(node)["pool_local"].get(bob.public.hex()[:16]) == 1
    s.close()
    s2.close()


def test_a_client_that_never_reads_is_stopped_and_freed(node):
    """Replies queue up (UNAUTHORISED for an unknown key, answered before any signature check):
    the node stops reading the connection over 1 MiB queued and frees it all when it closes."""
    stranger = Signer(b"\x43" * 32)
    pid = node.procs[NODE].pid
    base = rss_kb(pid)
    s, sess = _session(node)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    msg = _req(node, stranger, 1, sign=False)
    s.settimeout(0.5)
    sent = 0
    try:
        for _ in range(400):
            send_app(s, sess, [msg] * 500)
            sent += 500
    except TimeoutError:
        pass  # the node stopped reading: TCP backpressure
    assert sent < 200_000
    assert node.wait_until(lambda: _debug(node)["client_queued_bytes"] > 1 << 20 and _debug(node)["paused_links"] >= 1)
    time.sleep(1)
    assert _debug(node)["client_queued_bytes"] <= 4 << 20
    assert rss_kb(pid) - base < 60_000
    s.close()
    assert node.wait_until(lambda: _debug(node)["client_queued_bytes"] == 0)
    assert node.admin(NODE, "/health") == (200, b"ok\n")


def test_session_limits(node):
    port = node.m.nodes[NODE].client_port
    before = _rej(node, "connection_limit")
    # 70 unbound sessions: the oldest ones beyond 64 are closed.
    socks = [_session(node)[0] for _ in range(70)]
    assert node.wait_until(lambda: _rej(node, "connection_limit") >= before + 6)
    assert sum(closed_by_peer(s, 0.5) for s in socks[:10]) >= 6
    for s in socks:
        s.close()
    # 80 raw TCP connections stuck before the handshake: beyond 64 they are closed at once.
    before = _rej(node, "connection_limit")
    hs_before = _rej(node, "handshake_failed")
    raws = [socket.create_connection(("127.0.0.1", port)) for _ in range(80)]
    assert node.wait_until(lambda: _rej(node, "connection_limit") >= before + 16)
    assert node.wait_until(lambda: _rej(node, "handshake_failed") >= hs_before + 64, timeout=15)  # 5 s deadline
    for s in raws:
        s.close()
    # An unbound session idle for 10 s is closed as slow_peer.
    slow = _rej(node, "slow_peer")
    s, _ = _session(node)
    t0 = time.monotonic()
    assert closed_by_peer(s, 15)
    assert time.monotonic() - t0 >= 9
    assert node.wait_until(lambda: _rej(node, "slow_peer") >= slow + 1)
    s.close()


def test_65th_session_of_one_key_is_refused(node):
    """Sessions bind with fetches (which skip admission: alice's share is full by now)."""
    alice = _key(node, "alice")
    before = _rej(node, "connection_limit")
    sessions = []
    for i in range(65):
        s, sess = _session(node)
        send_app(s, sess, [_req(node, alice, 5_000_000 + i, how="fetch")])
        sessions.append((s, sess))
        if i < 64:
            assert node.wait_until(lambda n=i: _debug(node)["bound_sessions"] >= n + 1, timeout=10, step=0.05)
    s, sess = sessions[-1]
    r = read_replies(s, sess, 1)
    assert r and r[0].error.code == 7
    assert closed_by_peer(s)
    assert _rej(node, "connection_limit") >= before + 1
    for s, _ in sessions:
        s.close()
    assert node.wait_until(lambda: _debug(node)["bound_sessions"] == 0)
