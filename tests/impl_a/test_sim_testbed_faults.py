"""Testbed faults censor_client and skip_queue_seq (SPEC 16) in the seeded simulation."""

from impl_a import heraclius_pb2 as pb
from impl_a.crypto import SigningKey
from impl_a.devnet import read_key
from impl_a.faults import Faults
from impl_a.verify import sign_message

from .simnet import SimNet

NET2 = (("c0", "coordinator"), ("s0", "shard"))
C0 = ("c0-n0", "c0-n1", "c0-n2", "c0-n3")
S0 = ("s0-n0", "s0-n1", "s0-n2", "s0-n3")


def _hooks(*rules):
    return Faults(list(rules)).consensus_hooks()


def _signed(net, key: SigningKey, rid: int, k: bytes, v: bytes) -> pb.ClientRequest:
    req = pb.ClientRequest(client_key=key.public, request_id=rid, cluster_id="c0",
                           op=pb.Operation(kind=pb.OP_KIND_PUT, key=k, value=v))
    sign_message(key, "client-request", net.m.network_id, req)
    return req


def _decided_in(net, req, nid="c0-n1"):
    """(view, answer) of the decision that answered req on nid, or None."""
    h = net.nodes[nid].replica.client_index.get((req.client_key, req.request_id))
    return None if h is None else net.answer(req, nid)


def test_censoring_leader_is_replaced_and_the_censored_request_decided(tmp_path):
    rule = {"action": "censor_client", "clients": ["client0"]}
    net = SimNet(tmp_path, clusters=NET2, seed=31, clients=2, faults={"c0-n0": _hooks(rule)})
    censored_key = SigningKey(read_key(tmp_path / "clients" / "client0.key"))
    other_key = SigningKey(read_key(tmp_path / "clients" / "client1.key"))
    censored = _signed(net, censored_key, 7, b"ck", b"censored-value")
    other = _signed(net, other_key, 7, b"ok", b"other-value")
    for nid in ("c0-n1", "c0-n2", "c0-n3"):  # forwarded to the leader c0-n0
        net.submit(censored, nid)
        net.submit(other, nid)
    net.run(600)  # below the 900 ms censorship timeout
    assert _decided_in(net, other) is not None  # the leader proposes the other client's request ...
    assert _decided_in(net, censored) is None  # ... but never the censored one
    assert (censored.client_key, censored.request_id) in net.nodes["c0-n0"].replica.req_pool  # kept pooled
    assert all(net.nodes[n].replica.view == 0 for n in C0)
    net.run(3000)
    answer = _decided_in(net, censored)
    assert answer is not None and answer.value == b"" and answer.kind == pb.OP_KIND_PUT
    views = {net.nodes[n].replica.view for n in C0}
    assert len(views) == 1 and views.pop() >= 1  # the censorship timers replaced the leader
    # Censoring is not a provable misdeed: nothing else about the leader was wrong.
    assert not any(net.nodes[n].evidence for n in C0)
    get = _signed(net, censored_key, 8, b"ck", b"")
    get.op.kind = pb.OP_KIND_GET
    get.op.value = b""
    sign_message(censored_key, "client-request", net.m.network_id, get)
    net.submit(get, "c0-n2")
    net.run(1500)
    assert net.answer(get, "c0-n2").value == b"censored-value"


def test_gapped_queue_reply_is_rejected_and_the_puller_moves_on(tmp_path):
    net = SimNet(tmp_path, clusters=NET2, seed=32, faults={"s0-n0": _hooks({"action": "skip_queue_seq"})})
    # c0-n0 is cut off from everyone while the others decide three operations: s0's queue for c0
    # then holds seq 1..3 that c0-n0 has not pulled yet.
    net.partition({"c0-n0"}, set(net.nodes) - {"c0-n0"})
    reqs = []
    for i in range(3):
        r = net.request(pb.OP_KIND_PUT, b"g%d" % i, b"v%d" % i)
        net.submit(r, "c0-n1")
        net.run(700)
        reqs.append(r)
    assert all(net.answer(r, "c0-n1") is not None for r in reqs)
    server = net.nodes["s0-n0"].server
    gapped = server.serve(pb.QueuePull(source_cluster="s0", destination="c0", from_seq=1, max_count=10))
    assert [cd.leaf.seq for cd in gapped.decisions] == [2, 3]
    r0 = net.nodes["c0-n0"].replica
    assert r0.state.next_in_of("s0") == 1 and not r0.remote_pool.get("s0")
    # Reconnect c0-n0 to s0 only (its own cluster stays away, so it must pull), starting at s0-n0.
    net.blocked = {(a, b) for a, b in net.blocked if not (a.startswith("s0") or b.startswith("s0"))}
    puller = net.nodes["c0-n0"].puller
    puller.member_idx["s0"] = 0
    puller.inflight.pop("s0", None)
    puller.not_before.pop("s0", None)
    net.run(300)
    rejects = net.nodes["c0-n0"].rejects
    assert any(reason == "out_of_order" and peer == "s0-n0" for reason, peer, _ in rejects)
    assert sorted(r0.remote_pool.get("s0", {})) == [1, 2, 3]  # all of it, from the next member
    assert puller.member_idx["s0"] != 0
    assert not net.nodes["c0-n0"].evidence  # a gap is an ordering fault, not tampering
    net.heal()
    late = net.request(pb.OP_KIND_GET, b"g2")
    net.submit(late, "c0-n0")
    net.run(2000)
    assert net.answer(late, "c0-n0").value == b"v2"
