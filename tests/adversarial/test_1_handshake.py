"""SPEC 13 / 13.1 handshake and transport attacks on both the peer and the client port of a
coordinator follower: zero and small-order X25519 keys, wrong-size and garbage handshake messages,
bad frames, garbage ciphertext, bad application lengths, unfinished handshakes, too many
concurrent handshakes, replayed transport bytes. After each: same pid, /status, counted
rejection, a PUT sent to the attacked node is decided, RSS bounded."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from tests.adversarial import noise, wire
from tests.adversarial.conftest import (
    AFTER_SLACK,
    MIB,
    PEAK_BOUND,
    Sampler,
    assert_survived,
    record,
    wait_rss_back,
)

PORTS = ["peer", "client"]
CLOSE_WITHIN = 8.0  # a rejected handshake closes at once; the 5 s deadline is the worst case


def m1_ok(n, node, port, **kw):
    """TCP + message 1 with a fresh ephemeral; returns (sock, initiator)."""
    s = noise.connect(n.addr(node, port))
    ini = noise.Initiator(n.network_id, **kw)
    s.sendall(noise.frame(ini.write_message_1()))
    return s, ini


def our_hello(n, port: str, node_id: str = "") -> bytes:
    return wire.hello(n.network_id, node_id if port == "peer" else "")


def run_cases(n, port, cases: dict) -> dict:
    """Run each case (a function (net, node, port) -> socket left open) and require the node to
    close each connection. Returns {case: seconds until closed}."""
    node = n.target()
    out = {}
    for name, fn in cases.items():
        t0 = time.monotonic()
        s = fn(n, node, port)
        try:
            assert noise.closed_by_peer(s, CLOSE_WITHIN), f"{port} port: {name}: connection not closed by the node"
        finally:
            s.close()
        out[name] = round(time.monotonic() - t0, 3)
    return out


def attack(n, port, cases, reasons, label):
    node = n.target()
    pid = n.pid(node)
    before = n.rejected(node)
    with Sampler(pid) as smp:
        times = run_cases(n, port, cases)
    res = assert_survived(n, node, pid, before, reasons)
    assert smp.peak <= smp.baseline + PEAK_BOUND, smp.numbers()
    record(n.impl, label, port=port, node=node, cases=len(cases), closed_s_max=max(times.values()),
           **res, **smp.numbers())
    return res


# --- message 1 -------------------------------------------------------------------------------

def _m1_with(pub: bytes):
    def fn(n, node, port):
        s = noise.connect(n.addr(node, port))
        s.sendall(noise.frame(pub))
        return s
    return fn


@pytest.mark.parametrize("port", PORTS)
def test_zero_and_small_order_ephemeral(net, port):
    """Message 1 with the all-zero ephemeral (`00 20` + 32 zero bytes, issue 12 attack 1) and every
    other small-order / non-canonical low-order point: each handshake fails, counted
    `handshake_failed` (SPEC 13 invalid keys)."""
    cases = {f"e={k}": _m1_with(v) for k, v in noise.SMALL_ORDER.items()}
    attack(net, port, cases, {"handshake_failed": len(cases)}, "small-order ephemeral (msg 1)")


def _raw(data: bytes, close_write: bool = False):
    def fn(n, node, port):
        s = noise.connect(n.addr(node, port))
        s.sendall(data)
        return s
    return fn


@pytest.mark.parametrize("port", PORTS)
def test_wrong_size_message_1(net, port):
    """Message 1 of 0 (a zero-length frame), 1, 31, 33, 48 and 65535 bytes: not 32, the handshake
    fails (SPEC 13 sizes, framing)."""
    cases = {f"len={k}": _raw(noise.frame(noise.random_bytes(k)) if k else b"\x00\x00")
             for k in (1, 31, 33, 48, 65535)}
    cases["zero_length_frame"] = _raw(b"\x00\x00")
    attack(net, port, cases, {"handshake_failed": len(cases) - 1}, "wrong-size message 1")


# --- message 3 -------------------------------------------------------------------------------

def _m3(kind: str, key: bytes = b""):
    def fn(n, node, port):
        s, ini = m1_ok(n, node, port)
        ini.read_message_2(noise.recv_frame(s))
        hello = our_hello(n, port, "s0-n3")
        if kind == "small_static":
            m3, _, _ = ini.write_message_3(hello, s_pub_override=key)
        elif kind == "short":
            m3 = noise.random_bytes(20)
        elif kind == "fixed_part_only":
            m3 = noise.random_bytes(48)
        elif kind == "garbage":
            m3 = noise.random_bytes(48 + len(hello) + 16)
        elif kind == "trailing":
            m3, _, _ = ini.write_message_3(hello)
            m3 += b"\x00" * 7
        elif kind == "flipped":
            m3, _, _ = ini.write_message_3(hello)
            m3 = m3[:-1] + bytes([m3[-1] ^ 1])
        else:
            raise AssertionError(kind)
        s.sendall(noise.frame(m3))
        return s
    return fn


@pytest.mark.parametrize("port", PORTS)
def test_small_order_static_in_message_3(net, port):
    """Message 3 carrying a small-order static key: the responder's `se` is all zero, the handshake
    fails on its side (SPEC 13), counted `handshake_failed`."""
    cases = {f"s={k}": _m3("small_static", v) for k, v in noise.SMALL_ORDER.items()}
    attack(net, port, cases, {"handshake_failed": len(cases)}, "small-order static (msg 3)")


@pytest.mark.parametrize("port", PORTS)
def test_bad_message_3(net, port):
    """Message 3 shorter than its fixed part, only the fixed part, random bytes of the right size,
    a good one with trailing bytes, one with a flipped tag bit: each fails the handshake."""
    cases = {k: _m3(k) for k in ("short", "fixed_part_only", "garbage", "trailing", "flipped")}
    attack(net, port, cases, {"handshake_failed": len(cases)}, "bad message 3")


def test_wrong_hellos(net):
    """A client Hello with a node id, a peer Hello naming a node whose key we do not hold, a Hello
    of another network: handshake fails (SPEC 13; `handshake_failed` or `unknown_node`)."""
    def hello_case(port, h):
        def fn(n, node, _port):
            s, ini = m1_ok(n, node, port)
            ini.read_message_2(noise.recv_frame(s))
            m3, _, _ = ini.write_message_3(h(n))
            s.sendall(noise.frame(m3))
            return s
        return fn
    node = net.target()
    pid = net.pid(node)
    before = net.rejected(node)
    cases = {
        "client_hello_with_node_id": ("client", lambda n: wire.hello(n.network_id, "c0-n0")),
        "client_hello_other_network": ("client", lambda n: wire.hello("other-net")),
        "client_hello_version_2": ("client", lambda n: wire.hello(n.network_id, version=2)),
        "peer_hello_node_not_ours": ("peer", lambda n: wire.hello(n.network_id, "c0-n0")),
        "peer_hello_empty_node_id": ("peer", lambda n: wire.hello(n.network_id, "")),
        "peer_hello_unknown_node": ("peer", lambda n: wire.hello(n.network_id, "zz-n9")),
    }
    for name, (port, h) in cases.items():
        s = hello_case(port, h)(net, node, port)
        try:
            assert noise.closed_by_peer(s, CLOSE_WITHIN), name
        finally:
            s.close()
    res = assert_survived(net, node, pid, before, {})
    after = net.rejected(node)
    got = sum(after.get(r, 0) - before.get(r, 0) for r in ("handshake_failed", "unknown_node", "wrong_network"))
    assert got >= len(cases), f"{got} of {len(cases)} bad Hellos counted: {after}"
    record(net.impl, "bad Hello (msg 3)", cases=len(cases), counted=got, **res)


# --- transport -------------------------------------------------------------------------------

def peer_session(n, node):
    """A complete peer-port handshake as shard node s0-n3 (a Byzantine manifest node: we hold its
    key from the deployment's key dir). Message 3 is deferred to the first write: our link replaces
    the real s0-n3's, which reconnects within ~100 ms and replaces ours in turn."""
    static = bytes.fromhex(Path(n.dep.keys_dir("s0-n3") / "x25519.key").read_text().strip())
    return noise.handshake(n.addr(node, "peer"), n.network_id, wire.hello(n.network_id, "s0-n3"),
                           expect_static=n.x25519(node), static=static, defer_m3=True)


def session(n, node, port):
    return peer_session(n, node) if port == "peer" else n.client_session(node)


def _after_handshake(kind: str):
    def fn(n, node, port):
        s = session(n, node, port)
        if kind == "garbage_ciphertext":
            s.send_raw(noise.frame(noise.random_bytes(100)))
        elif kind == "garbage_max_frame":
            s.send_raw(noise.frame(noise.random_bytes(65535)))
        elif kind == "zero_length_frame":
            s.send_raw(b"\x00\x00")
        elif kind == "app_length_zero":
            s.send_stream(struct.pack(">I", 0))
        elif kind == "app_length_over_limit":
            limit = 262160 if port == "client" else n.dep.manifest.get("limits", {}).get("max_message_bytes", 16 * MIB)
            s.send_stream(struct.pack(">I", limit + 1))
        elif kind == "app_length_4g":
            s.send_stream(struct.pack(">I", 2**32 - 1))
        elif kind == "undecodable":
            s.send_app(b"\xff\xff\xff")
        elif kind == "non_canonical":
            s.send_app(b"\x08\x00" if port == "client" else b"\x22\x00\x22\x00")
        else:
            raise AssertionError(kind)
        return s.sock
    return fn


@pytest.mark.parametrize("port", PORTS)
def test_garbage_after_handshake(net, port):
    """Garbage ciphertext (short and a full 65535-byte frame) after a good handshake: closed,
    `decrypt_failed` (SPEC 13 failures)."""
    cases = {k: _after_handshake(k) for k in ("garbage_ciphertext", "garbage_max_frame")}
    attack(net, port, cases, {"decrypt_failed": len(cases)}, "garbage ciphertext after handshake")


@pytest.mark.parametrize("port", PORTS)
def test_bad_application_lengths(net, port):
    """Application length above the port's limit (client 262160, peer max_message_bytes) and
    2^32 - 1: closed as soon as the 4 length bytes are read, `oversized` (SPEC 13.1)."""
    cases = {k: _after_handshake(k) for k in ("app_length_over_limit", "app_length_4g")}
    attack(net, port, cases, {"oversized": len(cases)}, "application length over the limit")


@pytest.mark.parametrize("port", PORTS)
def test_bad_frames_and_messages_after_handshake(net, port):
    """A zero-length Noise frame, an application length of 0, an undecodable and a non-canonical
    message after a good handshake: each closes the connection and is counted (SPEC 13 names
    `decrypt_failed`, `oversized`, `malformed`, `non_canonical` without saying which for the
    first two: errata AD-2)."""
    kinds = ("zero_length_frame", "app_length_zero", "undecodable", "non_canonical")
    node = net.target()
    pid = net.pid(node)
    before = net.rejected(node)
    for k in kinds:
        s = _after_handshake(k)(net, node, port)
        try:
            assert noise.closed_by_peer(s, CLOSE_WITHIN), f"{k}: not closed"
        finally:
            s.close()
    res = assert_survived(net, node, pid, before, {"non_canonical": 1, "malformed": 1})
    reasons = ("decrypt_failed", "oversized", "malformed", "non_canonical")
    after = net.rejected(node)
    total = sum(after.get(r, 0) - before.get(r, 0) for r in reasons)
    assert total >= len(kinds), f"{total} of {len(kinds)} bad inputs counted: {after}"
    record(net.impl, "bad frame / message after handshake", port=port, counted=total, **res)


# --- time and count limits -----------------------------------------------------------------

def test_unfinished_handshakes_closed_at_deadline(net):
    """Connections that send nothing, or stop after message 1 (both ports): closed by the node
    about 5 s after the accept (SPEC 13 deadline), counted `handshake_failed`."""
    node = net.target()
    pid = net.pid(node)
    before = net.rejected(node)
    socks = []
    t0 = time.monotonic()
    for port in PORTS:
        socks.append(("silent-" + port, noise.connect(net.addr(node, port))))
        s, ini = m1_ok(net, node, port)
        noise.recv_frame(s)  # message 2, then we never send message 3
        socks.append(("after-m2-" + port, s))
    closed = {}
    for name, s in socks:
        try:
            assert noise.closed_by_peer(s, 12.0), f"{name}: not closed within 12 s"
            closed[name] = round(time.monotonic() - t0, 2)
        finally:
            s.close()
    assert min(closed.values()) >= 3.0, f"closed before the 5 s deadline: {closed}"
    res = assert_survived(net, node, pid, before, {"handshake_failed": len(socks)})
    record(net.impl, "handshake never finished", closed_after_s=closed, **res)


def test_handshake_connection_limit(net):
    """70 concurrent idle connections (peer and client ports): at most 64 are held in the
    handshake phase, the others are closed at once and counted `connection_limit`; once they are
    gone, a new client handshake succeeds at once (SPEC 13.1)."""
    node = net.target()
    pid = net.pid(node)
    before = net.rejected(node)
    socks = []
    with Sampler(pid) as smp:
        for i in range(70):
            socks.append(noise.connect(net.addr(node, PORTS[i % 2])))
        closed = set()
        end = time.monotonic() + 2.0  # "at once": well before the 5 s handshake deadline
        while time.monotonic() < end and len(closed) < 6:
            for i, s in enumerate(socks):
                if i not in closed and noise.closed_by_peer(s, 0.005):
                    closed.add(i)
        closed_at_once = len(closed)
        try:  # while 64 idle connections hold the slots, a real client cannot get in either (AD-3)
            net.client_session(node, timeout=2).close()
            during = "handshake succeeded"
        except (OSError, ConnectionError, noise.HandshakeError) as e:
            during = f"refused: {type(e).__name__}"
        for s in socks:
            s.close()
    assert closed_at_once >= 6, f"only {closed_at_once} of 70 idle handshakes closed at once"
    deadline = time.monotonic() + 10
    while True:  # the node may take a moment to notice our closes
        try:
            net.client_session(node, timeout=2).close()
            break
        except (OSError, noise.HandshakeError):
            assert time.monotonic() < deadline, "no client handshake possible after the idle connections closed"
            time.sleep(0.2)
    res = assert_survived(net, node, pid, before, {"connection_limit": 6})
    record(net.impl, "65+ concurrent handshakes", closed_at_once=closed_at_once, client_during_hold=during,
           **res, **smp.numbers())


def test_replayed_transport_bytes(net):
    """Every byte of a good client session (handshake and a signed request), replayed on a new
    connection: the node's fresh ephemeral makes message 3 undecryptable (`handshake_failed`), or a
    later frame (`decrypt_failed`); nothing is executed (SPEC 13)."""
    node = net.target()
    pid = net.pid(node)
    c = net.client("b")
    key = f"adv-replay-tx-{time.time_ns()}".encode()
    s = net.client_session(node)
    rid, req = c.request(wire.PUT, key, b"once")
    s.send_app(wire.submit(req))
    rep = wire.parse_reply(s.recv_app(timeout=20))
    assert "answer" in rep, rep
    recorded = b"".join(s.sent_raw)
    s.close()
    before = net.rejected(node)
    r = noise.connect(net.addr(node, "client"))
    r.sendall(recorded)
    try:
        assert noise.closed_by_peer(r, CLOSE_WITHIN), "replayed bytes: connection not closed"
    finally:
        r.close()
    res = assert_survived(net, node, pid, before, {})
    after = net.rejected(node)
    got = sum(after.get(x, 0) - before.get(x, 0) for x in ("handshake_failed", "decrypt_failed"))
    assert got >= 1, f"replay not counted as handshake_failed / decrypt_failed: {after}"
    record(net.impl, "replayed transport bytes", counted=got, **res)


@pytest.mark.parametrize("port", PORTS)
def test_memory_back_after_handshake_storm(net, port):
    """300 handshakes aborted at every stage, in a row: RSS stays within 64 MiB of the start and
    comes back near it (SPEC 13.1: memory released when connections close)."""
    node = net.target()
    pid = net.pid(node)
    before = net.rejected(node)
    stages = [_m1_with(noise.SMALL_ORDER["zero"]), _m3("garbage"), _raw(noise.frame(noise.random_bytes(33)))]
    with Sampler(pid) as smp:
        for i in range(300):
            s = stages[i % 3](net, node, port)
            noise.closed_by_peer(s, CLOSE_WITHIN)
            s.close()
    res = assert_survived(net, node, pid, before, {"handshake_failed": 300})
    back = wait_rss_back(pid, smp.baseline, AFTER_SLACK)
    assert smp.peak <= smp.baseline + PEAK_BOUND and back <= smp.baseline + AFTER_SLACK, (smp.numbers(), back)
    record(net.impl, "300 failed handshakes", port=port, rss_after_mib=round(back / MIB, 1), **res, **smp.numbers())
