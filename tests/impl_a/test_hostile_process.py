"""Issue 12 hostile input against real impl_a processes: admin port (SPEC 15.1), client-port limits
(13, 13.1), the client check order (14.3), admission under a flood (12.5), fail-stop storage (12.8)."""

import asyncio
import contextlib
import os
import pathlib
import re
import socket
import struct
import subprocess
import time

import nacl.bindings as nb
import pytest

from impl_a import heraclius_pb2 as pb
from impl_a.codec import decode, encode
from impl_a.crypto import SigningKey
from impl_a.devnet import read_key
from impl_a.manifest import validate
from impl_a.transport import _frame, connect
from impl_a.verify import sign_message

from .procnet import ProcNet

PAIR = [("c0", "coordinator"), ("s0", "shard")]
SHARE = 64
TARGET = "c0-n2"  # the attacked member (a follower once the cluster settled in one view)


def _settled(n) -> bool:
    sts = [n.status(f"c0-n{i}") for i in range(4)]
    return len({s["view"] for s in sts}) == 1 and not any(s["in_view_change"] for s in sts)


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    # max_batch_inputs 64 makes the client share 64 items, so the flood test sheds for certain
    n = ProcNet(tmp_path_factory.mktemp("hostile"), PAIR, clients=2, limits={"max_batch_inputs": SHARE})
    try:
        n.start_all()
        n.op("put", "warm-up", "1", timeout_ms=60000)
        assert _wait(lambda: _settled(n), 60)
        yield n
    finally:
        n.close()


def _rejected(net, nid=TARGET):
    return net.status(nid)["rejected"]


def _rss_kb(pid: int) -> int:
    """Resident set size in KiB, from /proc (0 once the process is gone)."""
    try:
        text = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmRSS:\s+(\d+)", text, re.M)
    return int(found.group(1)) if found else 0


def _wait(cond, timeout=30.0, step=0.2):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return False


# -- admin port (SPEC 15.1) ---------------------------------------------------------------------------
def _http(net, raw: bytes, nid=TARGET, timeout=10.0) -> bytes:
    port = net.nodes[nid]["ports"]["admin"]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with contextlib.suppress(OSError):
            s.sendall(raw)
        out = b""
        with contextlib.suppress(OSError):
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
    return out


def _status_line(resp: bytes) -> int:
    assert resp.startswith(b"HTTP/1.1 "), resp[:100]
    return int(resp.split(b" ")[1])


def test_admin_answers_every_request(net):
    before = _rejected(net).get("bad_http_request", 0)
    assert _status_line(_http(net, b"GET /log/999999999999999999999 HTTP/1.1\r\n\r\n")) == 400
    assert _status_line(_http(net, b"GET /log/18446744073709551615 HTTP/1.1\r\n\r\n")) == 404
    assert _status_line(_http(net, b"GET /log/abc HTTP/1.1\r\nConnection: close\r\n\r\n")) == 400
    assert _status_line(_http(net, b"GET /status?x=1 HTTP/1.1\r\nConnection: close\r\n\r\n")) == 200
    assert _status_line(_http(net, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n")) == 414
    assert _status_line(_http(net, b"GET /status HTTP/1.1\r\nX: " + b"y" * 1_000_000 + b"\r\n\r\n")) == 431
    assert _status_line(_http(net, b"DELETE /status HTTP/1.0\r\n\r\n")) == 405
    head = _http(net, b"HEAD /status HTTP/1.0\r\n\r\n")
    assert _status_line(head) == 200 and head.endswith(b"\r\n\r\n") and b"Content-Length: " in head
    # keep-alive: two requests on one connection, both answered
    two = _http(net, b"GET /health HTTP/1.1\r\n\r\nGET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert two.count(b"HTTP/1.1 200") == 2
    assert _rejected(net)["bad_http_request"] >= before + 5


def test_admin_slow_headers_are_cut_at_the_deadline(net):
    port = net.nodes[TARGET]["ports"]["admin"]
    before = _rejected(net).get("slow_peer", 0)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        t0 = time.monotonic()
        s.sendall(b"GET /status HTTP/1.1\r\n")
        closed = False
        for _ in range(30):
            try:
                s.sendall(b"X-Slow: 1\r\n")
                s.settimeout(1.0)
                if s.recv(100) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
        assert closed and time.monotonic() - t0 < 20
    assert _rejected(net)["slow_peer"] > before


def test_admin_connection_limit(net):
    port = net.nodes[TARGET]["ports"]["admin"]
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
    try:
        time.sleep(0.5)
        extra = _http(net, b"", timeout=5)
        assert _status_line(extra) == 503
    finally:
        for s in socks:
            s.close()
    assert _wait(lambda: net.admin(TARGET, "/health")[0] == 200, 10)
    assert _rejected(net)["connection_limit"] >= 1


# -- client port (SPEC 13, 13.1, 14.3) ----------------------------------------------------------------
async def _handshake_once(net):
    link = await Raw(net).open()
    link.close()


def test_handshake_slots_and_deadline(net):
    """Errata AD-3: 64 connections that never start the handshake fill the client port's slots; a
    65th closes the oldest of them (connection_limit) and its own handshake succeeds; the rest are
    closed when message 1 has not come within 1 s (handshake_failed); the node goes on."""
    port = net.nodes[TARGET]["ports"]["client"]
    before = _rejected(net)
    h0 = net.status(TARGET)["height"]
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
    try:
        time.sleep(0.2)
        asyncio.run(_handshake_once(net))  # admitted: the oldest idle one made room
        idle[0].settimeout(5)
        assert idle[0].recv(10) == b""
        t0 = time.monotonic()
        for s in idle[1:]:
            s.settimeout(10)
        assert all(s.recv(10) == b"" for s in idle[1:])
        assert time.monotonic() - t0 < 4  # the 1 s message-1 deadline, not the 5 s one
    finally:
        for s in idle:
            s.close()
    after = _rejected(net)
    assert after["connection_limit"] > before.get("connection_limit", 0)
    assert after["handshake_failed"] >= before.get("handshake_failed", 0) + 62
    net.op("put", "after-slots", "1", timeout_ms=30000)
    assert _wait(lambda: net.status(TARGET)["height"] > h0, 30)


def test_handshake_slots_are_per_port(net):
    """Errata AD-3: 64 idle connections on the peer port take no client-port slot."""
    peer = net.nodes[TARGET]["ports"]["peer"]
    before = _rejected(net).get("connection_limit", 0)
    idle = [socket.create_connection(("127.0.0.1", peer)) for _ in range(64)]
    try:
        time.sleep(0.2)
        asyncio.run(_handshake_once(net))
        assert _rejected(net).get("connection_limit", 0) == before
    finally:
        for s in idle:
            s.close()


def test_whole_handshake_deadline_after_message_1(net):
    """Message 1 in time but no message 3: closed at the 5 s deadline, handshake_failed (AD-5)."""
    port = net.nodes[TARGET]["ports"]["client"]
    before = _rejected(net).get("handshake_failed", 0)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(_frame(nb.randombytes(32)))
        t0 = time.monotonic()
        data = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(4096):
                data += chunk
        took = time.monotonic() - t0
    assert data and 3.5 < took < 8, took  # message 2 came; closed at about 5 s
    assert _wait(lambda: _rejected(net).get("handshake_failed", 0) > before, 5)


@pytest.mark.parametrize("when", ["handshake", "transport", "app_length"])
def test_zero_length_frames(net, when):
    """Errata AD-2: a zero-length frame is handshake_failed during the handshake and malformed after
    it; an application length of 0 is malformed."""
    port = net.nodes[TARGET]["ports"]["client"]
    want = "handshake_failed" if when == "handshake" else "malformed"
    before = _rejected(net).get(want, 0)
    if when == "handshake":
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"\x00\x00")
            assert s.recv(10) == b""
    else:
        async def run():
            link = await Raw(net).open()
            if when == "transport":
                link.writer.write(b"\x00\x00")
            else:
                Raw.send_raw(link, struct.pack(">I", 0))
            closed = await _closed(link)
            link.close()
            return closed
        assert asyncio.run(run())
    assert _wait(lambda: _rejected(net).get(want, 0) > before, 5)


def test_then_close_admin_answers_survive_pipelined_bytes(net):
    """Errata AD-7: an HTTP/1.0 request followed by unread bytes still gets its whole answer."""
    resp = _http(net, b"GET /health HTTP/1.0\r\n\r\n" + b"x" * 40000)
    assert _status_line(resp) == 200


class Raw:
    """A Noise initiator on the client port that can send arbitrary application bytes."""

    def __init__(self, net, nid=TARGET):
        self.net, self.nid = net, nid
        self.m = validate(net.doc)
        self.node = self.m.nodes[nid]

    async def open(self):
        hello = pb.Hello(protocol_version=1, network_id=self.m.network_id)
        return await connect(self.node.host, self.node.client_port, self.m.network_id, nb.randombytes(32), hello,
                             self.node.x25519_public, 1 << 24)

    @staticmethod
    def send_raw(link, stream: bytes) -> None:
        for i in range(0, len(stream), 65519):
            link.writer.write(_frame(link.send_cs.encrypt_with_ad(b"", stream[i:i + 65519])))


def _client_key(net, i=0):
    return SigningKey(read_key(net.root / "clients" / f"client{i}.key"))


def _signed_request(net, rid, key=b"k", value=b"v", kind=pb.OP_KIND_PUT, client=0):
    sk = _client_key(net, client)
    req = pb.ClientRequest(client_key=sk.public, request_id=rid, cluster_id="c0",
                           op=pb.Operation(kind=kind, key=key, value=value if kind == pb.OP_KIND_PUT else b""))
    sign_message(sk, "client-request", net.doc["network_id"], req)
    return req


async def _closed(link, timeout=5.0) -> bool:
    try:
        data = await asyncio.wait_for(link.reader.read(65536), timeout)
    except (TimeoutError, ConnectionError):
        return False
    return data == b""


def test_oversized_announcement_closes_at_once_and_memory_stays_bounded(net):
    raw = Raw(net)
    pid = net.procs[TARGET].pid
    before_rss = _rss_kb(pid)
    before = _rejected(net).get("oversized", 0)

    async def run():
        links = [await raw.open() for _ in range(20)]
        for link in links:  # announce 16 MiB, then send what fits before the node hangs up
            raw.send_raw(link, struct.pack(">I", 16 << 20) + bytes(60000))
        closed = [await _closed(link) for link in links]
        for link in links:
            link.close()
        # 20 sessions each holding a partial message just under the client-port cap
        links = [await raw.open() for _ in range(20)]
        for link in links:
            raw.send_raw(link, struct.pack(">I", 262160) + bytes(262000))
            await link.writer.drain()
        await asyncio.sleep(1.0)
        rss = _rss_kb(pid)
        for link in links:
            link.close()
        return closed, rss

    closed, rss = asyncio.run(run())
    assert all(closed)
    assert _rejected(net)["oversized"] >= before + 20
    assert rss - before_rss < 40_000, (before_rss, rss)  # 20 x 256 KiB partial messages, not 20 x 16 MiB


def test_unbound_sessions_are_limited(net):
    raw = Raw(net)
    before = _rejected(net).get("connection_limit", 0)

    async def run():
        links = []
        for _ in range(70):
            links.append(await raw.open())
        await asyncio.sleep(0.5)
        oldest_closed = [await _closed(link, 1.0) for link in links[:6]]
        newest_open = not await _closed(links[-1], 0.5)
        for link in links:
            link.close()
        return oldest_closed, newest_open

    oldest_closed, newest_open = asyncio.run(run())
    assert all(oldest_closed) and newest_open
    assert _rejected(net)["connection_limit"] >= before + 6


def _replies(link, n, timeout=10.0):
    async def run():
        out = []
        while len(out) < n:
            out.append(decode(pb.ClientReply, await asyncio.wait_for(link.recv_bytes(), timeout)))
        return out
    return run()


def test_plain_request_checks_and_binding(net):
    raw = Raw(net)

    async def run():
        link = await raw.open()
        big = _signed_request(net, 11, key=b"k" * 1025)
        await link.send(pb.ClientMessage(submit=big))
        (r1,) = await _replies(link, 1)
        bad = _signed_request(net, 12)
        bad.signature = bytes(64)
        await link.send(pb.ClientMessage(submit=bad))
        (r2,) = await _replies(link, 1)
        good = _signed_request(net, time.time_ns() // 1000, key=b"bind")
        await link.send(pb.ClientMessage(submit=good))
        (r3,) = await _replies(link, 1)
        other = _signed_request(net, time.time_ns() // 1000, client=1)  # another authorised key
        await link.send(pb.ClientMessage(submit=other))
        (r4,) = await _replies(link, 1)
        still_open = not await _closed(link, 0.3)
        link.close()
        return r1, r2, r3, r4, still_open

    r1, r2, r3, r4, still_open = asyncio.run(run())
    assert r1.error.code == pb.CLIENT_ERROR_TOO_LARGE and r1.error.request_id == 11
    assert r2.error.code == pb.CLIENT_ERROR_BAD_SIGNATURE
    assert r3.HasField("answer")
    assert r4.error.code == pb.CLIENT_ERROR_UNAUTHORISED and still_open


def test_never_reading_clients_are_closed_and_memory_comes_back(net):
    """Sessions that re-fetch an answered GET of a 60 KB value and never read: the node stops reading
    them over 1 MiB queued, closes them past 4 MiB / 16 MiB (slow_peer), and its RSS is bounded and
    comes back after they close (SPEC 13.1)."""
    raw = Raw(net)
    pid = net.procs[TARGET].pid
    before = _rejected(net).get("slow_peer", 0)
    key = b"big-%d" % time.time_ns()
    rid = time.time_ns() // 1000

    async def run():
        link = await raw.open()
        await link.send(pb.ClientMessage(submit=_signed_request(net, rid, key=key, value=b"x" * 60000)))
        await _replies(link, 1, 30)
        get = _signed_request(net, rid + 1, key=key, kind=pb.OP_KIND_GET)
        await link.send(pb.ClientMessage(submit=get))
        await _replies(link, 1, 30)
        link.close()
        fetch = encode(pb.ClientMessage(fetch=get))
        base = _rss_kb(pid)
        links = []
        for _ in range(24):
            lk = await raw.open()
            lk.writer.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            links.append(lk)
        peak = base
        for _ in range(60):  # up to 60 x 24 x 50 fetches, each answered with ~60 KB
            for lk in links:
                if not lk.writer.transport.is_closing():
                    for _ in range(50):
                        lk.send_nowait(fetch)
            await asyncio.sleep(0.05)
            peak = max(peak, _rss_kb(pid))
        for lk in links:
            lk.writer.transport.abort()
        return base, peak

    base, peak = asyncio.run(run())
    assert _wait(lambda: _rejected(net).get("slow_peer", 0) > before, 20)
    assert peak - base < 100_000, (base, peak)  # bounded (a node without limits holds GBs)
    assert _wait(lambda: _rss_kb(pid) - base < 40_000, 30), (base, _rss_kb(pid))
    assert net.admin(TARGET, "/health")[0] == 200


def test_flood_is_shed_by_share_and_admin_keeps_answering(net):
    """One client pipelines PUTs at a follower without reading; the follower answers OVERLOADED once
    that client's share is used, /status keeps answering, and another client's request succeeds."""
    raw = Raw(net)
    start_height = net.status(TARGET)["height"]
    base = time.time_ns() // 1000

    async def flood(stop):
        link = await raw.open()
        rid = base
        sent = 0
        reqs = [_signed_request(net, base + i, key=b"f%d" % (i % 50)) for i in range(1, 3001)]
        while not stop.is_set() and sent < len(reqs):
            for req in reqs[sent:sent + 200]:
                link.send_nowait(encode(pb.ClientMessage(submit=req)))
            sent += 200
            rid += 200
            with contextlib.suppress(Exception):
                await asyncio.wait_for(link.drain(), 2)
            await asyncio.sleep(0.01)
        return link, sent

    async def run():
        stop = asyncio.Event()
        task = asyncio.create_task(flood(stop))
        worst = 0.0
        loop = asyncio.get_running_loop()
        for _ in range(10):
            t0 = time.monotonic()
            code, _ = await loop.run_in_executor(None, net.admin, TARGET, "/status", 10.0)
            worst = max(worst, time.monotonic() - t0)
            assert code == 200
            await asyncio.sleep(0.2)
        stop.set()
        link, sent = await task
        overloaded = 0
        with contextlib.suppress(TimeoutError):
            while True:
                reply = decode(pb.ClientReply, await asyncio.wait_for(link.recv_bytes(), 3))
                overloaded += reply.HasField("error") and reply.error.code == pb.CLIENT_ERROR_OVERLOADED
        link.close()
        return worst, sent, overloaded

    worst, sent, overloaded = asyncio.run(run())
    assert worst < 5.0
    assert overloaded > 0  # shed long before the 100,000-item pool is full
    st = net.status(TARGET)
    assert st["pending"]["requests"] <= 4 * SHARE + 64  # its share at each member, at most
    r = net.op("put", "after-flood", "ok", timeout_ms=30000)  # client0 through any member
    assert r["op"] == "put"
    assert _wait(lambda: net.status(TARGET)["height"] > start_height, 30)


# -- fail-stop storage (SPEC 12.8) --------------------------------------------------------------------
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a tmpfs")
def test_full_disk_exits_5_and_recovers(net, tmp_path):
    nid = "c0-n3"
    data = net.root / "data" / nid
    net.kill9(nid)
    saved = tmp_path / "saved"
    subprocess.run(["cp", "-a", str(data), str(saved)], check=True)
    used = sum(f.stat().st_size for f in saved.rglob("*") if f.is_file())
    size_kb = max(2048, (2 * used) // 1024 + 2048)  # room for the node's data and its catch-up
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(data)], check=True)
    try:
        subprocess.run(f"cp -a {saved}/. {data}/", shell=True, check=True)
        net.start(nid)
        net.wait_ready(nid)
        filler = data / "filler"
        free = os.statvfs(data).f_bavail * os.statvfs(data).f_frsize
        with open(filler, "wb") as fh:
            fh.write(bytes(max(0, free - 150_000)))
        p = net.procs[nid]
        last_height = 0
        for i in range(60):
            if p.poll() is not None:
                break
            with contextlib.suppress(Exception):
                net.op("put", f"fill{i}", "x" * 60000, timeout_ms=10000)
            with contextlib.suppress(Exception):
                last_height = max(last_height, net.status(nid)["height"])
        assert p.wait(timeout=30) == 5
        log = (net.root / f"{nid}.log").read_text()
        assert '"event": "storage_failed"' in log and '"level": "error"' in log
        assert "clean stop" not in log
        net.procs.pop(nid)
        filler.unlink()
        net.start(nid)
        net.wait_ready(nid)
        assert net.status(nid)["height"] >= last_height  # nothing reported was undurable
        leader_h = net.status("c0-n1")["height"]
        assert _wait(lambda: net.status(nid)["height"] >= leader_h, 60)
    finally:
        net.kill9(nid)
        final = tmp_path / "final"
        subprocess.run(["cp", "-a", str(data), str(final)], check=False)
        subprocess.run(["umount", str(data)], check=False)
        subprocess.run(f"cp -a {final}/. {data}/", shell=True, check=False)
        net.start(nid)
        net.wait_ready(nid)
