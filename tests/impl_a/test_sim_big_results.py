"""Errata AD-1 mitigation in impl_a's leaders: result leaves for a coordinator stay within
max_batch_bytes less a margin, so every one of them can be proposed there (no view-change loop)."""

from impl_a import heraclius_pb2 as pb
from impl_a.codec import encode
from impl_a.leader import call_costs, leaf_room
from impl_a.rsm import compact_decisions

from .simnet import SimNet

NET2 = (("c0", "coordinator"), ("s0", "shard"))


def test_hundred_big_gets_answered_and_leaves_bounded(tmp_path):
    net = SimNet(tmp_path, clusters=NET2, seed=11)
    put = net.request(pb.OP_KIND_PUT, b"big", b"w" * 60_000)
    net.submit(put, "c0-n0")
    net.run(400)
    assert net.answer(put, "c0-n0") is not None
    gets = [net.request(pb.OP_KIND_GET, b"big") for _ in range(100)]
    for g in gets:
        net.submit(g, "c0-n0")
    net.run(3000)
    for g in gets:
        resp = net.answer(g, "c0-n1")
        assert resp is not None and resp.found and len(resp.value) == 60_000
    room = leaf_room(net.m.limits)
    views = {net.nodes[n].replica.view for n in ("c0-n0", "c0-n1", "c0-n2", "c0-n3")}
    assert views == {0}, views  # no leader was ever unable to propose
    assert all(len(encode(cd)) <= net.m.limits["max_batch_bytes"] - 64
               for d in net.nodes["s0-n0"].decided for dest, cd in compact_decisions(d).items() if dest == "c0")
    for d in net.nodes["c0-n0"].decided:
        for leaf in d.outputs:
            if leaf.destination == "s0":
                gets_in = sum(call.op.kind == pb.OP_KIND_GET for call in leaf.calls)
                assert gets_in * net.m.limits["max_value_bytes"] <= room or len(d.batch.inputs) == 1


def test_small_value_batches_not_limited_by_a_put_heavy_cost():
    """PUT calls cost their own bytes only; GETs cost max_value_bytes each (the only safe bound)."""
    class M:
        limits = {"max_value_bytes": 65536, "max_batch_bytes": 4194304}

        @staticmethod
        def shard_of(key):
            return "s0"

    put = pb.Operation(kind=pb.OP_KIND_PUT, key=b"k", value=b"v" * 10)
    get = pb.Operation(kind=pb.OP_KIND_GET, key=b"k")
    key = bytes(32)
    assert call_costs(M, key, [put])["s0"] < 200
    assert call_costs(M, key, [get])["s0"] > 65536
    assert call_costs(M, key, [get] * 2)["s0"] == 2 * call_costs(M, key, [get])["s0"]
    assert leaf_room(M.limits) == 4194304 - 256 * 1024
