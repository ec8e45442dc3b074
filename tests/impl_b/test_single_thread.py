"""The single-thread mode of a node: the I/O loop drives Runtime.step after every select round,
sends queued from inside the round go out without a wake-up byte, and step reports when it is
due again (0 while events wait)."""

import heapq
import os
import socket
import time

from impl_b import codec, devnet, ioloop
from impl_b.codec import decode, encode
from impl_b.logs import NodeLog
from impl_b.manifest import validate
from impl_b.runtime import TICK_MS, Runtime
from impl_b.session import Session, node_key_checker

from .test_perf_paths import LEADER, CountingStore, FakeIO, _request

DOC, SECRETS = devnet.build({"c0": "coordinator", "s0": "shard"}, ports=False)
M = validate(DOC)


class CountingWaker:
    """Stands in for the loop's wake-up socket and counts the bytes written to it."""

    def __init__(self, sock):
        self.sock = sock
        self.sent = 0

    def send(self, data):
        self.sent += len(data)
        return self.sock.send(data)


def _listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    return s


def test_loop_drives_on_round_and_sends_its_own_replies_without_wakeups():
    socks = [_listener(), _listener()]
    clients = []
    state = {"rounds": 0, "answered": set()}

    def on_round():
        state["rounds"] += 1
        for link_id, msg in clients:
            if link_id not in state["answered"]:
                state["answered"].add(link_id)
                # Echo the request id back as an error, from inside the round.
                err = codec.ClientError(request_id=msg.submit.request_id, code=6, message="echo")
                loop.send_conn(link_id, encode(codec.ClientReply(error=err)))
        return 5

    loop = ioloop.IOLoop(M, "c0-n0", SECRETS["c0-n0"]["x25519"], [], on_peer=lambda *a: None,
                         on_client=lambda lid, cm: clients.append((lid, cm)), on_reject=lambda *a: None,
                         on_link=lambda *a: None, peer_sock=socks[0], client_sock=socks[1], on_round=on_round)
    waker = CountingWaker(loop._ww)
    loop._ww = waker
    loop.start()
    conn = None
    try:
        conn = socket.create_connection(("127.0.0.1", socks[1].getsockname()[1]), timeout=5)
        sess = Session(True, os.urandom(32), M.network_id, "", node_key_checker(M, "c0-n0"), 1 << 20)
        deadline = time.monotonic() + 5
        while not sess.ready and time.monotonic() < deadline:
            conn.sendall(bytes(sess.out))
            sess.out.clear()
            sess.feed(conn.recv(65536))
        conn.sendall(bytes(sess.out))
        sess.out.clear()
        sess.send([encode(codec.ClientMessage(submit=_request(77)))])
        conn.sendall(bytes(sess.out))
        sess.out.clear()
        got = []
        while not got and time.monotonic() < deadline:
            got = sess.feed(conn.recv(65536))
        answer = decode("ClientReply", got[0])
        assert answer.error.request_id == 77 and answer.error.message == "echo"
        assert waker.sent == 0  # the reply was queued by the loop's own thread
        # on_round's 5 ms bound the select timeout (50 ms without it): many rounds in 0.5 s.
        before = state["rounds"]
        time.sleep(0.5)
        assert state["rounds"] - before >= 25
        # A send from another thread still wakes the loop.
        loop.send_conn(clients[0][0], encode(codec.ClientReply(error=codec.ClientError(
            request_id=78, code=6, message="other thread"))))
        got = []
        while not got and time.monotonic() < deadline:
            got = sess.feed(conn.recv(65536))
        assert decode("ClientReply", got[0]).error.request_id == 78
        assert waker.sent == 1
    finally:
        loop.stop()
        loop.join(timeout=5)
        for s in (conn, *socks):
            if s is not None:
                s.close()
    assert not loop.is_alive()


class OfflineIO(FakeIO):
    def connected(self, node):
        return False


def test_step_handles_at_most_257_events_and_reports_when_due():
    rt = Runtime(M, "c0-n0", LEADER, CountingStore(), NodeLog("c0-n0", os.devnull, "error"))
    rt.io = OfflineIO()
    for i in range(300):
        rt.post("reject", "stale", f"c0-n{1 + i % 3}", "x")
    assert rt.step() == 0  # events still wait: run again at once
    assert rt.log.rejected == {"stale": 257} and len(rt.events) == 43
    due = rt.step()
    assert rt.log.rejected == {"stale": 300} and not rt.events
    assert 1 <= due <= TICK_MS  # the timers just ran: next due within one tick


def test_a_delayed_message_is_sent_at_its_own_deadline_not_the_next_tick():
    rt = Runtime(M, "c0-n0", LEADER, CountingStore(), NodeLog("c0-n0", os.devnull, "error"))
    rt.io = OfflineIO()
    rt.step()  # runs the timers: the next tick is TICK_MS away
    due_at = rt.now() + 5
    heapq.heappush(rt.delayed, (due_at, 1, "c0-n1", b"late"))
    assert rt._next_due() == due_at < rt._next_tick
    assert rt.step() <= 5
    while rt.now() < due_at:
        time.sleep(0.001)
    rt.step()
    assert rt.io.sent == ["c0-n1"] and not rt.delayed
