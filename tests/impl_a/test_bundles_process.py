"""Request bundles (SPEC 14.6) on a real 4+4 network of impl_a processes: a bundling client's
concurrent workload reads back what it wrote; per-item errors; exactly-once across resent bundles."""

import asyncio

import pytest

from impl_a import heraclius_pb2 as pb
from impl_a.client import Client
from impl_a.devnet import read_key
from impl_a.manifest import validate
from impl_a.verify import sign_message

from .procnet import ProcNet

PAIR = [("c0", "coordinator"), ("s0", "shard")]
C0 = ("c0-n0", "c0-n1", "c0-n2", "c0-n3")
GET, PUT = pb.OP_KIND_GET, pb.OP_KIND_PUT


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    n = ProcNet(tmp_path_factory.mktemp("bundlenet"), PAIR)
    try:
        n.start_all()
        yield n
    finally:
        n.close()


def _client(net) -> Client:
    c = Client(validate(net.doc), read_key(net.root / "clients" / "client0.key"), timeout_ms=30000)
    c.bundling = True
    return c


def _counter(net, name: str) -> int:
    return sum(net.status(n)["counters"][name] for n in C0)


def test_bundling_client_workload_reads_back_its_writes(net):
    bundles_before = _counter(net, "client_bundles")
    requests_before, replies_before = _counter(net, "client_requests"), _counter(net, "client_replies")
    n_keys = 96

    async def run():
        async with _client(net) as c:
            puts = await asyncio.gather(*(c.put(b"bk%d" % i, b"bv%d" % i) for i in range(n_keys)))
            gets = await asyncio.gather(*(c.get(b"bk%d" % i) for i in range(n_keys)))
            # a closed loop of users: each issues its next request when its previous one is answered
            async def user(u):
                for j in range(4):
                    await c.put(b"bu%d" % u, b"%d-%d" % (u, j))
                return await c.get(b"bu%d" % u)

            loop_reads = await asyncio.gather(*(user(u) for u in range(32)))
            return puts, gets, loop_reads, c.bundles_sent

    puts, gets, loop_reads, sent = asyncio.run(run())
    assert all(p.op == "put" and not p.found for p in puts)
    assert [g.value for g in gets] == [b"bv%d" % i for i in range(n_keys)]
    assert [r.value for r in loop_reads] == [b"%d-3" % u for u in range(32)]
    assert 0 < sent < n_keys  # many requests went out in few bundles
    assert _counter(net, "client_bundles") - bundles_before == sent
    requests = _counter(net, "client_requests") - requests_before
    assert requests == 2 * n_keys + 32 * 5
    # grouped answers (SPEC 14.3): one ClientReply per connection and leaf, not one per request
    assert _counter(net, "client_replies") - replies_before < requests / 2
    code, body = net.admin("c0-n0", "/metrics")
    assert code == 200 and b"heraclius_client_bundles_total{" in body


def _bundle(c: Client, items) -> pb.RequestBundle:
    b = pb.RequestBundle(client_key=c.key.public, cluster_id="c0", items=[
        pb.BundleItem(request_id=rid, op=pb.Operation(kind=kind, key=k, value=v)) for rid, kind, k, v in items])
    sign_message(c.key, "client-bundle", c.m.network_id, b)
    return b


async def _send(c: Client, nid: str, b: pb.RequestBundle) -> dict[int, pb.ClientReply]:
    """Send b on the client's link to nid; the reply for each item."""
    node = next(n for n in c.members if n.id == nid)
    conn = await c._conn(node, 10)
    loop = asyncio.get_running_loop()
    futs = {i.request_id: loop.create_future() for i in b.items}
    conn.waiting.update(futs)
    await conn.link.send(pb.ClientMessage(submit_bundle=b))
    done = await asyncio.wait_for(asyncio.gather(*futs.values()), 20)
    for rid in futs:
        conn.waiting.pop(rid, None)
    return dict(zip(futs, done, strict=True))


async def _send_raw(c: Client, nid: str, b: pb.RequestBundle, rid: int) -> pb.ClientReply:
    """Send b to nid and return the reply naming rid."""
    node = next(n for n in c.members if n.id == nid)
    conn = await c._conn(node, 10)
    fut = conn.waiting[rid] = asyncio.get_running_loop().create_future()
    await conn.link.send(pb.ClientMessage(submit_bundle=b))
    try:
        return await asyncio.wait_for(fut, 20)
    finally:
        conn.waiting.pop(rid, None)


def test_bundle_errors_per_item_and_exactly_once(net):
    async def run():
        async with _client(net) as c:
            base = c.next_id + 1000
            c.next_id = base + 100
            tampered = _bundle(c, [(base, PUT, b"t", b"1"), (base + 1, GET, b"t", b"")])
            tampered.items[0].op.value = b"2"
            bad = await _send(c, "c0-n1", tampered)
            empty = await _send_raw(c, "c0-n1", _bundle(c, []), 0)
            good = _bundle(c, [(base + 2, PUT, b"once", b"A"), (base + 3, PUT, b"once", b"B"),
                               (base + 4, GET, b"once", b"")])
            first = await _send(c, "c0-n2", good)
            again = await _send(c, "c0-n3", good)  # the retry of the same signed bundle elsewhere
            stale = await _send(c, "c0-n0", _bundle(c, [(5, GET, b"once", b""), (base + 5, GET, b"once", b"")]))
            return c, bad, first, again, stale, base, empty

    c, bad, first, again, stale, base, empty = asyncio.run(run())
    assert empty.error.code == pb.CLIENT_ERROR_MALFORMED
    assert sorted(bad) == [base, base + 1]
    for rid, reply in bad.items():
        assert reply.error.code == pb.CLIENT_ERROR_BAD_SIGNATURE and reply.error.request_id == rid
    for answers in (first, again):
        got = {rid: c._validate(reply, pb.ClientRequest(request_id=rid, op=pb.Operation(kind=k)))
               for (rid, reply), k in zip(sorted(answers.items()), (PUT, PUT, GET), strict=True)}
        assert not got[base + 2].found and got[base + 3].found and got[base + 4].value == b"B"
    assert {r.answer.header.height for r in first.values()} == {r.answer.header.height for r in again.values()}
    assert stale[5].error.code == pb.CLIENT_ERROR_STALE and stale[5].error.request_id == 5
    assert stale[base + 5].HasField("answer")
    assert net.op("get", "once")["value"] == "B"
