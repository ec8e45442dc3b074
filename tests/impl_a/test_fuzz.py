"""Hypothesis fuzzing: decoders never crash or accept non-canonical bytes; consensus handlers survive
malformed, oversized, replayed and out-of-order messages and keep deciding."""

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impl_a import heraclius_pb2 as pb
from impl_a.codec import MESSAGE_TYPES, decode, encode
from impl_a.errors import RemoteViolation

from .simnet import SimNet

NAMES = sorted(MESSAGE_TYPES)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(NAMES), st.binary(max_size=300))
def test_decoder_random_bytes(name, data):
    try:
        msg = decode(MESSAGE_TYPES[name], data)
    except RemoteViolation:
        return
    assert encode(msg) == data  # anything accepted is exactly canonical


def _sample_messages():
    req = pb.ClientRequest(client_key=b"k" * 32, request_id=9, cluster_id="c0",
                           op=pb.Operation(kind=pb.OP_KIND_PUT, key=b"key", value=b"val"), signature=b"s" * 64)
    hdr = pb.DecisionHeader(cluster_id="c0", height=3, parent_hash=b"p" * 32, inputs_hash=b"i" * 32,
                            outputs_root=b"o" * 32)
    return [pb.PeerMessage(proposal=pb.Proposal(cluster_id="c0", view=1, height=3, leader_id="c0-n1", header=hdr,
                                                batch=pb.Batch(inputs=[pb.Input(client=req)]), signature=b"x" * 64)),
            pb.PeerMessage(forward=pb.Forward(requests=[req, req])),
            pb.ClientMessage(submit=req),
            pb.PeerMessage(queue_batch=pb.QueueBatch(source_cluster="s0", destination="c0", decisions=[
                pb.CompactDecision(header=hdr, leaf=pb.OutputLeaf(source_cluster="s0", seq=1), leaf_count=1,
                                   proof=[b"q" * 32], qc=pb.QuorumCert())]))]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(range(4)), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4),
       st.integers(0, 3))
def test_decoder_mutated_valid_messages(idx, flips, cut):
    msg = _sample_messages()[idx]
    data = bytearray(encode(msg))
    for pos, val in flips:
        data[pos % len(data)] = val
    data = bytes(data[:len(data) - cut])
    try:
        out = decode(type(msg), data)
    except RemoteViolation:
        return
    assert encode(out) == data


def test_handlers_survive_hostile_peer(tmp_path):
    net = SimNet(tmp_path, clusters=(("c0", "coordinator"), ("s0", "shard")), seed=21)
    captured: list[tuple[str, str, bytes]] = []

    def record(dst, msg, data):
        captured.append(("c0-n3", dst, data))
        return data

    net.mutators["c0-n3"] = record
    for i in range(3):
        net.submit(net.request(pb.OP_KIND_PUT, b"w%d" % i, b"x"), "c0-n1")
    net.run(800)
    del net.mutators["c0-n3"]
    assert captured
    start_heights = {n: net.nodes[n].replica.height for n in net.nodes}

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def attack(data):
        src, dst, raw = data.draw(st.sampled_from(captured))
        how = data.draw(st.sampled_from(["replay", "flip", "field", "truncate", "oversized_ids"]))
        if how == "flip":
            b = bytearray(raw)
            b[data.draw(st.integers(0, len(b) - 1))] ^= data.draw(st.integers(1, 255))
            raw = bytes(b)
        elif how == "truncate":
            raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
        elif how in ("field", "oversized_ids"):
            m = pb.PeerMessage()
            m.ParseFromString(raw)
            body = getattr(m, m.WhichOneof("body"))
            for fname in ("view", "height", "new_view", "last_height", "from_height", "from_seq"):
                if fname in body.DESCRIPTOR.fields_by_name:
                    setattr(body, fname, data.draw(st.sampled_from([0, 1, 2, 5, 2**63, 2**64 - 1])))
            if how == "oversized_ids" and "node_id" in body.DESCRIPTOR.fields_by_name:
                body.node_id = data.draw(st.sampled_from(["", "c0-n0", "s0-n1", "x" * 300]))
            raw = encode(m)
        net._deliver(src, dst, raw)

    attack()
    random.Random(3).shuffle(captured)
    for src, dst, raw in captured[:200]:  # replayed, out of order
        net._deliver(src, dst, raw)
    net.run(3000)
    r = net.request(pb.OP_KIND_PUT, b"after", b"attack")
    net.submit(r, "c0-n2")
    net.run(5000)
    assert net.answer(r, "c0-n2") is not None
    assert all(net.nodes[n].replica.height >= start_heights[n] for n in net.nodes)
    logs = [net.log_bytes(n) for n in net.nodes if n.startswith("c0")]
    m = min(len(x) for x in logs)
    assert all(x[:m] == logs[0][:m] for x in logs)


def test_one_liar_claiming_a_huge_height_does_not_stall_the_leader(tmp_path):
    net = SimNet(tmp_path, clusters=(("c0", "coordinator"), ("s0", "shard")), seed=22)
    lie = pb.PeerMessage(view_change=pb.ViewChange(cluster_id="c0", new_view=1, node_id="c0-n3", height=2**63))
    from impl_a.verify import sign_message

    sign_message(net.nodes["c0-n3"].replica.key, "view-change", net.m.network_id, lie.view_change)
    for dst in ("c0-n0", "c0-n1", "c0-n2"):
        net._deliver("c0-n3", dst, encode(lie))
    net.crash("c0-n3")
    assert net.nodes["c0-n0"].replica.sync_want == 2**63
    assert not net.nodes["c0-n0"].replica.catching_up()
    r = net.request(pb.OP_KIND_PUT, b"k", b"v")
    net.submit(r, "c0-n1")
    net.run(2000)
    assert net.answer(r, "c0-n1") is not None


def test_view_data_with_an_unbacked_height_does_not_stall_the_new_view(tmp_path):
    """A Byzantine member sends the next leader a ViewData claiming a huge last_height."""
    net = SimNet(tmp_path, clusters=(("c0", "coordinator"), ("s0", "shard")), seed=23)
    liar = net.nodes["c0-n3"].replica

    def lie(dst, msg, data):
        if msg.WhichOneof("body") == "view_data":
            from impl_a.verify import sign_message

            vd = pb.ViewData()
            vd.CopyFrom(msg.view_data)
            vd.last_height = 10**9
            sign_message(liar.key, "view-data", net.m.network_id, vd)
            return encode(pb.PeerMessage(view_data=vd))
        if msg.WhichOneof("body") == "sync_response":
            return encode(pb.PeerMessage(sync_response=pb.SyncResponse(cluster_id="c0")))
        return data

    net.mutators["c0-n3"] = lie
    net.run(100)
    others = {n for n in net.nodes if n != "c0-n0"}
    net.partition({"c0-n0"}, others)  # the leader is cut off for a while: a view change follows
    r = net.request(pb.OP_KIND_PUT, b"k", b"v")
    net.submit(r, "c0-n2")
    net.run(1500)
    net.heal()
    net.run(8000)
    assert net.answer(r, "c0-n2") is not None
    assert all(net.nodes[n].replica.view >= 1 for n in ("c0-n0", "c0-n1", "c0-n2"))
    assert any(net.nodes[n].replica.refuted.get("c0-n3") == 10**9 for n in ("c0-n1", "c0-n2"))
