"""Issue 12 hostile-input rules, unit level: admin request parsing (SPEC 15.1), handshake sizes and
all-zero DH results (13), session limits (13.1), client check order (14.3), admission shares and the
censorship window (12.5), client retry backoff and error finality (14.5), fail-stop storage (12.8)."""

import random

import pytest

from impl_a import heraclius_pb2 as pb
from impl_a import httpreq, sessions
from impl_a.client import retry_backoff
from impl_a.errors import RemoteViolation
from impl_a.manifest import validate
from impl_a.noise import HandshakeState, NoiseError
from impl_a.storage import Storage, StorageFailed, WriteBehind
from impl_a.transport import PROTOCOL, LinkClosed, check_handshake_size
from impl_a.verify import check_plain_request

from .simnet import SimNet


# -- SPEC 15.1 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw,status,close", [
    (b"GET /status HTTP/1.1\r\n\r\n", None, False),
    (b"HEAD /metrics HTTP/1.0\r\n\r\n", None, True),
    (b"GET /status HTTP/1.1\r\nConnection: close\r\n\r\n", None, True),
    (b"GET /x HTTP/1.1\n\n", None, False),
    (b"A" * 8192, 414, True),
    (b"GET  /status HTTP/1.1\r\n\r\n", 400, True),
    (b"GET /status HTTP/2.0\r\n\r\n", 400, True),
    (b"GET /status\r\n\r\n", 400, True),
    (b"GET /x HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431, True),
    (b"GET /x HTTP/1.1\r\nX: " + b"y" * 16400 + b"\r\n\r\n", 431, True),
    (b"GET /x HTTP/1.1\r\nno colon here\r\n\r\n", 400, True),
    (b"GET /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 400, True),
    (b"GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 400, True),
    (b"POST /status HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, False),
    (b"GET status HTTP/1.1\r\n\r\n", 400, False),
])
def test_admin_request_table(raw, status, close):
    head = httpreq.parse_head(raw)
    assert head is not None
    assert head.error == status and head.close == close


def test_admin_incomplete_requests_wait_for_more():
    assert httpreq.parse_head(b"GET /status HTTP/1.1\r\nHost: a\r\n") is None
    assert httpreq.parse_head(b"GET /sta") is None
    assert httpreq.parse_head(b"A" * 8191) is None
    # one header line at a time never completes the request: the 5 s deadline ends it (process test)
    assert httpreq.parse_head(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 50) is None


@pytest.mark.parametrize("target,kind,h", [
    ("/status?x=1", "page", None), ("/health", "page", None), ("/metrics?", "page", None),
    ("/log/0", "log", 0), ("/log/7", "log", 7), ("/log/18446744073709551615", "log", 2**64 - 1),
    ("/log/18446744073709551616", "bad", None), ("/log/999999999999999999999", "bad", None),
    ("/log/abc", "bad", None), ("/log/", "bad", None), ("/log/01", "bad", None), ("/log/+1", "bad", None),
    ("/log/1/2", "bad", None), ("/log/\u00b2", "bad", None), ("/log/1?x", "log", 1), ("/nope", "missing", None),
])
def test_admin_paths(target, kind, h):
    assert httpreq.route_path(target) == (kind, h)


# -- SPEC 13 ------------------------------------------------------------------------------------------
def test_handshake_sizes():
    check_handshake_size(1, 32)
    for i, n in ((1, 31), (1, 33), (1, 0), (2, 95), (3, 63)):
        with pytest.raises(LinkClosed) as e:
            check_handshake_size(i, n)
        assert e.value.reason == "handshake_failed"
    check_handshake_size(2, 96)
    check_handshake_size(3, 64)


@pytest.mark.parametrize("bad", [bytes(32), b"\x01" + bytes(31), bytes.fromhex(
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"), b"\xec" + b"\xff" * 30 + b"\x7f",
    b"\xee" + b"\xff" * 30 + b"\x7f", bytes(31) + b"\x80", b"\x01" + bytes(30) + b"\x80"])
def test_small_order_ephemeral_fails_the_handshake(bad):
    resp = HandshakeState(PROTOCOL, False, b"p", s=bytes(range(32)))
    with pytest.raises(NoiseError):
        resp.read_message(bad)
        resp.write_message(b"")  # the ee token: an all-zero (or refused) X25519 result


# -- SPEC 13.1 ----------------------------------------------------------------------------------------
def test_session_table_limits():
    t = sessions.SessionTable()
    opened = [t.open(i, 0.0) for i in range(sessions.UNBOUND)]
    assert all(ev is None for _, ev in opened)
    s65, evict = t.open("x", 1.0)
    assert evict is opened[0][0] and evict.closing == "connection_limit"
    t.close(evict)
    key = b"k" * 32
    bound = [s for s, _ in opened[1:]]
    for s in bound:
        assert t.bind(s, key)
    assert len(t.unbound) == 1 and t.per_key[key] == sessions.UNBOUND - 1
    s2, _ = t.open("y", 2.0)
    assert t.bind(s2, key)  # the 64th
    s3, _ = t.open("z", 2.0)
    assert not t.bind(s3, key)  # the 65th session of one key
    assert t.idle_unbound(2.0 + sessions.UNBOUND_IDLE_S) == [s65, s3]
    for s in list(t.all):
        t.close(s)
    assert not t.all and not t.unbound and not t.per_key


def test_queued_bytes_policy():
    a, b, c = object(), object(), object()
    over = sessions.SessionTable.over_queued([(5 << 20, a), (1 << 20, b), (1, c)])
    assert over == [a]  # over 4 MiB on its own
    over = sessions.SessionTable.over_queued([(3 << 20, a)] * 6 + [(1 << 20, b)])  # 19 MiB in all
    assert over == [a]  # the largest goes: 16 MiB left


def test_stalled_session_policy():
    """Errata AD-6: over 1 MiB queued and nothing taken by the client for 10 s: closed."""
    s = sessions.Session("c", 0.0)
    big = sessions.QUEUED_PAUSE + 1
    assert not s.stalled(big, 100, 0.0)  # took 100 bytes since it opened: the clock starts now
    assert not s.stalled(big, 100, 9.9)
    assert s.stalled(big, 100, 10.0)
    assert not s.stalled(big, 101, 10.5)  # it read a byte: the clock restarts
    assert not s.stalled(sessions.QUEUED_PAUSE, 101, 30.0)  # at most 1 MiB queued: never
    assert not s.stalled(big, 101, 39.9)
    assert s.stalled(big, 101, 40.0)


# -- SPEC 14.3 ----------------------------------------------------------------------------------------
def _manifest(clients=1, **limits):
    import tempfile

    from impl_a.devnet import make_network

    doc = make_network(tempfile.mkdtemp(), [("c0", "coordinator"), ("s0", "shard")], clients=clients, seed=3)
    doc["limits"] = limits
    return validate(doc)


def _req(m, key=b"k", value=b"", kind=pb.OP_KIND_GET, rid=1, cluster="c0", client=None):
    client = client if client is not None else next(iter(m.clients))
    return pb.ClientRequest(client_key=client, request_id=rid, cluster_id=cluster,
                            op=pb.Operation(kind=kind, key=key, value=value), signature=b"s" * 64)


@pytest.mark.parametrize("change,reason", [
    (dict(cluster="s0"), "wrong_cluster"), (dict(client=b"u" * 32), "unauthorised_client"),
    (dict(rid=0), "malformed"), (dict(key=b""), "malformed"), (dict(value=b"v"), "malformed"),
    (dict(key=b"k" * 1025), "oversized"), (dict(kind=pb.OP_KIND_PUT, value=b"v" * 65537), "oversized"),
    (dict(cluster="s0", key=b"k" * 2000), "wrong_cluster"), (dict(rid=0, key=b"k" * 2000), "malformed"),
])
def test_plain_request_check_order(change, reason):
    m = _manifest()
    with pytest.raises(RemoteViolation) as e:
        check_plain_request(m, _req(m, **change), "c0")
    assert e.value.reason == reason


# -- SPEC 12.5 ----------------------------------------------------------------------------------------
def test_share_and_censorship_window(tmp_path):
    net = SimNet(tmp_path, clusters=(("c0", "coordinator"), ("s0", "shard")), seed=5)
    r = net.nodes["c0-n2"].replica
    assert r.share == min(r.lim["max_batch_inputs"], r.lim["max_pending_requests"] // len(r.m.clients))
    key = next(iter(r.m.clients))
    share = r.share
    r.share = 3
    for rid in (1, 2, 3):
        assert r.admits(key, 1)
        r.on_client_requests([_req(r.m, rid=rid, client=key)])
    assert not r.admits(key, 1)  # the share is used: OVERLOADED before any signature check
    assert r.own_items[key] == 3
    # a Forward bypasses the share (the forwarding member applied it)
    assert r.on_client_request(_req(r.m, rid=4, client=key))
    assert r.own_items[key] == 3 and r.pool_items == 4
    r.pool_drop((key, 1))
    assert r.admits(key, 1) and r.own_items[key] == 2
    r.share = share
    # censorship timer: only the max_batch_inputs oldest run it, from when they became one of them
    r.lim = dict(r.lim, max_batch_inputs=2)
    r.in_vc = False
    r._pool_checked = -10**9
    r.now += 1
    r._pool_timers()
    entries = list(r.req_pool.values())
    assert entries[0][3] is not None and entries[1][3] is not None and entries[2][3] is None


def test_leader_interleaves_client_keys(tmp_path):
    net = SimNet(tmp_path, clusters=(("c0", "coordinator"), ("s0", "shard")), seed=6)
    r = net.nodes["c0-n0"].replica
    a, b = b"a" * 32, b"b" * 32
    for i in range(1, 6):
        r.req_pool[(a, i)] = [None, 0, 0, None, 0]
    r.req_pool[(b, 1)] = [None, 0, 0, None, 0]
    r.req_pool[(b, 2)] = [None, 0, 0, None, 0]
    order = [k for k, _ in r._batch_order()]
    assert order[:4] == [(a, 1), (b, 1), (a, 2), (b, 2)]
    r.req_pool.clear()


# -- SPEC 14.5 ----------------------------------------------------------------------------------------
def test_retry_backoff_is_jittered_and_capped():
    rng = random.Random(1)
    for r, b in ((1, 0.05), (2, 0.1), (3, 0.2), (5, 0.8), (6, 1.0), (40, 1.0)):
        for _ in range(50):
            w = retry_backoff(r, rng)
            assert b / 2 <= w <= b


# -- SPEC 12.8 ----------------------------------------------------------------------------------------
def test_storage_failure_calls_the_fail_stop_hook(tmp_path):
    seen = []
    wb = WriteBehind(Storage(tmp_path / "d"), lambda op, exc: seen.append((op, str(exc))))
    wb.write([(1, b"x")], [])
    wb.store.db.close()  # the engine fails from now on
    wb.stage([(2, b"y")], [])
    with pytest.raises(StorageFailed):
        wb.flush()
    with pytest.raises(StorageFailed):
        wb.decision(1)  # never served after a failure
    assert seen[0][0] == "write" and wb.failed


def _client(tmp_path, timeout_ms):
    from impl_a.client import Client
    from impl_a.devnet import make_network, read_key

    doc = make_network(tmp_path, [("c0", "coordinator"), ("s0", "shard")], seed=9)  # nothing listens
    return Client(validate(doc), read_key(tmp_path / "clients" / "client0.key"), timeout_ms=timeout_ms, seed=1)


def test_client_backs_off_while_every_node_is_down(tmp_path, monkeypatch):
    import asyncio
    import time

    from impl_a import client as client_mod

    dials = []
    real = client_mod.connect

    async def counting(*a, **k):
        dials.append(time.monotonic())
        return await real(*a, **k)

    monkeypatch.setattr(client_mod, "connect", counting)
    c = _client(tmp_path, 2000)
    t0 = time.monotonic()
    with pytest.raises(client_mod.NoValidAnswer) as e:
        asyncio.run(c.get(b"k"))
    took = time.monotonic() - t0
    assert 1.9 <= took < 10  # fails at its deadline, not at once
    assert len(dials) <= 4 * 7, len(dials)  # a few attempts per member per second (no busy loop)
    assert e.value.final is None and "connection failed" in str(e.value)


@pytest.mark.parametrize("answers,final", [
    ({0: pb.CLIENT_ERROR_BAD_SIGNATURE}, None),  # one member's word is not final
    ({0: pb.CLIENT_ERROR_BAD_SIGNATURE, 1: pb.CLIENT_ERROR_BAD_SIGNATURE}, "CLIENT_ERROR_BAD_SIGNATURE"),
    ({0: pb.CLIENT_ERROR_STALE, 1: pb.CLIENT_ERROR_MALFORMED}, None),  # f + 1 must agree on one code
])
def test_client_error_finality(tmp_path, answers, final):
    import asyncio

    from impl_a.client import NoValidAnswer

    c = _client(tmp_path, 600)
    tries = []

    async def fake_attempt(node, req, attempt, deadline, failures):
        i = [n.id for n in c.members].index(node.id)
        tries.append(i)
        failures[node.id] = "scripted"
        await asyncio.sleep(0.01)
        return answers.get(i)

    c._attempt = fake_attempt
    c._first_member = lambda: 0
    with pytest.raises(NoValidAnswer) as e:
        asyncio.run(c.get(b"k"))
    assert e.value.final == final
    if final is None:
        assert len(set(tries)) == 4 and len(tries) > 4  # kept trying the others, in several rounds


def test_client_read_gate_closes_over_32_mib():
    import asyncio

    from impl_a.clientport import ClientPort

    async def run():
        cp = ClientPort(None)
        cp._meter(sessions.READ_BUFFER + 1)
        assert not cp._read_ok.is_set()

        class L:
            def backlog(self):
                return 0

        gate = asyncio.ensure_future(cp._gate(L()))
        await asyncio.sleep(0.01)
        assert not gate.done()  # no client connection is read while over the limit
        cp._meter(-2)
        await asyncio.wait_for(gate, 1)
        assert cp.table.read_bytes == sessions.READ_BUFFER - 1

    asyncio.run(run())


def test_session_table_full_at_1024():
    t = sessions.SessionTable()
    for i in range(sessions.SESSIONS - 1):
        t.open(i, 0.0)
    assert not t.full()
    t.open("last", 0.0)
    assert t.full()
