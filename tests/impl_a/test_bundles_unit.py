"""Request bundles (SPEC 14.6) without processes: validation verdicts, execution, the leader's batching
(deferring a bundle that shares an id), pool accounting, censorship, and the client's acceptance of
grouped answers (SPEC 14.4)."""

import asyncio

import pytest

from impl_a import heraclius_pb2 as pb
from impl_a.client import Client
from impl_a.crypto import SigningKey
from impl_a.devnet import read_key
from impl_a.errors import RemoteViolation
from impl_a.faults import Faults
from impl_a.rsm import Execution
from impl_a.verify import check_bundle, check_client_request, client_destination, sign_message

from .simnet import SimNet

NET2 = (("c0", "coordinator"), ("s0", "shard"))
C0 = ("c0-n0", "c0-n1", "c0-n2", "c0-n3")
GET, PUT = pb.OP_KIND_GET, pb.OP_KIND_PUT


def _bundle(key: SigningKey, network_id: str, items, cluster: str = "c0", domain: str = "client-bundle"):
    """items: [(request_id, kind, key, value)]; signed in `domain`."""
    b = pb.RequestBundle(client_key=key.public, cluster_id=cluster, items=[
        pb.BundleItem(request_id=rid, op=pb.Operation(kind=kind, key=k, value=v)) for rid, kind, k, v in items])
    sign_message(key, domain, network_id, b)
    return b


@pytest.fixture
def net(tmp_path):
    return SimNet(tmp_path, clusters=NET2, seed=41, clients=2)


def _reason(net, b, cluster="c0"):
    try:
        check_bundle(net.m, b, cluster)
    except RemoteViolation as exc:
        return exc.reason
    return None


def test_bundle_validation_verdicts(net):
    key, nid = net.client_key, net.m.network_id
    ok = [(1, GET, b"a", b""), (2, PUT, b"b", b"v")]
    assert _reason(net, _bundle(key, nid, ok)) is None
    assert _reason(net, _bundle(key, nid, ok, cluster="c9")) == "wrong_cluster"
    assert _reason(net, _bundle(key, nid, [])) == "malformed"
    assert _reason(net, _bundle(key, nid, [(i, GET, b"k", b"") for i in range(1, 258)])) == "oversized"
    assert _reason(net, _bundle(key, nid, [(i, GET, b"k", b"") for i in range(1, 257)])) is None
    assert _reason(net, _bundle(key, nid, [(0, GET, b"a", b"")])) == "malformed"
    assert _reason(net, _bundle(key, nid, [(5, GET, b"a", b""), (4, GET, b"b", b"")])) == "malformed"
    assert _reason(net, _bundle(key, nid, [(5, GET, b"a", b""), (5, GET, b"b", b"")])) == "malformed"
    assert _reason(net, _bundle(key, nid, [(1, GET, b"a", b"x")])) == "malformed"  # GET with a value
    assert _reason(net, _bundle(key, nid, [(1, GET, b"", b"")])) == "malformed"  # empty key
    assert _reason(net, _bundle(key, nid, [(1, 7, b"a", b"")])) == "malformed"  # no such kind
    big = b"x" * (net.m.limits["max_value_bytes"] + 1)
    assert _reason(net, _bundle(key, nid, [(1, PUT, b"a", big)])) == "malformed"  # an invalid operation
    many = [(i, PUT, b"k%d" % i, b"x" * 2000) for i in range(1, 140)]  # > 262144 bytes encoded
    assert _reason(net, _bundle(key, nid, many)) == "oversized"
    no_op = _bundle(key, nid, ok)
    no_op.items[0].ClearField("op")
    sign_message(key, "client-bundle", nid, no_op)
    assert _reason(net, no_op) == "malformed"
    assert _reason(net, _bundle(key, nid, ok, domain="client-request")) == "bad_signature"
    flipped = _bundle(key, nid, ok)
    flipped.items[1].op.value = b"w"  # changed after signing
    assert _reason(net, flipped) == "bad_signature"
    stranger = SigningKey(bytes(range(32)))
    assert _reason(net, _bundle(stranger, nid, ok)) == "unauthorised_client"
    short = _bundle(key, nid, ok)
    short.client_key = key.public[:31]
    assert _reason(net, short) == "malformed"


@pytest.mark.parametrize("length", [0, 63, 65])
def test_signature_not_64_bytes_is_bad_signature(net, length):
    """SPEC 14.3/14.6 (from impl-a A5): the signature row, for a bundle as for a request."""
    key, nid = net.client_key, net.m.network_id
    b = _bundle(key, nid, [(1, GET, b"a", b"")])
    b.signature = b.signature[:length] if length < 64 else b.signature + b"x"
    assert _reason(net, b) == "bad_signature"
    req = net.request(GET, b"a")
    req.signature = req.signature[:length] if length < 64 else req.signature + b"x"
    with pytest.raises(RemoteViolation) as exc:
        check_client_request(net.m, req, "c0")
    assert exc.value.reason == "bad_signature"


def test_execution_counts_items_as_requests(net):
    key, nid, r = net.client_key, net.m.network_id, net.nodes["c0-n0"].replica
    b = _bundle(key, nid, [(3, PUT, b"a", b"1"), (4, GET, b"b", b"")])
    req = net.request(PUT, b"c", b"2", request_id=4)
    ex = Execution(r.state, 1)
    with pytest.raises(RemoteViolation) as exc:
        ex.run(pb.Batch(inputs=[pb.Input(bundle=b), pb.Input(client=req)]))
    assert exc.value.reason == "duplicate"
    ex = Execution(r.state, 1)
    other = _bundle(key, nid, [(4, GET, b"z", b""), (9, GET, b"y", b"")])
    with pytest.raises(RemoteViolation):
        ex.run(pb.Batch(inputs=[pb.Input(bundle=b), pb.Input(bundle=other)]))
    ex = Execution(r.state, 1)
    leaves = ex.run(pb.Batch(inputs=[pb.Input(bundle=b)]))
    calls = [c for leaf in leaves for c in leaf.calls]
    assert [(c.request_id, c.op.kind, c.op.key) for c in calls] == [(3, PUT, b"a"), (4, GET, b"b")]


def test_bundle_and_request_decided_answered_and_deduplicated(net):
    key, nid = net.client_key, net.m.network_id
    b = _bundle(key, nid, [(10, PUT, b"x", b"10"), (11, PUT, b"y", b"11"), (12, GET, b"x", b"")])
    leader = net.nodes["c0-n0"].replica
    assert leader.is_leader()
    net.nodes["c0-n2"].replica.on_client_bundle(b)  # at a follower: forwarded in Forward.bundles
    net._drain(net.nodes["c0-n2"])
    net.run(800)
    for rid in (10, 11, 12):
        h = {net.nodes[n].replica.client_index.get((key.public, rid)) for n in C0}
        assert len(h) == 1 and None not in h
    item = pb.ClientRequest(client_key=key.public, request_id=12, cluster_id="c0",
                            op=pb.Operation(kind=GET, key=b"x"))
    resp = net.answer(item, "c0-n3")  # a bundle item is fetched like a request
    assert resp.found and resp.value == b"10" and resp.kind == GET
    one_leaf = {net.nodes["c0-n1"].replica.client_index[(key.public, rid)] for rid in (10, 11, 12)}
    assert len(one_leaf) == 1  # every item's response in one leaf of one decision
    # The same signed bundle again (a retry at another member), plus a new bundle repeating id 11.
    again = _bundle(key, nid, [(11, PUT, b"y", b"other"), (13, GET, b"y", b"")])
    net.submit(net.request(GET, b"q", request_id=14), "c0-n1")
    net.nodes["c0-n3"].replica.on_client_requests([b, again])
    net._drain(net.nodes["c0-n3"])
    net.run(800)
    calls = [(c.request_id, c.op.value) for d in net.nodes["c0-n0"].decided for leaf in d.outputs
             for c in leaf.calls]
    assert sorted(r for r, _ in calls) == [10, 11, 12, 13, 14]  # each id executed once
    assert net.answer(pb.ClientRequest(client_key=key.public, request_id=13, cluster_id="c0",
                                       op=pb.Operation(kind=GET, key=b"y")), "c0-n0").value == b"11"
    for n in C0:
        r = net.nodes[n].replica
        assert not r.req_pool and r.pool_items == 0
        assert not [x for x in net.nodes[n].rejects if x[0] != "stale"], net.nodes[n].rejects
    logs = [net.log_bytes(n) for n in C0]
    assert all(lg == logs[0] for lg in logs)


def test_leader_defers_a_bundle_sharing_an_id_with_an_earlier_input(net):
    key, nid = net.client_key, net.m.network_id
    leader = net.nodes["c0-n0"]
    req = net.request(PUT, b"d", b"req", request_id=20)
    b = _bundle(key, nid, [(20, PUT, b"d", b"bundle"), (21, PUT, b"e", b"21")])
    leader.replica.on_client_requests([req, b])  # same instant: one batch_wait, one batch
    net._drain(leader)
    net.run(800)
    batches = [[i.WhichOneof("kind") for i in d.batch.inputs] for d in leader.decided]
    assert batches[:2] == [["client"], ["bundle"]]  # the bundle waited for the next batch
    calls = [(c.request_id, c.op.value) for d in leader.decided for leaf in d.outputs for c in leaf.calls]
    assert calls == [(20, b"req"), (21, b"21")]  # its item 20 was skipped as already accepted
    for n in C0:
        assert not net.nodes[n].evidence and not [x for x in net.nodes[n].rejects if x[0] != "stale"]
    # A bundle whose items are all decided is dropped from the pool without being proposed.
    leader.replica.on_client_bundle(b)
    assert not leader.replica.req_pool and leader.replica.pool_items == 0


def test_pool_counts_bundle_items(net):
    key, nid = net.client_key, net.m.network_id
    r = net.nodes["c0-n1"].replica
    r.lim = dict(r.lim, max_pending_requests=3)
    assert not r.on_client_bundle(_bundle(key, nid, [(i, GET, b"k", b"") for i in (1, 2, 3, 4)]))
    assert r.pool_items == 0
    b = _bundle(key, nid, [(i, GET, b"k", b"") for i in (5, 6)])
    assert r.on_client_bundle(b) and r.pool_items == 2 and len(r.req_pool) == 1
    assert not r.on_client_bundle(b)  # already pooled
    assert r.on_client_request(net.request(GET, b"k", request_id=7)) and r.pool_items == 3
    assert not r.on_client_request(net.request(GET, b"k", request_id=8))
    assert sum(1 for x in r.actions if x[:2] == ("reject", "overloaded")) == 2


def test_censoring_leader_is_replaced_for_bundles(tmp_path):
    hooks = Faults([{"action": "censor_client", "clients": ["client0"]}]).consensus_hooks()
    net = SimNet(tmp_path, clusters=NET2, seed=43, faults={"c0-n0": hooks})
    b = _bundle(net.client_key, net.m.network_id, [(30, PUT, b"c", b"30"), (31, GET, b"c", b"")])
    for n in ("c0-n1", "c0-n2", "c0-n3"):
        net.nodes[n].replica.on_client_bundle(b)
        net._drain(net.nodes[n])
    net.run(600)  # below the censorship timeout: the leader keeps it pooled
    assert all((net.client_key.public, 30) not in net.nodes[n].replica.client_index for n in C0)
    net.run(3000)
    assert all(net.nodes[n].replica.view >= 1 for n in C0)
    got = net.answer(pb.ClientRequest(client_key=net.client_key.public, request_id=31, cluster_id="c0",
                                      op=pb.Operation(kind=GET, key=b"c")), "c0-n2")
    assert got is not None and got.value == b"30"


class _FakeConn:
    def __init__(self):
        self.waiting = {}


def test_client_accepts_grouped_answers(net, tmp_path):
    key, nid = net.client_key, net.m.network_id
    b = _bundle(key, nid, [(50, PUT, b"g", b"1"), (51, GET, b"h", b""), (52, GET, b"g", b"")])
    net.nodes["c0-n0"].replica.on_client_bundle(b)
    net._drain(net.nodes["c0-n0"])
    net.run(800)
    h = net.nodes["c0-n1"].replica.client_index[(key.public, 50)]
    cd = net.nodes["c0-n1"].server.compact(h, client_destination(key.public))
    good = pb.ClientReply(answer=cd)
    bad = pb.ClientReply()
    bad.CopyFrom(good)
    bad.answer.leaf.responses[0].found = True  # breaks the inclusion proof

    async def run():
        c = Client(net.m, read_key(tmp_path / "clients" / "client0.key"))
        loop = asyncio.get_running_loop()
        here, there = _FakeConn(), _FakeConn()
        c.conns = {"c0-n1": here, "c0-n2": there}
        for conn, rid in ((here, 50), (there, 51), (there, 99)):
            conn.waiting[rid] = loop.create_future()
        c.on_answer(here, bad)  # invalid: reaches only the request waiting on its connection
        assert here.waiting[50].result() is bad and not there.waiting[51].done()
        here.waiting[50] = loop.create_future()
        c.on_answer(here, good)  # valid: answers every outstanding request in the leaf
        assert here.waiting[50].result() is good and there.waiting[51].result() is good
        assert not there.waiting[99].done()
        req = pb.ClientRequest(request_id=51, op=pb.Operation(kind=GET, key=b"h"))
        resp = c._validate(good, req)
        assert resp.request_id == 51 and not resp.found
        with pytest.raises(RemoteViolation):  # same id, other kind: not an answer to this request
            c._validate(good, pb.ClientRequest(request_id=51, op=pb.Operation(kind=PUT, key=b"h")))

    asyncio.run(run())


def test_client_groups_ready_requests_into_bundles(net, tmp_path):
    async def run():
        c = Client(net.m, read_key(tmp_path / "clients" / "client0.key"))
        c.bundling = True
        reqs = [c.new_request(GET, b"k%d" % i, sign=False) for i in range(300)]
        first = c.take_bundle(reqs)
        assert len(first) == 256 and len(reqs) == 44
        msg = c.message_for(list(reversed(first)))
        ids = [i.request_id for i in msg.submit_bundle.items]
        assert ids == sorted(ids) and len(ids) == 256
        check_bundle(net.m, msg.submit_bundle, "c0")  # a node accepts it
        single = c.message_for(c.take_bundle(reqs[:1]))
        assert single.WhichOneof("body") == "submit" and single.submit.signature
        c._bundle_room = 3000
        big = [c.new_request(PUT, b"k", b"v" * 1000, sign=False) for _ in range(5)]
        assert len(c.take_bundle(big)) == 2 and len(big) == 3
        turn = {c._first_member() for _ in range(20)}
        assert len(turn) == 1  # one member per event-loop turn

    asyncio.run(run())


def test_forward_splits_to_fit_a_message(net):
    key, nid = net.client_key, net.m.network_id
    r = net.nodes["c0-n1"].replica
    r.lim = dict(r.lim, max_message_bytes=40000)
    bundles = [_bundle(key, nid, [(100 * j + i, PUT, b"k", b"v" * 1000) for i in range(1, 11)]) for j in range(1, 9)]
    r.actions.clear()
    r._forward(bundles + [net.request(GET, b"k", request_id=5)])
    sent = [a[2].forward for a in r.actions if a[0] == "send"]
    assert len(sent) > 1 and all(f.ByteSize() <= 40000 for f in sent)
    assert [b.items[0].request_id for f in sent for b in f.bundles] == [100 * j + 1 for j in range(1, 9)]
    assert [q.request_id for f in sent for q in f.requests] == [5]
