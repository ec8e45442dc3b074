"""Testbed fault rules (SPEC 16) applied to outgoing messages, and a lying shard member in simulation."""

from impl_a import heraclius_pb2 as pb
from impl_a.codec import encode
from impl_a.faults import Faults

from .simnet import SimNet

HB = pb.PeerMessage(heartbeat=pb.Heartbeat(cluster_id="c0", view=1, height=2, leader_id="c0-n1"))
PREP = pb.PeerMessage(prepare=pb.Prepare(cluster_id="c0", view=1, height=2, digest=b"d" * 32, node_id="c0-n1"))


def test_outgoing_rules():
    assert Faults([]).outgoing("x", HB, encode(HB)) == [(0.0, encode(HB))]
    assert Faults([{"action": "silent"}]).outgoing("x", HB, encode(HB)) == []
    drop = Faults([{"action": "drop", "messages": ["prepare"], "targets": ["c0-n2"]}])
    assert drop.outgoing("c0-n2", PREP, encode(PREP)) == []
    assert drop.outgoing("c0-n3", PREP, encode(PREP)) == [(0.0, encode(PREP))]
    assert drop.outgoing("c0-n2", HB, encode(HB)) == [(0.0, encode(HB))]
    assert Faults([{"action": "duplicate"}]).outgoing("x", HB, encode(HB)) == [(0.0, encode(HB))] * 2
    assert Faults([{"action": "delay", "delay_ms": 250}]).outgoing("x", HB, encode(HB)) == [(0.25, encode(HB))]
    (_, mutated), = Faults([{"action": "mutate", "seed": 4}]).outgoing("x", HB, encode(HB))
    assert mutated != encode(HB) and len(mutated) == len(encode(HB))
    half = Faults([{"action": "drop", "probability": 0.5, "seed": 7}])
    kept = sum(1 for _ in range(400) if half.outgoing("x", HB, encode(HB)))
    assert 140 < kept < 260


def test_bad_signature_respects_message_filter():
    hook = Faults([{"action": "bad_signature", "messages": ["commit"]}]).consensus_hooks()["bad_signature"]
    sig = b"s" * 64
    assert hook("prepare", sig) == sig and hook("commit", sig) != sig and len(hook("commit", sig)) == 64
    every = Faults([{"action": "bad_signature"}]).consensus_hooks()["bad_signature"]
    assert every("view_change", sig) != sig


def test_tamper_changes_last_byte_of_first_value():
    cd = pb.CompactDecision(leaf=pb.OutputLeaf(responses=[pb.ClientResponse(request_id=1, value=b"abc")]))
    assert Faults.tamper(cd).leaf.responses[0].value == b"abb"
    cd = pb.CompactDecision(leaf=pb.OutputLeaf(results=[pb.ShardResult(client_key=b"k" * 32, request_id=1)]))
    assert Faults.tamper(cd).leaf.results[0].client_key == b"k" * 31 + b"j"


def test_wrong_result_shard_member_is_outvoted(tmp_path):
    net = SimNet(tmp_path, clusters=(("c0", "coordinator"), ("s0", "shard")), seed=31,
                 faults={"s0-n2": {"wrong_result": True}})
    put = net.request(pb.OP_KIND_PUT, b"acct", b"100")
    net.submit(put, "c0-n1")
    net.run(1500)
    get = net.request(pb.OP_KIND_GET, b"acct")
    net.submit(get, "c0-n1")
    net.run(3000)
    assert net.answer(get, "c0-n1").value == b"100"
    rejected = [r for r in net.nodes["s0-n2"].rejects if r[0] == "invalid_proposal"]
    assert rejected  # the liar disagrees with the honest leader's header
