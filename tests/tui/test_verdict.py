"""Unit tests of the pure verdict logic (infra.model.verdict)."""

import pytest

from infra.model.verdict import Verdict, assess, faults_tolerated


@pytest.mark.parametrize("n,f", [(4, 1), (7, 2), (10, 3), (5, 1), (1, 0)])
def test_faults_tolerated(n, f):
    assert faults_tolerated(n) == f


def test_all_up_is_healthy():
    a = assess(4, down=[])
    assert (a.verdict, a.f, a.faults, a.margin, a.up) == (Verdict.HEALTHY, 1, 0, 1, 4)
    assert "all 4 up" in a.why


def test_one_down_of_four_is_at_risk():
    a = assess(4, down=["n3"])
    assert (a.verdict, a.faults, a.margin, a.up) == (Verdict.AT_RISK, 1, 0, 3)
    assert "n3" in a.why and "one more fault stops it" in a.why


def test_two_down_of_four_is_stalled():
    a = assess(4, down=["n2", "n3"])
    assert a.verdict is Verdict.STALLED
    assert a.margin == -1
    assert "2 of 4 up, quorum needs 3" in a.why


def test_seven_nodes_degrade_before_risk():
    assert assess(7, down=["a"]).verdict is Verdict.DEGRADED
    assert assess(7, down=["a"]).margin == 1
    assert "can absorb 1 more" in assess(7, down=["a"]).why
    assert assess(7, down=["a", "b"]).verdict is Verdict.AT_RISK
    assert assess(7, down=["a", "b", "c"]).verdict is Verdict.STALLED


def test_byzantine_node_counts_as_fault_while_up():
    a = assess(4, down=[], byzantine=["n0"])
    assert (a.verdict, a.faults, a.up) == (Verdict.AT_RISK, 1, 4)
    assert "Byzantine evidence against n0" in a.why


def test_down_and_byzantine_same_node_counts_once():
    a = assess(4, down=["n0"], byzantine=["n0"])
    assert a.faults == 1 and a.verdict is Verdict.AT_RISK


def test_more_byzantine_than_f_is_stalled_even_with_quorum_up():
    a = assess(4, down=[], byzantine=["n0", "n1"])
    assert a.verdict is Verdict.STALLED
    assert "2 faults exceed f=1" in a.why


def test_no_progress_with_pending_work_is_stalled():
    a = assess(4, down=[], pending_work=["3 queued from c0"], still_for_ms=12_000, stall_after_ms=10_000)
    assert a.verdict is Verdict.STALLED
    assert "no decision for 12s with 3 queued from c0" in a.why


def test_no_progress_without_pending_work_is_idle_not_stalled():
    assert assess(4, down=[], pending_work=[], still_for_ms=600_000).verdict is Verdict.HEALTHY


def test_pending_work_recently_advanced_is_not_stalled():
    a = assess(4, down=[], pending_work=["a view change"], still_for_ms=9_999, stall_after_ms=10_000)
    assert a.verdict is Verdict.HEALTHY


def test_labels_carry_symbol_and_word():
    for v in Verdict:
        assert v.symbol in v.label and v.word in v.label
    assert len({v.symbol for v in Verdict}) == 4


def test_one_spelling_for_cli_json_and_monitor():
    assert Verdict.AT_RISK.word == "at-risk" and Verdict.of("at-risk") is Verdict.AT_RISK
    assert [v.word for v in Verdict] == ["healthy", "degraded", "at-risk", "stalled"]


def test_view_change_degrades_a_cluster_without_faults():
    a = assess(4, down=[], in_view_change=True)
    assert (a.verdict, a.faults, a.margin) == (Verdict.DEGRADED, 0, 1)
    assert "view change" in a.why
    assert assess(4, down=["n1"], in_view_change=True).verdict is Verdict.AT_RISK  # faults decide first


def test_testbed_rules_and_partitions_are_faults():
    a = assess(7, down=[], testbed_rules=["n0"], cut_off=["n5", "n6"])
    assert (a.verdict, a.faults, a.faulty) == (Verdict.STALLED, 3, ("n0", "n5", "n6"))
    assert "testbed fault rules on n0" in a.why and "partitioned off n5, n6" in a.why


def test_cli_and_monitor_judge_the_same_cluster_alike():
    """infra.status.ClusterStatus and the monitor's health both call assess with the same inputs."""
    from types import SimpleNamespace

    from infra.status import ClusterStatus, NodeStatus

    def node(i, up=True, vc=False, rules=()):
        info = SimpleNamespace(id=f"c0-n{i}", cluster="c0", region="r")
        st = {"view": 1, "leader": "c0-n0", "height": 5, "in_view_change": vc, "testbed_faults": list(rules),
              "byzantine_evidence": []}
        return NodeStatus(info, "running" if up else "down", st if up else None)

    cases = [([node(0), node(1), node(2), node(3)], {}),
             ([node(0, vc=True), node(1), node(2), node(3)], {"in_view_change": True}),
             ([node(0, up=False), node(1), node(2), node(3)], {"down": ["c0-n0"]}),
             ([node(0, rules=[{"action": "drop"}]), node(1), node(2), node(3)], {"testbed_rules": ["c0-n0"]})]
    from pathlib import Path

    from infra.model.topology import ClusterSpec, NodeSpec, Topology
    from tui.health import cluster_health
    from tui.snapshot import NodeSample, Snapshot

    spec = ClusterSpec("c0", "coordinator", tuple(NodeSpec(f"c0-n{i}", "c0", "coordinator", "impl_a", "r",
                                                             "127.0.0.1", 1) for i in range(4)))
    topo = Topology(Path("."), "net", True, ("r",), (spec,), 0)
    for nodes, kwargs in cases:
        cli = ClusterStatus("c0", "coordinator", nodes)
        snap = Snapshot(1000, topo, {s.node.id: NodeSample(s.node.id, status=s.status) if s.up
                                     else NodeSample(s.node.id, error="refused") for s in nodes})
        monitor = cluster_health(topo, snap, spec, 0, 10_000, set()).assessment
        assert (cli.verdict, cli.margin, cli.faulty) == (monitor.verdict.word, monitor.margin, list(monitor.faulty))
        assert monitor == assess(4, **{"down": [], **kwargs}), kwargs
