"""Crash, kill -9, view-change, catch-up and Byzantine scenarios with impl_c (Go) nodes in both
clusters, on one three-implementation network:

    c0 = c,a,b,c   impl_c leads view 0, impl_a view 1; c0-n3 is an impl_c follower
    s0 = b,c,a,c   impl_b leads view 0, impl_c takes over in view 1; s0-n3 is an impl_c follower

Every workload uses impl_c's client library as well as impl_a's and impl_b's. Each test leaves
every node running, its rules cleared and the views re-united, so the next one starts healthy."""

from __future__ import annotations

import pytest

from infra.testbed import faults
from tests.faults.conftest import C, S
from tests.testbed import scenario as sc

NETWORK = [sc.ClusterSpec("c0", C, "cabc"), sc.ClusterSpec("s0", S, "bcac")]
CLUSTERS = ("c0", "s0")


@pytest.fixture(autouse=True)
def healthy(net):
    for c in CLUSTERS:
        sc.heal_views(net, c)
    yield
    rules = {n.id: [] for n in net.nodes if "faults" in _manifest_node(net, n.id)}
    if rules:
        sc.set_rules(net, rules)


def _manifest_node(net, node_id: str) -> dict:
    return next(n for c in net.manifest["clusters"] for n in c["nodes"] if n["id"] == node_id)


def impl(net, node_id: str) -> str:
    return net.node(node_id).implementation


def impl_c_follower(net, cluster: str) -> str:
    """The last impl_c member of `cluster` that is not its leader."""
    ld = sc.wait_leader(net, cluster)
    return [n.id for n in net.cluster_nodes(cluster) if n.implementation == "impl_c" and n.id != ld][-1]


def test_network_has_impl_c_leader_and_followers(net, tmp_path):
    """Normal case: impl_c leads c0 in view 0 with impl_a, impl_b and impl_c followers; the three
    client libraries' operations are linearizable and the logs byte-identical."""
    assert sc.wait_leader(net, "c0") == "c0-n0" and impl(net, "c0-n0") == "impl_c"
    assert {impl(net, n.id) for c in CLUSTERS for n in net.cluster_nodes(c)} == {"impl_a", "impl_b", "impl_c"}
    sc.checked_workload(net, tmp_path / "h.jsonl", "ic-", ops=16, keys=4, clients=("c", "a", "b"))
    for c in CLUSTERS:
        sc.assert_logs_identical(net, c, min_height=2)
    assert sc.evidence(net) == []


def test_impl_c_followers_crash_and_restart(net, tmp_path):
    """Crash (kill -9) of the impl_c follower of each cluster between workloads: the other three
    keep deciding, the crashed nodes restart from their bbolt data, catch up and hold the same
    log; the history across the crash is linearizable."""
    h = tmp_path / "h.jsonl"
    down = [impl_c_follower(net, c) for c in CLUSTERS]
    sc.checked_workload(net, h, "cr-", ops=8, keys=4, clients=("c",))
    for node_id in down:
        faults.crash(net, node_id)
    sc.checked_workload(net, h, "cr-", ops=8, keys=4, clients=("a", "c"), seed=3)
    sc.start(net, down)
    sc.checked_workload(net, h, "cr-", ops=6, keys=4, clients=("b",), seed=7)
    for c in CLUSTERS:
        sc.assert_logs_identical(net, c)


def test_impl_c_leader_crash_view_change(net, tmp_path):
    """kill -9 of the impl_c leader of c0 and of the impl_b leader of s0 after some decisions:
    c0 moves to impl_a's c0-n1 and s0 to impl_c's s0-n1 (view 1), both serve (linearizable history
    through impl_c's client), and the old leaders restart, follow the new view and catch up."""
    h = tmp_path / "h.jsonl"
    sc.checked_workload(net, h, "vc-", ops=8, keys=4, clients=("c",))
    old = {c: sc.wait_leader(net, c) for c in CLUSTERS}
    assert impl(net, old["c0"]) == "impl_c", old
    for node_id in old.values():
        faults.crash(net, node_id)
    sc.checked_workload(net, h, "vc-", ops=8, keys=4, clients=("c", "b"), seed=5, timeout_ms=25000)
    new = {c: sc.wait_leader(net, c, other_than=old[c]) for c in CLUSTERS}
    for c in CLUSTERS:  # leaders rotate by view (SPEC 12.6); from view 0, s0's next is impl_c's s0-n1
        members = [n.id for n in net.cluster_nodes(c)]
        view = sc.node_status(net, new[c])["view"]
        assert new[c] == members[view % len(members)], (c, view, new[c])
    sc.start(net, list(old.values()))
    for c in CLUSTERS:
        sc.assert_logs_identical(net, c)
    try:
        for c in CLUSTERS:
            sc.wait_for(lambda c=c: (sc.node_status(net, old[c]) or {}).get("leader") == new[c], 20,
                        f"{old[c]} to follow {new[c]}")
    except AssertionError as e:
        raise AssertionError(f"{e}: {[sc.view_table(net, c) for c in CLUSTERS]}") from None
    assert sc.kv(net, "a", "put", "vc-after", "x").get("value") == "x"
    assert sc.kv(net, "c", "get", "vc-after").get("value") == "x"


def test_impl_c_follower_catches_up(net, tmp_path):
    """Catch-up (SPEC 12.7): the impl_c follower of c0 is stopped (SIGTERM) and the impl_c follower
    of s0 paused (SIGSTOP) while ~24 operations are decided; once back they fetch what they missed
    from their peers of the other implementations: same height, byte-identical logs."""
    slow = impl_c_follower(net, "c0")
    frozen = impl_c_follower(net, "s0")
    faults.stop(net, slow)
    faults.pause(net, frozen)
    try:
        sc.checked_workload(net, tmp_path / "h.jsonl", "cu-", ops=8, keys=4, clients=("c", "a", "b"),
                            timeout_ms=25000)
    finally:
        faults.resume(net, frozen)
    sc.start(net, [slow])
    for c in CLUSTERS:
        sc.assert_logs_identical(net, c)


def test_impl_c_follower_misses_view_change_and_catches_up(net):
    """An impl_c follower down while its cluster changes view (the leader made idle by a heartbeat
    drop rule) and decides, restarts, catches up and joins the current view."""
    ld = sc.wait_leader(net, "s0")
    away = impl_c_follower(net, "s0")
    faults.crash(net, away)
    sc.set_rules(net, {ld: [{"action": "drop", "messages": ["heartbeat"]}]})
    new = sc.wait_leader(net, "s0", timeout=40, other_than=ld)
    if new == away:
        new = sc.wait_leader(net, "s0", timeout=40, other_than=away)
    assert sc.kv(net, "c", "put", "mv-c", "v", timeout_ms=30000).get("value") == "v"
    sc.set_rules(net, {ld: []})
    sc.start(net, [away])
    sc.assert_logs_identical(net, "s0")
    try:
        sc.wait_for(lambda: sc.in_one_view(net, "s0"), 20, f"{away} to join the current view")
    except AssertionError as e:
        raise AssertionError(f"{e}: {sc.view_table(net, 's0')}") from None


def test_kill9_every_node_under_load(net, tmp_path):
    """impl_c's and impl_a's client libraries run workloads; every node (four of them impl_c) is
    killed with -9 mid-run and restarted. Nothing acknowledged is lost (final reads in a
    linearizable history), the network serves again, the logs agree."""
    sc.kill9_every_node_under_load(net, tmp_path, "ca", "c", CLUSTERS)


def test_impl_c_equivocating_leader(net, tmp_path):
    """Byzantine (SPEC 16 `equivocate`): an impl_c leader of c0 sends a second, different valid
    proposal for a height to a follower of another implementation. Operations through all three
    client libraries succeed and are linearizable, no fork, and that follower records
    `equivocation` evidence naming the impl_c leader."""
    members = [n.id for n in net.cluster_nodes("c0")]

    def next_leader() -> str:
        view = sc.node_status(net, sc.wait_leader(net, "c0"))["view"]
        return members[(view + 1) % len(members)]
    for _ in range(len(members)):  # move on until the next view's leader is an impl_c member
        if impl(net, next_leader()) == "impl_c":
            break
        sc.rotate_leader(net, "c0")
    ld = next_leader()
    assert impl(net, ld) == "impl_c", sc.view_table(net, "c0")
    target = next(m for m in reversed(members) if m != ld and impl(net, m) != "impl_c")
    assert sc.faulty_leader(net, "c0", [{"action": "equivocate", "targets": [target]}]) == ld
    sc.checked_workload(net, tmp_path / "h.jsonl", "eq-", ops=12, keys=4, concurrency=4, clients=("c", "a", "b"))
    sc.assert_logs_identical(net, "c0")
    ev = [e for e in sc.evidence(net, members) if e["kind"] == "equivocation"]
    assert ev and all(e["node_id"] == ld for e in ev), ev
    assert any(e["reporter"] == target for e in ev), ev
