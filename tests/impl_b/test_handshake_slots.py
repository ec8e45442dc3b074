"""SPEC 13.1 handshake slots (errata AD-3) and the lingering close (AD-7) on an IOLoop in a thread
with real sockets and the production limits: 64 handshakes per port, the oldest closed for a new
connection, handshake message 1 within 1 s of the accept, the whole handshake within 5 s."""

import os
import socket
import time

import pytest

from impl_b import codec, devnet, ioloop
from impl_b.codec import encode
from impl_b.manifest import validate
from impl_b.session import Session, peer_hello_checker

from .hostile import client_session, closed_by_peer, raw, send_app

DOC, SECRETS = devnet.build({"c0": "coordinator", "s0": "shard"}, ports=False)
M = validate(DOC)
MESSAGE_1 = b"\x00\x20" + os.urandom(32)  # a well-formed message 1 (a random ephemeral key)


def _listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(256)
    return s


def _wait(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def loop():
    socks = [_listener(), _listener()]
    rejects, received = [], []
    lp = None

    def on_client(link_id, msg):
        received.append(msg)
        if lp.answer_and_close:  # like the 65th session of one key: a final ClientError, then close
            lp.send_conn(link_id, encode(codec.ClientReply(error=codec.ClientError(code=7, message="bye"))))
            lp.close_conn(link_id, flush=True)

    lp = ioloop.IOLoop(M, "c0-n0", SECRETS["c0-n0"]["x25519"], [], on_peer=lambda *a: None,
                       on_client=on_client, on_reject=lambda r, p, d: rejects.append(r),
                       on_link=lambda *a: None, peer_sock=socks[0], client_sock=socks[1])
    lp.rejects, lp.received, lp.answer_and_close = rejects, received, False
    lp.peer_port, lp.port = socks[0].getsockname()[1], socks[1].getsockname()[1]
    lp.start()
    yield lp
    lp.stop()
    lp.join(timeout=5)


def _peer_handshake(port: int) -> socket.socket:
    """A consensus peer (s0-n0) dialling c0-n0's peer port; returns once both sides are ready."""
    s = raw(port)
    sess = Session(True, SECRETS["s0-n0"]["x25519"], M.network_id, "s0-n0",
                   peer_hello_checker(M, M.network_id, "c0-n0"), 1 << 20)
    while not sess.ready:
        s.sendall(bytes(sess.out))
        sess.out.clear()
        got = s.recv(65536)
        if not got:
            raise ConnectionError("closed during the handshake")
        sess.feed(got)
    s.sendall(bytes(sess.out))
    return s


@pytest.mark.parametrize("idle_bytes", [b"", MESSAGE_1], ids=["silent", "after_message_1"])
def test_a_client_handshake_succeeds_while_70_idle_connections_are_held(loop, idle_bytes):
    idle = [raw(loop.port, idle_bytes) for _ in range(70)]
    assert _wait(lambda: loop.rejects.count("connection_limit") >= 6)  # the 6 oldest made room
    assert len(loop.hs_slots["client"]) == 64
    t0 = time.monotonic()
    s, _ = client_session(loop.port, M.network_id)  # the oldest idle one is closed for it
    assert _wait(lambda: len(loop.client_ready) == 1, timeout=2)
    assert time.monotonic() - t0 < 1.0  # admitted at once, not after the idle ones time out
    assert loop.rejects.count("connection_limit") == 7
    assert sum(closed_by_peer(c, 0.2) for c in idle[:7]) == 7
    for c in idle + [s]:
        c.close()


def test_a_peer_handshake_succeeds_while_both_ports_are_full_of_idle_connections(loop):
    idle = [raw(loop.peer_port, MESSAGE_1) for _ in range(66)]
    idle += [raw(loop.port, MESSAGE_1) for _ in range(64)]
    assert _wait(lambda: len(loop.hs_slots["peer"]) == 64 and len(loop.hs_slots["client"]) == 64)
    assert loop.rejects.count("connection_limit") == 2  # per port: the full client port lost nothing
    s = _peer_handshake(loop.peer_port)
    assert _wait(lambda: any(lk.kind == "peer" and lk.session.ready for lk in list(loop.links.values())),
                 timeout=2)
    assert loop.rejects.count("connection_limit") == 3 and len(loop.hs_slots["client"]) == 64
    for c in idle + [s]:
        c.close()


@pytest.mark.parametrize("sent", [b"", b"\x00\x20" + bytes(10)], ids=["nothing", "part_of_message_1"])
def test_message_1_must_arrive_within_1_s(loop, sent):
    stalled = raw(loop.port, sent)
    t0 = time.monotonic()
    assert closed_by_peer(stalled, 3)
    took = time.monotonic() - t0
    assert 0.9 <= took < 2.0, took
    assert _wait(lambda: loop.rejects == ["handshake_failed"], timeout=1)
    stalled.close()


def test_after_message_1_the_whole_handshake_has_5_s(loop):
    stalled = raw(loop.port, MESSAGE_1)  # answered with message 2; message 3 never comes
    t0 = time.monotonic()
    assert closed_by_peer(stalled, 7)
    assert 4.5 <= time.monotonic() - t0 < 6.5
    assert loop.rejects == ["handshake_failed"]  # never slow_peer (AD-5)
    stalled.close()


def test_an_answer_then_close_survives_unread_client_bytes(loop):
    """Lingering close (AD-7): the node answers and closes while the client is still sending; it
    shuts down its sending side and reads off what comes for up to 1 s, so the client gets the
    answer and then EOF (not a reset destroying it)."""
    loop.answer_and_close = True
    s, sess = client_session(loop.port, M.network_id)
    req = codec.ClientRequest(client_key=bytes(32), request_id=1, cluster_id="c0",
                              op=codec.Operation(kind=1, key=b"k" * 200))
    msg = encode(codec.ClientMessage(fetch=req))
    send_app(s, sess, [msg])
    assert _wait(lambda: len(loop.lingering) == 1, timeout=2)
    lk = next(iter(loop.lingering.values()))
    assert lk.id not in loop.client_ready  # a lingering link is no longer a session
    send_app(s, sess, [msg] * 100)  # the client keeps sending after the answer: read off, not reset
    s.settimeout(5)
    replies = []
    try:
        while chunk := s.recv(65536):
            replies += sess.feed(chunk)
    except ConnectionResetError:
        pytest.fail("connection reset: the lingering close did not read off the client's bytes")
    assert [codec.decode("ClientReply", r).error.code for r in replies] == [7]
    assert _wait(lambda: not loop.lingering and not loop.links, timeout=3)
    assert loop.received == [codec.ClientMessage(fetch=req)]  # nothing after the answer was handled
    s.close()
