"""Request bundles (SPEC 14.6) in impl_b: validity verdicts, execution, the leader's batching,
the client port (errors per item, counters, pool accounting) and a simulated cluster run."""

import contextlib
import os

import pytest

from impl_b import codec, devnet
from impl_b.actions import Send
from impl_b.admin import metrics_text
from impl_b.checks import Checker, body_bytes, message_sig_ok, sign_message
from impl_b.codec import decode, encode
from impl_b.consensus import Replica
from impl_b.crypto import Signer
from impl_b.logs import NodeLog
from impl_b.manifest import validate
from impl_b.rsm import ClientIds, InvalidBatch, State, execute
from impl_b.runtime import Runtime
from impl_b.schema import OP_GET, OP_PUT

from .iostub import LinkControlStub
from .sim import Sim

DOC, SECRETS = devnet.build({"c0": "coordinator", "s0": "shard"}, ports=False, clients=("alice", "bob"))
M = validate(DOC)
ALICE = Signer(SECRETS["alice"]["ed25519"])
STRANGER = Signer(b"\x42" * 32)


def _bundle(ids, signer=ALICE, cluster="c0", ops=None, sign=True):
    ops = ops or [codec.Operation(kind=OP_PUT, key=b"k%d" % i, value=b"v%d" % i) for i in ids]
    b = codec.RequestBundle(client_key=signer.public, cluster_id=cluster,
                            items=[codec.BundleItem(request_id=i, op=op) for i, op in zip(ids, ops, strict=True)])
    if sign:
        sign_message(signer, M.network_id, b)
    return b


def _request(rid, key=b"k", kind=OP_GET, value=b""):
    r = codec.ClientRequest(client_key=ALICE.public, request_id=rid, cluster_id="c0",
                            op=codec.Operation(kind=kind, key=key, value=value))
    sign_message(ALICE, M.network_id, r)
    return r


def test_bundle_round_trips_and_signs_in_its_own_domain():
    b = _bundle([3, 4, 9])
    raw = encode(codec.ClientMessage(submit_bundle=b))
    back = decode("ClientMessage", raw).submit_bundle
    assert encode(back) == encode(b) and [it.request_id for it in back.items] == [3, 4, 9]
    assert body_bytes(back) == encode(back.copy(signature=b""))
    assert message_sig_ok(ALICE.public, M.network_id, back)
    # The same body signed as a ClientRequest signature is not a bundle signature (domains differ).
    from impl_b.crypto import signing_bytes

    forged = back.copy(signature=ALICE.sign(signing_bytes("client-request", M.network_id, body_bytes(back))))
    assert not message_sig_ok(ALICE.public, M.network_id, forged)
    assert Checker(M).bundle_reason(back, "c0") is None


def _resign(b):
    b.signature = b""
    sign_message(ALICE, M.network_id, b)
    return b


def _big_values(n):
    return [codec.Operation(kind=OP_PUT, key=b"k%d" % i, value=b"x" * 60000) for i in range(n)]


CASES = {
    # SPEC 14.3 order: a key of the wrong length is not an authorised key; a signature of the wrong
    # length does not verify.
    "short_key": (lambda: _bundle([1]).copy(client_key=b"\x01" * 31), "unauthorised_client"),
    "short_signature": (lambda: _bundle([1]).copy(signature=b"\x01" * 63), "bad_signature"),
    "wrong_cluster": (lambda: _bundle([1], cluster="s0"), "wrong_cluster"),
    "unauthorised": (lambda: _bundle([1], signer=STRANGER), "unauthorised_client"),
    "no_items": (lambda: _bundle([]), "malformed"),
    "257_items": (lambda: _bundle(list(range(1, 258))), "oversized"),
    "too_many_bytes": (lambda: _bundle([1, 2, 3, 4, 5], ops=_big_values(5)), "oversized"),
    "id_zero": (lambda: _bundle([0, 1]), "malformed"),
    "ids_repeated": (lambda: _bundle([2, 2]), "malformed"),
    "ids_decreasing": (lambda: _bundle([3, 2]), "malformed"),
    "get_with_value": (lambda: _bundle([1], ops=[codec.Operation(kind=OP_GET, key=b"k", value=b"v")]), "malformed"),
    "empty_key": (lambda: _bundle([1], ops=[codec.Operation(kind=OP_GET, key=b"")]), "malformed"),
    "no_op": (lambda: _resign(_bundle([1]).copy(items=[codec.BundleItem(request_id=1)])), "malformed"),
    "value_too_long": (lambda: _bundle([1], ops=[codec.Operation(kind=OP_PUT, key=b"k", value=b"x" * 65537)]),
                       "malformed"),
    "bad_signature": (lambda: _bundle([1, 2]).copy(signature=b"\x00" * 64), "bad_signature"),
    "item_changed_after_signing": (lambda: _bundle([1, 2]).copy(items=_bundle([1, 3]).items), "bad_signature"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bundle_validation_verdicts(case):
    make, want = CASES[case]
    assert Checker(M).bundle_reason(make(), "c0") == want


def test_execution_runs_items_as_requests_and_refuses_shared_ids():
    st = State("c0", "coordinator")
    chk = Checker(M)
    b = _bundle([5, 6])
    ex = execute(st, M, codec.Batch(inputs=[codec.Input(bundle=b)]), 1, b"\x00" * 32, chk)
    calls = [(c.request_id, c.op.key) for leaf in ex.outputs for c in leaf.calls]
    assert sorted(calls) == [(5, b"k5"), (6, b"k6")]
    ex.apply()
    # An item already accepted is skipped, the others run (SPEC 11).
    ex = execute(st, M, codec.Batch(inputs=[codec.Input(bundle=_bundle([6, 7]))]), 2, b"\x00" * 32, chk)
    assert [c.request_id for leaf in ex.outputs for c in leaf.calls] == [7]
    for inputs in ([codec.Input(client=_request(8)), codec.Input(bundle=_bundle([8, 9]))],
                   [codec.Input(bundle=_bundle([10, 11])), codec.Input(bundle=_bundle([11, 12]))]):
        with pytest.raises(InvalidBatch) as e:
            execute(st, M, codec.Batch(inputs=inputs), 2, b"\x00" * 32, chk)
        assert e.value.reason == "duplicate"
    with pytest.raises(InvalidBatch):
        execute(State("s0", "shard"), M, codec.Batch(inputs=[codec.Input(bundle=b)]), 1, b"\x00" * 32, chk)


def _leader():
    return Replica(M, "c0-n0", Signer(SECRETS["c0-n0"]["ed25519"]), Checker(M), now=0)


def _proposed(acts):
    props = [a.msg.proposal for a in acts if isinstance(a, Send) and a.msg.proposal is not None]
    assert props
    return [(i.which(), [it.request_id for it in i.bundle.items] if i.bundle else i.client.request_id)
            for i in props[0].batch.inputs]


def test_leader_defers_a_bundle_sharing_an_id_with_an_earlier_input():
    r = _leader()
    r.on_request(_request(2), 0)
    r.on_bundle(_bundle([2, 3]), 0)
    r.on_bundle(_bundle([4, 5]), 0)
    assert r.pool_items == 5 and len(r.requests) == 3
    assert _proposed(r.on_tick(2)) == [("client", 2), ("bundle", [4, 5])]
    assert r.pool_items == 5  # nothing leaves the pool before it is decided


def test_leader_skips_and_drops_a_bundle_whose_items_are_all_decided():
    r = _leader()
    st = r.state
    ex = execute(st, M, codec.Batch(inputs=[codec.Input(bundle=_bundle([1, 2]))]), 1, b"\x00" * 32)
    ex.apply()
    r.on_bundle(_bundle([1, 2]), 0)  # already decided: never enters the pool
    assert r.pool_items == 0
    r.requests[("bundle", b"x")] = [_bundle([2, 1], sign=False), 0, 0, False, None]  # decided too, however it got in
    r.pool_items = 2
    r.on_bundle(_bundle([2, 3]), 0)  # partly decided: proposed, item 2 is skipped at execution
    assert _proposed(r.on_tick(2)) == [("bundle", [2, 3])]
    assert r.pool_items == 2 and ("bundle", b"x") not in r.requests


def test_pool_counts_bundle_items_towards_max_pending():
    r = _leader()
    r.lim = dict(r.lim, max_pending_requests=4)
    r.on_bundle(_bundle([1, 2, 3]), 0)
    assert r.pool_full(2) and not r.pool_full(1)
    r.on_bundle(_bundle([4, 5]), 0)
    assert r.pool_items == 3 and len(r.requests) == 1


class _IO(LinkControlStub):
    def __init__(self):
        self.conn: list = []
        self.node: list = []
        self.dial_nodes: list = []

    def send_conn(self, link, data):
        self.conn.append((link, decode("ClientReply", data)))

    def send_node(self, node, data):
        self.node.append((node, decode("PeerMessage", data)))

    def connected(self, node):
        return True


def _runtime(node="c0-n1"):
    rt = Runtime(M, node, Signer(SECRETS[node]["ed25519"]), None, NodeLog(node, os.devnull, "error"))
    rt.io = _IO()
    return rt


def _submit(rt, b, link=7):
    with rt.lock:
        rt._handle(("client", link, codec.ClientMessage(submit_bundle=b)))
        if rt.replica.forward_buf:
            rt._execute(rt.replica.flush_forwards())


def test_client_port_accepts_a_bundle_as_one_pool_entry_and_forwards_it():
    rt = _runtime()
    b = _bundle([11, 12, 13])
    _submit(rt, b)
    assert rt.counters["client_bundles"] == 1 and rt.counters["client_requests"] == 3
    assert rt.replica.pool_items == 3 and rt.io.conn == []
    fwd = [pm.forward for to, pm in rt.io.node if pm.forward is not None]
    assert [(f.requests, [encode(x) for x in f.bundles]) for f in fwd] == [([], [encode(b)])]
    assert sorted(k[1] for k in rt.waiters) == [11, 12, 13]
    text = metrics_text(rt)
    assert 'heraclius_client_bundles_total{node="c0-n1",cluster="c0"} 1' in text
    assert 'heraclius_client_requests_total{node="c0-n1",cluster="c0"} 3' in text
    assert 'heraclius_pending_requests{node="c0-n1",cluster="c0"} 3' in text


def test_client_port_answers_one_error_per_item_of_an_invalid_bundle():
    rt = _runtime()
    _submit(rt, _bundle([21, 22]).copy(signature=b"\x00" * 64))
    errs = [(r.error.code, r.error.request_id) for _l, r in rt.io.conn]
    assert errs == [(2, 21), (2, 22)]
    assert rt.counters["client_bundles"] == 0 and rt.log.rejected == {"bad_signature": 1}
    assert rt.replica.pool_items == 0


def test_client_port_answers_overloaded_and_stale_per_item():
    rt = _runtime()
    rt.replica.lim = dict(rt.replica.lim, max_pending_requests=2)
    _submit(rt, _bundle([31, 32, 33]))
    assert [(r.error.code, r.error.request_id) for _l, r in rt.io.conn] == [(7, 31), (7, 32), (7, 33)]
    rt.io.conn.clear()
    ids = rt.replica.state.dedup.setdefault(ALICE.public, ClientIds())
    ids.max_id = 200000  # the floor is now 200000 - 65536
    _submit(rt, _bundle([5, 6]))
    assert [(r.error.code, r.error.request_id) for _l, r in rt.io.conn] == [(6, 5), (6, 6)]


def test_simulated_cluster_orders_and_answers_bundles():
    sim = Sim(seed=41)
    puts = sim.bundle([(OP_PUT, b"a", b"1"), (OP_PUT, b"b", b"2"), (OP_PUT, b"c", b"3")])
    single = sim.put(b"d", b"4", to="c0-n2")
    assert sim.run_until(lambda: all(r in sim.answers for r in [*puts, single]), 5000)
    gets = sim.bundle([(OP_GET, k, b"") for k in (b"a", b"b", b"c", b"d", b"zz")], to="c0-n3")
    assert sim.run_until(lambda: all(r in sim.answers for r in gets), 5000)
    got = [(sim.answers[r].found, sim.answers[r].value) for r in gets]
    assert got == [(True, b"1"), (True, b"2"), (True, b"3"), (True, b"4"), (False, b"")]
    assert sim.logs_agree("c0") and sim.logs_agree("s0")
    assert all(not sim.replicas[n].requests and sim.replicas[n].pool_items == 0 for n in sim.m.clusters["c0"].members)


def test_decision_answers_each_connection_once_per_leaf():
    rt = _runtime("c0-n0")
    dest = "client:" + ALICE.public.hex()
    leaf = codec.OutputLeaf(source_cluster="c0", height=1, destination=dest, seq=1, responses=[
        codec.ClientResponse(request_id=rid, kind=OP_GET, shard_id="s0", shard_height=1) for rid in (1, 2, 3)])
    hdr = codec.DecisionHeader(cluster_id="c0", height=1, parent_hash=b"\x00" * 32, inputs_hash=b"\x01" * 32,
                               outputs_root=b"\x02" * 32)
    dec = codec.Decision(header=hdr, batch=codec.Batch(), outputs=[leaf])
    for rid, link in ((1, 7), (2, 7), (3, 8), (3, 7)):
        rt.waiters.setdefault((ALICE.public, rid), []).append((link, 10**9))
    rt._on_decided(dec)
    sent = sorted((link, [r.request_id for r in reply.answer.leaf.responses]) for link, reply in rt.io.conn)
    assert sent == [(7, [1, 2, 3]), (8, [1, 2, 3])]  # one grouped answer per connection
    assert rt.counters["client_replies"] == 2 and not rt.waiters
    # A repeat of an answered request is answered on its own.
    with rt.lock:
        rt._handle(("client", 9, codec.ClientMessage(submit=_request(2))))
    assert [link for link, _r in rt.io.conn] == [7, 8, 9]


def test_bundler_groups_ready_requests_by_ascending_id_within_the_limits():
    from impl_b.bundler import Bundler, _Slot

    bl = Bundler(M, ALICE, "c0", Checker(M))
    reqs = [codec.ClientRequest(client_key=ALICE.public, request_id=rid, cluster_id="c0",
                                op=codec.Operation(kind=OP_GET, key=b"k%d" % rid)) for rid in range(1000, 400, -1)]
    retry = _request(5)
    msgs = bl.messages([_Slot(r, False) for r in reqs] + [_Slot(retry, True)])
    kinds = [m.which() for m in msgs]
    assert kinds == ["submit", "submit_bundle", "submit_bundle", "submit_bundle"]
    assert encode(msgs[0].submit) == encode(retry)  # a retried request goes alone, as signed
    sizes = [len(m.submit_bundle.items) for m in msgs[1:]]
    assert sizes == [256, 256, 88]
    ids = [it.request_id for m in msgs[1:] for it in m.submit_bundle.items]
    assert ids == list(range(401, 1001))
    chk = Checker(M)
    assert all(chk.bundle_reason(m.submit_bundle, "c0") is None for m in msgs[1:])
    assert bl.sent == {"requests": 1, "bundles": 3, "bundled_items": 600}
    # A single ready request goes as a plain ClientRequest, signed at send time.
    one = bl.messages([_Slot(reqs[0], False)])
    assert [m.which() for m in one] == ["submit"] and chk.request_reason(one[0].submit, "c0") is None
    # Large operations are cut by bytes before 256 items.
    big = [codec.ClientRequest(client_key=ALICE.public, request_id=rid, cluster_id="c0",
                               op=codec.Operation(kind=OP_PUT, key=b"k", value=b"x" * 60000)) for rid in range(1, 9)]
    cut = bl.messages([_Slot(r, False) for r in big])
    assert all(len(encode(m.submit_bundle)) <= 262144 for m in cut) and len(cut) == 2
    assert sum(len(m.submit_bundle.items) for m in cut) == 8


def test_bundle_signature_is_verified_once_per_node(monkeypatch):
    import impl_b.checks as checks

    calls = []
    real = checks.verify
    monkeypatch.setattr(checks, "verify", lambda *a: calls.append(1) or real(*a))
    chk = Checker(M)
    b = _bundle([1, 2, 3])
    assert chk.bundle_reason(b, "c0") is None
    again = decode("RequestBundle", encode(b))  # e.g. the same bundle inside a proposal
    assert chk.bundle_reason(again, "c0") is None
    assert len(calls) == 1


def test_fetch_names_one_bundle_item_and_gets_its_answer():
    rt = _runtime("c0-n0")
    dest = "client:" + ALICE.public.hex()
    leaf = codec.OutputLeaf(source_cluster="c0", height=1, destination=dest, seq=1, responses=[
        codec.ClientResponse(request_id=rid, kind=OP_GET, shard_id="s0", shard_height=1) for rid in (41, 42)])
    hdr = codec.DecisionHeader(cluster_id="c0", height=1, parent_hash=b"\x00" * 32, inputs_hash=b"\x01" * 32,
                               outputs_root=b"\x02" * 32)
    rt._on_decided(codec.Decision(header=hdr, batch=codec.Batch(inputs=[codec.Input(bundle=_bundle([41, 42]))]),
                                  outputs=[leaf]))
    with rt.lock:
        rt._handle(("client", 5, codec.ClientMessage(fetch=_request(42))))
    assert [(link, [r.request_id for r in rep.answer.leaf.responses]) for link, rep in rt.io.conn] == [(5, [41, 42])]
    assert rt.replica.pool_items == 0 and rt.counters["client_requests"] == 0  # fetch adds nothing


def test_censoring_leader_never_proposes_bundles_and_is_replaced():
    from impl_b.faults import FaultPlan

    sim = Sim(seed=43)
    first = sim.put(b"c", b"0")
    assert sim.run_until(lambda: first in sim.answers, 5000)
    plan = FaultPlan([{"action": "censor_client", "clients": ["alice"]}])
    sim.replicas["c0-n0"].censored = plan.censored_keys(sim.m)
    ids = sim.bundle([(OP_PUT, b"c", b"1"), (OP_PUT, b"d", b"2")], to=["c0-n0", "c0-n1", "c0-n2", "c0-n3"])
    assert not sim.run_until(lambda: any(r in sim.answers for r in ids), 700)
    assert sim.replicas["c0-n0"].pool_items == 2  # kept pooled, never proposed
    assert sim.run_until(lambda: all(r in sim.answers for r in ids), 5000)
    assert all(sim.replicas[n].view >= 1 for n in ("c0-n1", "c0-n2", "c0-n3"))
    assert sim.logs_agree("c0")


class _FakeConn:
    """Stands in for a client Connection: records what the bundler's sender writes."""

    def __init__(self):
        self.sent: list = []
        outer = self

        class _Sess:
            out = bytearray()

            def send(self, msgs):
                outer.sent.append([decode("ClientMessage", m) for m in msgs])

        class _Sock:
            def sendall(self, data):
                pass

            def shutdown(self, how):
                pass

        self.sess, self.sock = _Sess(), _Sock()

    def close(self):
        pass


def test_bundler_waits_for_the_users_one_answer_woke_and_sends_them_together():
    import threading
    import time

    from impl_b.bundler import Bundler

    bl = Bundler(M, ALICE, "c0", Checker(M))
    pipe = bl.pipe("c0-n0")
    conn = pipe.conn = _FakeConn()
    sender = threading.Thread(target=pipe._send_loop, args=(conn,), daemon=True)
    sender.start()
    try:
        def user(rid):
            req = codec.ClientRequest(client_key=ALICE.public, request_id=rid, cluster_id="c0",
                                      op=codec.Operation(kind=OP_GET, key=b"k"))
            with contextlib.suppress(TimeoutError):
                pipe.submit(req, False, 0.5)

        # One grouped answer woke three users: the sender waits until all three handed in a request,
        # even though they come 50 ms apart.
        with pipe.lock:
            pipe.expect, pipe.expect_until = 3, time.monotonic() + 2.0
        users = []
        for rid in (7, 8, 9):
            users.append(threading.Thread(target=user, args=(rid,)))
            users[-1].start()
            time.sleep(0.05)
        for t in users:
            t.join(5)
        assert [[m.which() for m in batch] for batch in conn.sent] == [["submit_bundle"]]
        assert [it.request_id for it in conn.sent[0][0].submit_bundle.items] == [7, 8, 9]
        # Without a pending answer, requests 50 ms apart go out one by one, as plain requests.
        users = []
        for rid in (10, 11):
            users.append(threading.Thread(target=user, args=(rid,)))
            users[-1].start()
            time.sleep(0.05)
        for t in users:
            t.join(5)
        assert [[m.which() for m in batch] for batch in conn.sent[1:]] == [["submit"], ["submit"]]
    finally:
        pipe._broken(conn, ConnectionError("test over"))
        sender.join(5)
    assert not sender.is_alive()


def test_valid_grouped_answer_completes_requests_on_every_pipe_an_invalid_one_only_its_own():
    from impl_b.bundler import Bundler, _Slot

    from . import test_perf_paths as pp

    bl = Bundler(pp.M, pp.CLIENT, "c0", Checker(pp.M))
    a, b = bl.pipe("c0-n0"), bl.pipe("c0-n1")

    def wait(pipe, rid, kind=OP_GET):
        slot = _Slot(codec.ClientRequest(client_key=pp.CLIENT.public, request_id=rid, cluster_id="c0",
                                         op=codec.Operation(kind=kind, key=b"k")), False)
        pipe.waiting[rid] = slot
        return slot

    s1, s2, s3, s4 = wait(a, 1), wait(b, 2), wait(b, 3, OP_PUT), wait(b, 5)
    a._on_reply(pp._client_reply([1, 2, 3, 4]))  # arrives on a; answers 1 (a) and 2 (b)
    assert s1.answer.value == b"v1" and s1.answer.node == "c0-n0" and s2.answer.value == b"v2"
    assert not s3.done.is_set()  # id 3 answered as a GET, but 3 waits for a PUT: not its answer
    assert a.waiting == {} and sorted(b.waiting) == [3, 5]
    tampered = bytearray(pp._client_reply([3, 5]))
    tampered[tampered.index(b"v5") + 1] ^= 1
    a._on_reply(bytes(tampered))  # invalid, and nothing of it waits on a
    assert sorted(b.waiting) == [3, 5] and bl.rejected_answers == 1
    b._on_reply(bytes(tampered))  # invalid on b: its requests named there are retried
    assert all(s.done.is_set() and s.answer is None and s.error is None for s in (s3, s4)) and b.waiting == {}
