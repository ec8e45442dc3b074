"""Fault scenarios of the consensus state machine on the deterministic simulated network."""

from impl_b import codec
from impl_b.checks import sign_message
from impl_b.codec import encode
from impl_b.crypto import Signer
from impl_b.rsm import execute

from .sim import Sim


def _done(sim, *rids):
    return lambda: all(r in sim.answers for r in rids)


def test_put_then_get_across_clusters():
    sim = Sim(seed=1)
    p = sim.put(b"apple", b"red")
    assert sim.run_until(_done(sim, p), 5000)
    assert sim.answers[p].found is False
    g = sim.get(b"apple", to="c0-n2")
    assert sim.run_until(_done(sim, g), 5000)
    assert sim.answers[g].found is True and sim.answers[g].value == b"red"
    assert sim.answers[g].shard_id == "s0"
    assert sim.logs_agree("c0") and sim.logs_agree("s0")
    assert min(sim.heights("c0").values()) >= 2


def test_duplicate_request_is_executed_once():
    sim = Sim(seed=2)
    p = sim.put(b"k", b"v1", to=["c0-n0", "c0-n1", "c0-n2"])
    assert sim.run_until(_done(sim, p), 5000)
    sim.put(b"k", b"v2", rid=p, to="c0-n3")  # replay of the same id with another value
    g = sim.get(b"k")
    assert sim.run_until(_done(sim, g), 5000)
    assert sim.answers[g].value == b"v1"
    shard_kv = sim.replicas["s0-n0"].state.kv
    assert shard_kv[b"k"] == b"v1"


def test_leader_crash_view_change_keeps_serving():
    sim = Sim(seed=3)
    p = sim.put(b"a", b"1")
    assert sim.run_until(_done(sim, p), 5000)
    sim.crash("c0-n0")
    sim.crash("s0-n0")
    p2 = sim.put(b"a", b"2", to=["c0-n1", "c0-n2"])
    assert sim.run_until(_done(sim, p2), 15000)
    assert sim.replicas["c0-n1"].view >= 1 and sim.replicas["s0-n1"].view >= 1
    g = sim.get(b"a", to="c0-n3")
    assert sim.run_until(_done(sim, g), 10000)
    assert sim.answers[g].value == b"2"
    assert sim.logs_agree("c0") and sim.logs_agree("s0")


def test_lossy_network_with_delays_makes_progress():
    sim = Sim(seed=4)
    sim.drop_rate = 0.05
    sim.delay = (1, 40)
    rids = [sim.put(f"key{i}".encode(), f"v{i}".encode(), to=f"c0-n{i % 4}") for i in range(10)]
    assert sim.run_until(_done(sim, *rids), 40000)
    assert sim.logs_agree("c0") and sim.logs_agree("s0")


def test_partitioned_node_catches_up_and_restart_from_storage():
    sim = Sim(seed=5)
    for other in ("c0-n0", "c0-n1", "c0-n2"):
        sim.cut.add(frozenset(("c0-n3", other)))
    rids = [sim.put(f"x{i}".encode(), b"v") for i in range(5)]
    assert sim.run_until(_done(sim, *rids), 10000)
    assert sim.replicas["c0-n3"].height == 0
    sim.cut.clear()
    top = sim.replicas["c0-n0"].height
    r = sim.put(b"after", b"heal")
    assert sim.run_until(lambda: sim.replicas["c0-n3"].height >= top and r in sim.answers, 10000)
    sim.crash("c0-n2")
    h = sim.replicas["c0-n2"].height
    sim.restart("c0-n2")
    assert sim.replicas["c0-n2"].height == h  # replayed from its own durable log
    g = sim.get(b"x3", to="c0-n2")
    assert sim.run_until(_done(sim, g), 10000)
    assert sim.answers[g].value == b"v"
    assert sim.logs_agree("c0")


def test_equivocating_leader_is_detected_and_replaced():
    sim = Sim(seed=6)

    leader = Signer(sim.secrets["c0-n0"]["ed25519"])

    def equivocate(to, pm):
        if pm.proposal is not None and to == "c0-n3" and len(pm.proposal.batch.inputs) > 1:
            r = sim.replicas["c0-n0"]
            p = pm.proposal.copy(batch=codec.Batch(inputs=pm.proposal.batch.inputs[:-1]), signature=b"")
            p.header = execute(r.state, sim.m, p.batch, p.height, r.head_hash).header
            sign_message(leader, sim.m.network_id, p)
            return [pm, codec.PeerMessage(proposal=p)]
        return [pm]

    sim.tamper["c0-n0"] = equivocate
    rids = [sim.put(f"e{i}".encode(), b"v", to=["c0-n0", "c0-n3"]) for i in range(4)]
    assert sim.run_until(_done(sim, *rids), 20000)
    assert sim.logs_agree("c0")
    assert ("c0-n3", "c0-n0", "equivocation") in sim.evidence


def test_byzantine_node_mutating_its_messages_does_not_break_safety():
    sim = Sim(seed=7)

    def mutate(to, pm):
        data = bytearray(encode(pm))
        data[len(data) // 2] ^= 0x40
        return [bytes(data)]

    sim.tamper["c0-n2"] = mutate
    rids = [sim.put(f"m{i}".encode(), b"v", to="c0-n1") for i in range(5)]
    assert sim.run_until(_done(sim, *rids), 20000)
    assert sim.logs_agree("c0")
    assert any(r[2] == "c0-n2" for r in sim.rejects)


def test_restarted_old_leader_learns_the_new_view():
    sim = Sim(seed=8)
    p = sim.put(b"a", b"1")
    assert sim.run_until(_done(sim, p), 5000)
    sim.crash("c0-n0")
    p2 = sim.put(b"a", b"2", to=["c0-n1"])
    assert sim.run_until(_done(sim, p2), 15000)
    sim.restart("c0-n0")
    assert sim.replicas["c0-n0"].view == 0
    g = sim.get(b"a", to="c0-n0")  # only the restarted node hears of it
    assert sim.run_until(_done(sim, g), 15000)
    assert sim.answers[g].value == b"2"
    assert sim.replicas["c0-n0"].view == sim.replicas["c0-n1"].view >= 1
    assert sim.logs_agree("c0")


def test_all_nodes_restart_from_storage_without_losing_decisions():
    sim = Sim(seed=9)
    rids = [sim.put(f"r{i}".encode(), f"{i}".encode(), to=f"c0-n{i % 4}") for i in range(6)]
    assert sim.run_until(_done(sim, *rids), 10000)
    heights = {n: r.height for n, r in sim.replicas.items()}
    for n in list(sim.replicas):
        sim.crash(n)
    for n in list(sim.replicas):
        sim.restart(n)
    assert {n: r.height for n, r in sim.replicas.items()} == heights
    g = sim.get(b"r5", to="c0-n2")
    assert sim.run_until(_done(sim, g), 10000)
    assert sim.answers[g].value == b"5"


def test_shard_member_with_wrong_results_is_outvoted():
    sim = Sim(seed=12)
    sim.replicas["s0-n2"].wrong_results = True
    p = sim.put(b"w", b"right")
    assert sim.run_until(_done(sim, p), 5000)
    g = sim.get(b"w")
    assert sim.run_until(_done(sim, g), 15000)
    assert sim.answers[g].value == b"right"
    assert any(r[0] == "s0-n2" and r[1] == "invalid_proposal" for r in sim.rejects)


def test_prepared_proposal_survives_leader_crash():
    sim = Sim(seed=13)
    p = sim.put(b"pre", b"0")
    assert sim.run_until(_done(sim, p), 5000)
    blocked = {"on": True}

    def no_commits(to, pm):
        return [] if blocked["on"] and pm.commit is not None else [pm]

    for n in sim.m.clusters["c0"].members:
        sim.tamper[n] = no_commits
    h0 = sim.replicas["c0-n1"].height
    q = sim.put(b"pre", b"1", to=["c0-n0", "c0-n1"])
    # Everyone prepares the proposal for h0 + 1, nobody can decide it (no Commit gets through).
    assert sim.run_until(lambda: all(sim.replicas[n].prepared_cert is not None
                                     for n in sim.m.clusters["c0"].members), 3000)
    digest = sim.replicas["c0-n1"].prepared_cert.proposal.header
    sim.crash("c0-n0")
    blocked["on"] = False
    assert sim.run_until(_done(sim, q), 15000)
    dec = sim.stores["c0-n1"].decisions[h0]
    assert dec.header == digest  # the new leader re-proposed exactly the prepared proposal
    assert sim.replicas["c0-n1"].view >= 1
    assert sim.logs_agree("c0")


def test_two_coordinators_two_shards():
    sim = Sim(layout={"c0": "coordinator", "c1": "coordinator", "s0": "shard", "s1": "shard"}, seed=14)
    keys = [f"multi-{i}".encode() for i in range(8)]
    assert {sim.m.shard_of(k) for k in keys} == {"s0", "s1"}
    puts = [sim.put(k, k + b"!", to="c0-n1" if i % 2 else "c1-n2") for i, k in enumerate(keys)]
    assert sim.run_until(_done(sim, *puts), 15000)
    gets = [sim.get(k, to="c1-n0" if i % 2 else "c0-n3") for i, k in enumerate(keys)]
    assert sim.run_until(_done(sim, *gets), 15000)
    for k, g in zip(keys, gets, strict=True):
        assert sim.answers[g].value == k + b"!" and sim.answers[g].shard_id == sim.m.shard_of(k)
    for c in ("c0", "c1", "s0", "s1"):
        assert sim.logs_agree(c)


def test_seven_node_clusters_tolerate_two_crashes():
    sim = Sim(seed=15, nodes_per_cluster=7)
    p = sim.put(b"seven", b"1", to="c0-n3")
    assert sim.run_until(_done(sim, p), 5000)
    for n in ("c0-n0", "c0-n1", "s0-n0", "s0-n5"):
        sim.crash(n)
    g = sim.get(b"seven", to=["c0-n2", "c0-n4"])
    assert sim.run_until(_done(sim, g), 20000)
    assert sim.answers[g].value == b"1"
    assert sim.replicas["c0-n2"].view >= 2  # views 1 and 2 both had a crashed leader
    assert sim.logs_agree("c0") and sim.logs_agree("s0")


def test_restart_on_real_lmdb_storage(tmp_path):
    sim = Sim(seed=16, lmdb_root=str(tmp_path))
    try:
        rids = [sim.put(f"l{i}".encode(), f"{i}".encode(), to=f"c0-n{i % 4}") for i in range(2)]
        assert sim.run_until(_done(sim, *rids), 10000)
        sim.crash("c0-n0")  # the leader: a view change follows
        r = sim.put(b"l9", b"9", to=["c0-n1", "c0-n2"])
        assert sim.run_until(_done(sim, r), 15000)
        before = sim.replicas["c0-n0"].height
        sim.restart("c0-n0")
        assert sim.replicas["c0-n0"].height == before >= 1  # replayed from its LMDB log
        g = sim.get(b"l9", to="c0-n0")
        assert sim.run_until(_done(sim, g), 15000)
        assert sim.answers[g].value == b"9"
        assert sim.replicas["c0-n0"].view == sim.replicas["c0-n1"].view
        assert sim.logs_agree("c0") and sim.logs_agree("s0")
    finally:
        sim.close()


def test_leaders_absent_from_the_start():
    sim = Sim(seed=17)
    sim.crash("c0-n0")
    sim.crash("s0-n0")
    p = sim.put(b"absent", b"1", to="c0-n2")
    assert sim.run_until(_done(sim, p), 15000)
    g = sim.get(b"absent", to="c0-n3")
    assert sim.run_until(_done(sim, g), 10000)
    assert sim.answers[g].value == b"1"
    sim.restart("c0-n0")  # a late member: it learns view 1 from the others
    assert sim.run_until(lambda: sim.replicas["c0-n0"].view == sim.replicas["c0-n1"].view, 10000)
    r = sim.put(b"absent", b"2", to="c0-n0")
    assert sim.run_until(_done(sim, r), 10000)
    assert sim.logs_agree("c0") and sim.logs_agree("s0")
