"""SPEC 16 testbed actions `censor_client` and `skip_queue_seq`: the faulty node behaves as told and
the correct members route around it."""

import os

from impl_b import codec
from impl_b.client import Client
from impl_b.crypto import Signer, read_key_file
from impl_b.faults import FaultPlan
from impl_b.logs import NodeLog
from impl_b.runtime import Runtime

from .iostub import LinkControlStub
from .netproc import Network
from .sim import Sim


def _done(sim, *rids):
    return lambda: all(r in sim.answers for r in rids)


def test_censoring_leader_is_replaced_by_the_censorship_timers():
    sim = Sim(seed=31)
    assert sim.run_until(_done(sim, sim.put(b"c", b"0")), 5000)
    plan = FaultPlan([{"action": "censor_client", "clients": ["alice"]}])
    sim.replicas["c0-n0"].censored = plan.censored_keys(sim.m)
    assert sim.replicas["c0-n0"].censored == {sim.client.public}
    h = sim.replicas["c0-n0"].height
    rid = sim.put(b"c", b"1", to=["c0-n0", "c0-n1", "c0-n2", "c0-n3"])
    # Under the censoring leader nothing is decided for longer than the censorship period (800 ms).
    assert not sim.run_until(lambda: sim.replicas["c0-n1"].height > h, 700)
    assert sim.replicas["c0-n0"].requests  # kept pooled
    assert sim.run_until(_done(sim, rid), 5000)
    assert all(sim.replicas[n].view >= 1 for n in ("c0-n1", "c0-n2", "c0-n3"))
    g = sim.get(b"c", to="c0-n2")
    assert sim.run_until(_done(sim, g), 5000)
    assert sim.answers[g].value == b"1"
    assert sim.logs_agree("c0")


class _FakeIO(LinkControlStub):
    """Collects what a Runtime sends (every link counts as connected)."""

    def __init__(self):
        self.out: list = []
        self.dial_nodes: list = []

    def send_node(self, node, data):
        self.out.append((node, codec.decode("PeerMessage", data)))

    def send_conn(self, link_id, data):
        self.out.append((link_id, codec.decode("PeerMessage", data)))

    def connected(self, node):
        return True


def _runtime(sim, node, faults=None):
    rt = Runtime(sim.m, node, Signer(sim.secrets[node]["ed25519"]), None, NodeLog(node, os.devnull, "error"),
                 FaultPlan(faults) if faults else None)
    rt.io = _FakeIO()
    return rt


def test_gapped_queue_reply_is_rejected_and_the_puller_moves_on():
    sim = Sim(seed=32)
    for i in range(3):  # one at a time: one shard decision (one queue seq for c0) each
        assert sim.run_until(_done(sim, sim.put(f"q{i}".encode(), b"v")), 5000)
    decisions = sim.stores["s0-n1"].decisions
    servers = {"s0-n1": _runtime(sim, "s0-n1", [{"action": "skip_queue_seq"}]), "s0-n2": _runtime(sim, "s0-n2")}
    for rt in servers.values():
        for d in decisions:
            rt._index(d)
    top = max(servers["s0-n1"].queue_index["c0"])
    assert top >= 3
    puller = _runtime(sim, "c0-n1")  # member 1 of c0 pulls from member 1 of s0 first
    got = []
    for _round in range(3):
        puller._tick_queues(1000)
        sent, puller.io.out = puller.io.out, []
        for to, pm in sent:
            assert pm.queue_pull is not None and pm.queue_pull.source_cluster == "s0"
            got.append((to, pm.queue_pull.from_seq))
            srv = servers[to]
            srv._serve_pull(7, "c0-n1", pm.queue_pull, 1000)
            (_link, reply), = srv.io.out
            srv.io.out.clear()
            if to == "s0-n1":  # the gap: from_seq + 1 onwards
                assert [cd.leaf.seq for cd in reply.queue_batch.decisions] == list(range(2, top + 1))
            puller._on_queue_batch(to, reply.queue_batch, 1000)
        if puller.replica.remote.get("s0"):
            break
    assert got == [("s0-n1", 1), ("s0-n2", 1)]
    # The next pull goes on from where the valid reply ended, to the member that served it.
    assert [(to, pm.queue_pull.from_seq) for to, pm in puller.io.out] == [("s0-n2", top + 1)]
    assert puller.log.rejected.get("out_of_order") == 1
    assert sorted(puller.replica.remote["s0"]) == list(range(1, top + 1))
    assert puller.replica.next_remote_seq("s0") == top + 1


FAULTS = {"c0-n0": [{"action": "censor_client", "clients": ["alice"]}],
          "s0-n1": [{"action": "skip_queue_seq"}]}


def test_faulty_nodes_report_rules_and_service_continues(tmp_path):
    net = Network(tmp_path / "tb", faults=FAULTS, clients=("alice", "bob"))
    try:
        net.start_all()
        for node, rules in FAULTS.items():
            assert net.status(node)["testbed_faults"] == rules
        assert net.status("c0-n1")["testbed_faults"] == []
        bob = Client(net.m, Signer(read_key_file(os.path.join(net.root, "keys", "bob.key"))), timeout_ms=30000)
        try:
            assert bob.put(b"tb-bob", b"1").value == b"1"  # bob is not censored
        finally:
            bob.close()
        before = net.status("c0-n1")
        alice = Client(net.m, Signer(read_key_file(net.key)), timeout_ms=30000)
        try:
            alice.put(b"tb-alice", b"2")
            assert alice.get(b"tb-alice").value == b"2"
            assert alice.get(b"tb-bob").value == b"1"
        finally:
            alice.close()
        after = {n: net.status(n) for n in net.m.clusters["c0"].members}
        assert all(st["leader"] != "c0-n0" for st in after.values())  # the censoring leader was replaced
        if before["leader"] == "c0-n0":
            assert min(st["view"] for st in after.values()) > before["view"]
    finally:
        net.close()


def test_drop_rules_apply_to_replies_on_the_request_connection():
    """sync_response and queue_batch go back on the request's connection, still through the rules."""
    sim = Sim(seed=33)
    assert sim.run_until(_done(sim, sim.put(b"d", b"v")), 5000)
    drop = [{"action": "drop", "messages": ["sync_response", "queue_batch"], "targets": ["c0-n2", "s0-n3"]}]
    plain, faulty = _runtime(sim, "s0-n1"), _runtime(sim, "s0-n1", drop)
    for rt in (plain, faulty):
        for d in sim.stores["s0-n1"].decisions:
            rt._index(d)
        rt.replica.height = len(sim.stores["s0-n1"].decisions)
        sync = codec.SyncRequest(cluster_id="s0", from_height=1, max_count=8)
        rt._serve_sync(4, "s0-n3", sync)  # a target: dropped
        rt._serve_sync(5, "s0-n2", sync)
        pull = codec.QueuePull(source_cluster="s0", destination="c0", from_seq=1, max_count=8)
        rt._serve_pull(6, "c0-n2", pull, 0)  # not a target of the rule
        rt._serve_pull(7, "c0-n1", pull, 0)
        rt._serve_pull(8, "c0-n2", pull, 0)  # a target: dropped
    kinds = [(link, pm.which()) for link, pm in plain.io.out]
    assert kinds == [(4, "sync_response"), (5, "sync_response"), (6, "queue_batch"), (7, "queue_batch"),
                     (8, "queue_batch")]
    assert all(pm.sync_response.decisions for _l, pm in plain.io.out[:2])
    assert [(link, pm.which()) for link, pm in faulty.io.out] == [(5, "sync_response"), (7, "queue_batch")]
