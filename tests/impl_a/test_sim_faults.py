"""Fault scenarios in the simulated network: crash, leader failure, partition, loss, restart, Byzantine."""

import random

from impl_a import heraclius_pb2 as pb
from impl_a.codec import decode, encode
from impl_a.verify import sign_message

from .simnet import SimNet

NET2 = (("c0", "coordinator"), ("s0", "shard"))


def _put_all(net, n, prefix=b"k", nodes=("c0-n1", "c0-n2", "c0-n3")):
    reqs = []
    for i in range(n):
        r = net.request(pb.OP_KIND_PUT, prefix + b"%d" % i, b"v%d" % i)
        net.submit(r, nodes[i % len(nodes)])
        reqs.append(r)
    return reqs


def _answered(net, reqs, via):
    return all(net.answer(r, via) is not None for r in reqs)


def _logs_agree(net, cluster):
    logs = [net.log_bytes(n) for n in net.nodes if n.startswith(cluster)]
    shortest = min(len(x) for x in logs)
    return shortest > 0 and all(x[:shortest] == logs[0][:shortest] for x in logs)


def test_coordinator_leader_crash_view_change(tmp_path):
    net = SimNet(tmp_path, clusters=NET2, seed=5)
    net.run(100)
    net.crash("c0-n0")  # leader of view 0
    reqs = _put_all(net, 4)
    net.run(4000)
    assert _answered(net, reqs, "c0-n2")
    assert all(net.nodes[n].replica.view >= 1 for n in ("c0-n1", "c0-n2", "c0-n3"))
    assert _logs_agree(net, "c0")


def test_shard_leader_crash_and_follower_restart_catches_up(tmp_path):
    net = SimNet(tmp_path, clusters=NET2, seed=6)
    first = _put_all(net, 3)
    net.run(800)
    assert _answered(net, first, "c0-n1")
    net.crash("s0-n0")
    net.crash("c0-n3")
    second = _put_all(net, 3, prefix=b"q", nodes=("c0-n1", "c0-n2"))
    net.run(5000)
    assert _answered(net, second, "c0-n1")
    net.restart("s0-n0")
    net.restart("c0-n3")  # replays its own SQLite log, then catches up from peers
    third = _put_all(net, 2, prefix=b"z", nodes=("c0-n3",))
    net.run(5000)
    assert _answered(net, third, "c0-n3")
    h = {n: net.nodes[n].replica.height for n in net.nodes}
    assert h["c0-n3"] == h["c0-n1"] and h["s0-n0"] == h["s0-n1"]
    assert _logs_agree(net, "c0") and _logs_agree(net, "s0")
    get = net.request(pb.OP_KIND_GET, b"q1")
    net.submit(get, "c0-n3")
    net.run(1500)
    assert net.answer(get, "c0-n3").value == b"v1"


def test_message_loss_and_partition_heal(tmp_path):
    net = SimNet(tmp_path, clusters=NET2, seed=7)
    net.drop_rate = 0.1
    reqs = _put_all(net, 6)
    net.run(6000)
    assert _answered(net, reqs, "c0-n1")
    net.drop_rate = 0.0
    net.partition({"c0-n0", "c0-n1"}, {"c0-n2", "c0-n3"})  # no quorum on either side
    more = _put_all(net, 2, prefix=b"p")
    net.run(1500)
    assert not _answered(net, more, "c0-n1")
    net.heal()
    net.run(8000)
    assert _answered(net, more, "c0-n1")
    assert _logs_agree(net, "c0") and _logs_agree(net, "s0")


def test_all_nodes_restart_keeps_acknowledged_writes(tmp_path):
    net = SimNet(tmp_path, clusters=NET2, seed=8)
    reqs = _put_all(net, 4)
    net.run(1000)
    assert _answered(net, reqs, "c0-n0")
    heights = {n: net.nodes[n].replica.height for n in net.nodes}
    for n in list(net.nodes):
        net.crash(n)
    for n in heights:
        net.restart(n)
    assert {n: net.nodes[n].replica.height for n in net.nodes} == heights
    get = net.request(pb.OP_KIND_GET, b"k2")
    net.submit(get, "c0-n2")
    net.run(2000)
    assert net.answer(get, "c0-n2").value == b"v2"


def test_byzantine_mutating_follower_is_harmless(tmp_path):
    net = SimNet(tmp_path, clusters=NET2, seed=9)
    rng = random.Random(1)

    def flip(dst, msg, data):
        i = rng.randrange(len(data))
        return data[:i] + bytes([data[i] ^ 0x40]) + data[i + 1:]

    net.mutators["c0-n3"] = flip
    reqs = _put_all(net, 4, nodes=("c0-n1", "c0-n2"))
    net.run(3000)
    assert _answered(net, reqs, "c0-n1")
    rejected = [r for n in ("c0-n0", "c0-n1", "c0-n2") for r in net.nodes[n].rejects if r[1] == "c0-n3"]
    assert rejected  # counted, not acted upon


def test_equivocating_leader_is_detected_and_victim_catches_up(tmp_path):
    net = SimNet(tmp_path, clusters=NET2, seed=10)
    key = net.nodes["c0-n0"].replica.key

    def equivocate(dst, msg, data):
        if msg.WhichOneof("body") != "proposal" or dst != "c0-n1":
            return data
        p = pb.Proposal()
        p.CopyFrom(msg.proposal)
        p.header.outputs_root = bytes(32)  # a different, leader-signed proposal
        sign_message(key, "proposal", net.m.network_id, p)
        return encode(pb.PeerMessage(proposal=p))

    net.mutators["c0-n0"] = equivocate
    reqs = _put_all(net, 3)
    net.run(6000)
    net.mutators.clear()
    assert _answered(net, reqs, "c0-n2")
    kinds = {e[1] for e in net.nodes["c0-n1"].evidence}
    assert "invalid_proposal" in kinds
    # One suspicious member cannot force a view change alone; it catches up from the commits and,
    # seeing a quorum still deciding in view 0, returns to normal operation (SPEC 12.6 step 7).
    victim = net.nodes["c0-n1"].replica
    assert victim.height == net.nodes["c0-n2"].replica.height
    more = _put_all(net, 2, prefix=b"m", nodes=("c0-n2",))
    net.run(3000)
    assert _answered(net, more, "c0-n1")
    assert victim.view == 0 and not victim.in_vc
    assert _logs_agree(net, "c0")


def test_tampered_queue_batch_rejected_with_evidence(tmp_path):
    net = SimNet(tmp_path, clusters=NET2, seed=11)

    def tamper(dst, msg, data):
        if msg.WhichOneof("body") != "queue_batch" or not msg.queue_batch.decisions:
            return data
        m = decode(pb.PeerMessage, data)
        leaf = m.queue_batch.decisions[0].leaf
        if leaf.results:
            leaf.results[0].found = not leaf.results[0].found
        return encode(m)

    net.mutators["s0-n1"] = tamper
    reqs = _put_all(net, 4)
    net.run(4000)
    assert _answered(net, reqs, "c0-n1")
    ev = [e for n in net.nodes.values() if n.id.startswith("c0") for e in n.evidence]
    assert any(e[0] == "s0-n1" and e[1] == "tampered_compact" for e in ev)
    assert all(not net.answer(r, "c0-n1").found for r in reqs)


def test_view_change_carries_prepared_proposal(tmp_path):
    from impl_a.verify import header_hash

    net = SimNet(tmp_path, clusters=NET2, seed=12)
    net.run(50)

    def no_commits(dst, msg, data):
        return None if msg.WhichOneof("body") == "commit" else data

    for n in ("c0-n0", "c0-n1", "c0-n2", "c0-n3"):
        net.mutators[n] = no_commits
    r = net.request(pb.OP_KIND_PUT, b"carried", b"yes")
    net.submit(r, "c0-n1")
    net.run(150)
    prepared = [net.nodes[n].replica.prepared for n in ("c0-n1", "c0-n2", "c0-n3")]
    assert all(p is not None for p in prepared)
    digest = header_hash(prepared[0].proposal.header)
    height = prepared[0].proposal.height
    assert all(net.nodes[n].replica.height == height - 1 for n in net.nodes if n.startswith("c0"))
    net.crash("c0-n0")
    net.mutators.clear()
    net.run(4000)
    for n in ("c0-n1", "c0-n2", "c0-n3"):
        rep = net.nodes[n].replica
        assert rep.view >= 1 and rep.height >= height
        d = pb.Decision()
        d.ParseFromString(net.nodes[n].store.decision(height))
        assert header_hash(d.header) == digest  # the prepared proposal survived the view change
    assert net.answer(r, "c0-n2").kind == pb.OP_KIND_PUT


def test_censoring_leader_is_replaced(tmp_path):
    """The leader keeps sending heartbeats but never proposes: the censorship timer moves the view."""
    net = SimNet(tmp_path, clusters=NET2, seed=13)

    def censor(dst, msg, data):
        return None if msg.WhichOneof("body") == "proposal" else data

    net.mutators["c0-n0"] = censor
    r = net.request(pb.OP_KIND_PUT, b"censored", b"no more")
    net.submit(r, "c0-n2")
    net.run(700)
    assert net.answer(r, "c0-n2") is None and net.nodes["c0-n2"].replica.view == 0
    net.run(4000)
    assert net.answer(r, "c0-n2") is not None
    assert all(net.nodes[n].replica.view >= 1 for n in ("c0-n1", "c0-n2", "c0-n3"))


def test_late_member_rejoins_the_current_view(tmp_path):
    """c0-n3 misses a whole view change; on hearing the new leader it asks for and installs the
    NewView that installed the current view (SPEC 12.6 step 6)."""
    net = SimNet(tmp_path, clusters=NET2, seed=14)
    net.partition({"c0-n3"}, {n for n in net.nodes if n != "c0-n3"})

    def censor(dst, msg, data):
        return None if msg.WhichOneof("body") == "proposal" else data

    net.mutators["c0-n0"] = censor
    first = _put_all(net, 2, nodes=("c0-n1",))
    net.run(4000)
    assert _answered(net, first, "c0-n1")
    assert all(net.nodes[n].replica.view == 1 for n in ("c0-n0", "c0-n1", "c0-n2"))
    net.heal()
    net.run(2000)
    late = net.nodes["c0-n3"].replica
    assert late.view == 1 and not late.in_vc
    more = _put_all(net, 2, prefix=b"l", nodes=("c0-n3",))
    net.run(3000)
    assert _answered(net, more, "c0-n3")
    assert late.height == net.nodes["c0-n1"].replica.height
