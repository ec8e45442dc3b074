"""SPEC 13.1 / 14.3 attacks on a coordinator follower's client port: huge and partial messages,
2,000 idle TCP connections, unbound and per-key session limits, clients that never read their
replies (one bound session closed after 10 s, errata AD-6; 24 of them at once), the 14.3 check table (oversized key -> TOO_LARGE), and a replayed signed request."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

from tests.adversarial import noise, wire
from tests.adversarial.conftest import (
    AFTER_SLACK,
    MIB,
    PEAK_BOUND,
    Sampler,
    assert_survived,
    fds,
    record,
    rss,
    threads,
    wait_rss_back,
)


def drain(n, timeout: float = 90.0) -> None:
    """Wait until no coordinator member holds pooled requests (an attack's backlog must not
    spill into the next test)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sts = [n.status(m, 2.0) for m in n.members("c0")]
        if all(st and st.get("pending", {}).get("requests", 0) == 0 for st in sts):
            return
        time.sleep(0.5)


def sessions(n, node, count, **kw) -> list[noise.Session]:
    out = []
    for _ in range(count):
        out.append(n.client_session(node, **kw))
    return out


def close_all(ss):
    for s in ss:
        s.close()


def test_huge_announced_messages(net):
    """20 sessions each announce a 16 MiB message and send up to 15 MiB of it (issue 12 attack 3):
    each is closed when the length is read (over 262160), counted `oversized`; RSS stays within
    64 MiB of the start (SPEC 13.1)."""
    node = net.target()
    pid = net.pid(node)
    before = net.rejected(node)
    ss = sessions(net, node, 20)
    sent = {}

    def push(i, s):
        s.sock.settimeout(3.0)
        total = 0
        try:
            s.send_stream(struct.pack(">I", 16 * MIB))
            chunk = noise.random_bytes(noise.MAX_PLAINTEXT)
            while total < 15 * MIB:
                s.send_payload(chunk)
                total += len(chunk)
        except OSError:
            pass
        sent[i] = total

    with Sampler(pid) as smp:
        ts = [threading.Thread(target=push, args=(i, s)) for i, s in enumerate(ss)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        still_open = [i for i, s in enumerate(ss) if not noise.closed_by_peer(s.sock, 5.0)]
    close_all(ss)
    res = assert_survived(net, node, pid, before, {"oversized": 20})
    assert not still_open, f"sessions {still_open} not closed after announcing 16 MiB"
    assert smp.peak <= smp.baseline + PEAK_BOUND, smp.numbers()
    back = wait_rss_back(pid, smp.baseline, AFTER_SLACK)
    record(net.impl, "20 sessions announce 16 MiB", sent_mib_max=round(max(sent.values()) / MIB, 1),
           rss_after_mib=round(back / MIB, 1), **res, **smp.numbers())


def test_partial_messages_under_the_cap(net):
    """40 unbound sessions each send 200 KB of a 262,000-byte message and stop: RSS stays within
    64 MiB of the start, the node closes them once unbound for 10 s (`slow_peer`), and memory
    comes back (SPEC 13.1)."""
    node = net.target()
    pid = net.pid(node)
    before = net.rejected(node)
    count = 40
    with Sampler(pid) as smp:
        ss = sessions(net, node, count)
        t0 = time.monotonic()
        for s in ss:
            s.send_stream(struct.pack(">I", 262000) + noise.random_bytes(200_000))
        open_after = [s for s in ss if not noise.closed_by_peer(s.sock, 0.01)]
        closed_at = []
        for s in open_after:
            left = max(0.1, 25 - (time.monotonic() - t0))
            if noise.closed_by_peer(s.sock, left):
                closed_at.append(time.monotonic() - t0)
    close_all(ss)
    res = assert_survived(net, node, pid, before, {"slow_peer": count})
    assert len(closed_at) == len(open_after), f"{len(open_after) - len(closed_at)} partial sessions still open after 25 s"
    assert smp.peak <= smp.baseline + PEAK_BOUND, smp.numbers()
    back = wait_rss_back(pid, smp.baseline, AFTER_SLACK)
    assert back <= smp.baseline + AFTER_SLACK, (back, smp.numbers())
    record(net.impl, "40 sessions x 200 KB partial message", closed_after_s_max=round(max(closed_at, default=0), 1),
           rss_after_mib=round(back / MIB, 1), **res, **smp.numbers())


def test_2000_idle_tcp_connections(net):
    """2,000 TCP connections that never send a byte: the node keeps serving an established session
    and /status, its threads and fds stay bounded (64 in handshake, the rest closed at once), and it
    is back to normal after they close (SPEC 13.1; issue 12 attack 5: 2,002 threads)."""
    node = net.target()
    pid = net.pid(node)
    before = net.rejected(node)
    keep = net.client_session(node)
    c = net.client("b")
    held = []
    with Sampler(pid, period=0.05) as smp:
        host, port = net.addr(node, "client")
        for _ in range(2000):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                s.connect((host, port))
            held.append(s)
        time.sleep(1.0)
        t0 = time.monotonic()
        st = net.status(node, timeout=5.0)
        status_s = time.monotonic() - t0
        rid, req = c.request(wire.GET, b"adv-idle-key")
        keep.send_app(wire.submit(req))
        rep = wire.parse_reply(keep.recv_app(timeout=30))
        mid = {"threads": threads(pid), "fds": fds(pid), "rss_mib": round(rss(pid) / MIB, 1)}
    for s in held:
        s.close()
    keep.close()
    assert st is not None, "no /status while 2,000 idle connections were open"
    assert "answer" in rep, f"established session not served during the idle flood: {rep}"
    res = assert_survived(net, node, pid, before, {"connection_limit": 1000})
    assert smp.peak_threads <= smp.base_threads + 100, smp.numbers()
    assert smp.peak_fds <= smp.base_fds + 300, smp.numbers()
    record(net.impl, "2,000 idle TCP connections", status_during_s=round(status_s, 3), during=mid,
           **res, **smp.numbers())


def test_unbound_session_limit(net):
    """70 completed handshakes that never send a request: at most 64 unbound sessions are kept,
    the oldest are closed (not the new ones refused), `connection_limit` (SPEC 13.1)."""
    node = net.target()
    pid = net.pid(node)
    before = net.rejected(node)
    ss, refused = [], []
    for i in range(70):
        try:
            ss.append(net.client_session(node))
        except (OSError, ConnectionError, noise.HandshakeError) as e:
            refused.append((i, repr(e)))
    end = time.monotonic() + 3
    closed = set()
    while time.monotonic() < end and len(closed) < 6:
        for i, s in enumerate(ss):
            if i not in closed and noise.closed_by_peer(s.sock, 0.005):
                closed.add(i)
    close_all(ss)
    res = assert_survived(net, node, pid, before, {})
    record(net.impl, "70 unbound sessions", closed=len(closed), oldest_closed=sorted(closed)[:6],
           refused=len(refused), **res)
    assert not refused, f"new handshakes refused instead of closing the oldest unbound session: {refused[:3]}"
    assert len(closed) >= 6 and sorted(closed)[:6] == list(range(6)), f"closed sessions {sorted(closed)} (want the 6 oldest)"
    assert_survived(net, node, pid, before, {"connection_limit": 6}, decide=False)


def test_sessions_per_client_key(net):
    """65 sessions bound to one client key (each sends a valid GET): the 65th is answered
    `OVERLOADED` and closed, `connection_limit` (SPEC 13.1)."""
    node = net.target()
    pid = net.pid(node)
    before = net.rejected(node)
    c = net.client("a")
    ss = []
    replies = []
    try:
        for i in range(65):
            if i == 64:
                # the first 64 are bound once their requests were handled: wait for their answers, so
                # that the 65th to be handled is the 65th sent (binding order is handling order)
                for s in ss:
                    s.recv_app(timeout=30)
            s = net.client_session(node)
            ss.append(s)
            rid, req = c.request(wire.GET, f"adv-sess-{i}".encode())
            s.send_app(wire.submit(req))
            if i < 64:
                continue
            try:
                replies.append(wire.parse_reply(s.recv_app(timeout=10)))
            except (OSError, ConnectionError) as e:
                replies.append({"exception": repr(e)})
        last = replies[-1]
        closed = noise.closed_by_peer(ss[-1].sock, 5)
    finally:
        close_all(ss)
    res = assert_survived(net, node, pid, before, {"connection_limit": 1})
    assert last.get("error") == "OVERLOADED" and closed, f"65th session of one key: {last}, closed={closed}"
    record(net.impl, "65 sessions of one client key", reply_65th=last.get("error"), **res)


def test_client_check_table(net):
    """SPEC 14.3: each bad request is answered with its code on the same connection, which stays
    open and serves a good request afterwards; a plain request with a key over max_key_bytes is
    `TOO_LARGE` / `oversized` (issue 12 attack 7)."""
    node = net.target()
    pid = net.pid(node)
    before = net.rejected(node)
    lim = net.dep.manifest.get("limits", {})
    max_key, max_val = lim.get("max_key_bytes", 1024), lim.get("max_value_bytes", 65536)
    c = net.client("a")
    other = wire.Client(net.dep.client_key("client-a"), net.network_id, "s0")
    stranger = wire.Client(net.dep.client_key("client-a"), net.network_id, "c0")
    stranger.sk = wire.Ed25519PrivateKey.generate()
    stranger.pub = stranger.sk.public_key().public_bytes(wire.Encoding.Raw, wire.PublicFormat.Raw)
    cases = {
        "oversized_key": (c.request(wire.PUT, b"k" * (max_key + 1), b"v"), "TOO_LARGE", "oversized"),
        "oversized_value": (c.request(wire.PUT, b"adv-k", b"v" * (max_val + 1)), "TOO_LARGE", "oversized"),
        "empty_key": (c.request(wire.GET, b""), "MALFORMED", "malformed"),
        "get_with_value": (c.request(wire.GET, b"adv-k", b"v"), "MALFORMED", "malformed"),
        "request_id_0": (c.request(wire.GET, b"adv-k", request_id=0), "MALFORMED", "malformed"),
        "wrong_cluster": (other.request(wire.GET, b"adv-k"), "WRONG_CLUSTER", "wrong_cluster"),
        "unauthorised": (stranger.request(wire.GET, b"adv-k"), "UNAUTHORISED", "unauthorised_client"),
        "bad_signature": (c.request(wire.GET, b"adv-k", sign=False), "BAD_SIGNATURE", "bad_signature"),
        # order (14.3): shape before size before signature
        "oversized_key_bad_sig": (c.request(wire.PUT, b"k" * (max_key + 1), b"v", sign=False), "TOO_LARGE", "oversized"),
    }
    s = net.client_session(node)
    got = {}
    try:
        for name, ((_rid, req), _, _) in cases.items():
            s.send_app(wire.submit(req))
            rep = wire.parse_reply(s.recv_app(timeout=10))
            got[name] = rep.get("error") or "answer"
        rid, req = c.request(wire.PUT, f"adv-after-errors-{time.time_ns()}".encode(), b"ok")
        s.send_app(wire.submit(req))
        final = wire.parse_reply(s.recv_app(timeout=30))
    finally:
        s.close()
    want_reasons: dict[str, int] = {}
    for _, (_, _, reason) in cases.items():
        want_reasons[reason] = want_reasons.get(reason, 0) + 1
    wrong = {k: (got[k], v[1]) for k, v in cases.items() if got[k] != v[1]}
    res = assert_survived(net, node, pid, before, {})
    record(net.impl, "SPEC 14.3 check table", codes=got, wrong=wrong, **res)
    assert not wrong, f"codes (got, want): {wrong}"
    assert_survived(net, node, pid, before, want_reasons, decide=False)
    assert "answer" in final, f"connection did not serve a good request after the errors: {final}"


def test_replayed_signed_request(net):
    """A signed PUT replayed after a later PUT of the same key (new session): answered from the
    first decision (same coordinator height), not executed again (the later value stays)."""
    node = net.target()
    pid = net.pid(node)
    c = net.client("b")
    key = f"adv-replay-{time.time_ns()}".encode()
    first = c.request(wire.PUT, key, b"first")
    a1 = net.request(node, wire.PUT, key, client=c, req=first)
    net.request(node, wire.PUT, key, b"second", client=c)
    before = net.rejected(node)
    a3 = net.request(node, wire.PUT, key, client=c, req=first)
    got = net.request(node, wire.GET, key, client=c)
    res = assert_survived(net, node, pid, before, {})
    assert a3["answer"]["height"] == a1["answer"]["height"], (a1, a3)
    val = next(r["value"] for r in got["answer"]["responses"] if r["request_id"] == got["request_id"])
    assert val == b"second", f"replayed PUT was executed again: value {val!r}"
    record(net.impl, "replayed signed request", first_height=a1["answer"]["height"],
           replay_height=a3["answer"]["height"], **res)


NO_READ_LIMIT, NO_READ_SLACK = 10.0, 5.0  # SPEC 13.1 (AD-6): over 1 MiB queued, nothing taken for 10 s


def test_never_reading_bound_session_closed(net):
    """One bound session (its first message, an answered signed GET of a 60 KB value, passes the
    14.3 checks) that then sends 100 `fetch`es of it, 20 ms apart, and never reads (tiny receive
    buffer). The kernel's buffers on loopback take about 3 MB of the answers; then the node's own
    queue for the session passes 1 MiB and it stops reading (the rest of the fetches stay unread),
    so the queue stays a little over 1 MiB, never 4 MiB (one fetch read at a time), and one
    connection never reaches the 16 MiB per-node rule. The node closes the session within 10 s
    (+ slack) of the last fetch, `slow_peer` (SPEC 13.1, errata AD-6), and serves others."""
    node = net.target()
    c = net.client("a")
    key = f"adv-noread-{time.time_ns()}".encode()
    net.request(node, wire.PUT, key, b"y" * 60_000, client=c, deadline=60)
    get = c.request(wire.GET, key)
    ans = net.request(node, wire.GET, key, client=c, req=get, deadline=60)
    assert ans["answer"]["responses"], ans
    drain(net)
    pid = net.pid(node)
    before = net.rejected(node)
    s = net.client_session(node, rcvbuf=4096)
    fetches, sent = 100, 0
    with Sampler(pid) as smp:
        s.send_app(wire.submit(get[1]))  # binds the session; answered from the first decision
        s.sock.settimeout(5.0)
        try:
            for _ in range(fetches):
                s.send_app(wire.fetch(get[1]))
                sent += 1
                time.sleep(0.02)
        except OSError:
            pass  # closed early (recorded; the counter decides)
        t0 = time.monotonic()
        slow, slow_at = 0, None
        while time.monotonic() - t0 < NO_READ_LIMIT + NO_READ_SLACK:
            slow = net.rejected(node).get("slow_peer", 0) - before.get("slow_peer", 0)
            if slow:
                slow_at = round(time.monotonic() - t0, 1)
                break
            time.sleep(0.25)
        closed = noise.closed_by_peer(s.sock, 5.0)  # reads what reached us, then EOF / reset
    s.close()
    res = assert_survived(net, node, pid, before, {})
    record(net.impl, "one bound session never reads", fetches=sent, slow_peer=slow,
           slow_peer_after_s=slow_at, closed=closed, **res, **smp.numbers())
    assert slow >= 1 and closed, (f"never-reading bound session not closed within {NO_READ_LIMIT:.0f} s + "
                                  f"{NO_READ_SLACK:.0f} s of its last fetch (slow_peer +{slow}, closed {closed}; AD-6)")
    assert smp.peak <= smp.baseline + PEAK_BOUND, smp.numbers()


def test_never_reading_clients(net):
    """24 sessions of one client key that re-`fetch` an answered GET of a 60 KB value and never
    read (tiny socket buffers; each fetch is answered at once with the 60 KB compact decision, no
    consensus work, errata AD-4): the node stops reading each over 1 MiB queued, closes sessions
    over 4 MiB, over 1 MiB for 10 s (AD-6) or the largest once more than 16 MiB is queued in all
    (`slow_peer`), keeps serving
    others, RSS stays within the stated bound and comes back after the close (SPEC 13.1; issue 12
    attack 6). How many fetches each session got into the kernel's buffers is recorded only."""
    node = net.target()
    c = net.client("a")
    key = f"adv-big-{time.time_ns()}".encode()
    net.request(node, wire.PUT, key, b"x" * 60_000, client=c, deadline=60)
    get = c.request(wire.GET, key)
    ans = net.request(node, wire.GET, key, client=c, req=get, deadline=60)
    assert ans["answer"]["responses"], ans
    pid = net.pid(node)
    before = net.rejected(node)
    count, cap = 24, 5000
    ss = sessions(net, node, count, rcvbuf=4096, sndbuf=16384)
    sent = [0] * count
    fetch = wire.fetch(get[1])
    base = rss(pid)
    valve = threading.Event()  # a node without backpressure would buffer GBs: stop at +256 MiB

    def flood(i, s):
        s.sock.settimeout(3.0)
        try:
            while sent[i] < cap and not valve.is_set():
                s.send_app(fetch)
                sent[i] += 1
                if sent[i] % 50 == 0 and rss(pid) > base + 256 * MIB:
                    valve.set()
        except OSError:
            pass  # blocked for 3 s (the node stopped reading us) or closed

    with Sampler(pid) as smp:
        ts = [threading.Thread(target=flood, args=(i, s)) for i, s in enumerate(ss)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        t0 = time.monotonic()
        other = net.put(node, f"adv-during-{time.time_ns()}".encode(), b"v", deadline=30)
        put_during_s = round(time.monotonic() - t0, 2)
        end = time.monotonic() + 20
        slow = 0
        while time.monotonic() < end and not slow:
            slow = net.rejected(node).get("slow_peer", 0) - before.get("slow_peer", 0)
            time.sleep(0.5)
    closed = sum(noise.closed_by_peer(s.sock, 0.01) for s in ss)
    close_all(ss)
    back = wait_rss_back(pid, smp.baseline, AFTER_SLACK)
    res = assert_survived(net, node, pid, before, {})
    record(net.impl, "24 never-reading sessions (fetch of a 60 KB answer)", fetches_sent_max=max(sent),
           safety_valve=valve.is_set(),
           fetches_sent_total=sum(sent), slow_peer=slow, sessions_closed=closed, put_during_s=put_during_s,
           rss_after_mib=round(back / MIB, 1), **res, **smp.numbers())
    assert "answer" in other
    assert not valve.is_set(), f"node RSS grew by 256 MiB (attack stopped): {smp.numbers()}"
    assert smp.peak <= smp.baseline + PEAK_BOUND, smp.numbers()
    assert back <= smp.baseline + AFTER_SLACK, (back, smp.numbers())
    assert slow >= 1 and closed >= 1, f"no never-reading session closed (slow_peer {slow}, closed {closed})"
