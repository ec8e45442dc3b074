"""Consensus in the simulated network: normal case, cross-cluster GET/PUT, logs agree."""

from impl_a import heraclius_pb2 as pb

from .simnet import SimNet

NET2 = (("c0", "coordinator"), ("s0", "shard"))


def test_single_cluster_orders_requests(tmp_path):
    net = SimNet(tmp_path, clusters=NET2, seed=3)
    reqs = [net.request(pb.OP_KIND_PUT, b"k%d" % i, b"v%d" % i) for i in range(5)]
    for i, r in enumerate(reqs):
        net.submit(r, f"c0-n{i % 4}")
    net.run(600)
    for r in reqs:
        resp = net.answer(r, "c0-n2")
        assert resp is not None and resp.kind == pb.OP_KIND_PUT and resp.shard_id == "s0" and not resp.found
    get = net.request(pb.OP_KIND_GET, b"k3")
    net.submit(get, "c0-n1")
    net.run(400)
    resp = net.answer(get, "c0-n0")
    assert resp.found and resp.value == b"v3"
    logs = [net.log_bytes(n) for n in ("c0-n0", "c0-n1", "c0-n2", "c0-n3")]
    assert logs[0] and all(lg == logs[0] for lg in logs)
    slogs = [net.log_bytes(n) for n in ("s0-n0", "s0-n1", "s0-n2", "s0-n3")]
    assert slogs[0] and all(lg == slogs[0] for lg in slogs)


def test_duplicate_request_executes_once(tmp_path):
    net = SimNet(tmp_path, clusters=NET2, seed=4)
    r = net.request(pb.OP_KIND_PUT, b"x", b"1")
    net.submit(r, "c0-n0")
    net.run(400)
    first = net.answer(r, "c0-n1")
    assert first is not None and not first.found
    net.submit(r, "c0-n3")  # a retry of the same request id
    net.run(300)
    calls = sum(len(leaf.calls) for d in net.nodes["c0-n0"].decided for leaf in d.outputs)
    assert calls == 1
    assert net.answer(r, "c0-n3") == first
