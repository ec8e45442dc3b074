"""Unit tests of the metrics parser, status check, log tail, events diff and loss analysis."""

import json

import pytest

from infra.errors import UsageError
from infra.model.topology import load_topology as load_deployment
from infra.model.verdict import Verdict
from tui import metrics_text
from tui.demo import demo_manifest, demo_statuses, status_doc, write_deployment
from tui.errors import RemoteError
from tui.logfile import format_log_line, tail_log
from tui.snapshot import NodeSample, Snapshot
from tui.state import MonitorState
from tui.status_check import check_status

METRICS = """\
# HELP heraclius_height last decided height
# TYPE heraclius_height gauge
heraclius_height{node="c0-n0",cluster="c0"} 42
heraclius_decisions_total{node="c0-n0",cluster="c0"} 44
heraclius_rejected_total{node="c0-n0",cluster="c0",reason="stale"} 3
heraclius_rejected_total{node="c0-n0",cluster="c0",reason="bad_signature"} 2 1795672800000
heraclius_peer_up{node="c0-n0",cluster="c0",peer="c0-n1"} 1
weird{node="a\\"b"} +Inf
"""


def test_metrics_parse_and_sum():
    samples = metrics_text.parse(METRICS)
    assert metrics_text.total(samples, "heraclius_decisions_total") == 44
    assert metrics_text.total(samples, "heraclius_missing") is None
    assert metrics_text.by_label(samples, "heraclius_rejected_total", "reason") == {
        "stale": 3, "bad_signature": 2}
    assert samples[-1].label("node") == 'a"b'


@pytest.mark.parametrize("bad", ["heraclius_height{node=c0} 1", "heraclius_height 1 2 3", "x{a=\"1\"} abc"])
def test_metrics_malformed_line_is_remote_error(bad):
    with pytest.raises(RemoteError):
        metrics_text.parse(bad)


def test_status_check_accepts_valid_and_rejects_invalid():
    doc = status_doc("c0-n0", "c0", "coordinator", ["c0-n1"], height=3)
    assert check_status(doc, "c0-n0") == (doc, None)
    assert check_status(doc, "c0-n0", "c0", "heraclius-demo")[1] is None
    with pytest.raises(RemoteError, match="node_id is 'c0-n0', expected 'c0-n1'"):
        check_status(doc, "c0-n1")
    with pytest.raises(RemoteError, match="cluster_id is 'c0', expected 's0'"):
        check_status(doc, "c0-n0", "s0")
    with pytest.raises(RemoteError, match="network_id"):
        check_status(doc, "c0-n0", "c0", "other-net")
    with pytest.raises(RemoteError, match="invalid at height"):
        check_status({**doc, "height": -1}, "c0-n0")
    with pytest.raises(RemoteError, match="invalid at view"):
        check_status({**doc, "view": "1"}, "c0-n0")
    with pytest.raises(RemoteError, match="not a JSON object"):
        check_status([doc], "c0-n0")


def test_status_check_off_spec_is_usable_and_sanitised():
    doc = status_doc("c0-n0", "c0", "coordinator", ["c0-n1"], height=3)
    bad = {**doc, "rejected": {"made_up_reason": 1}}
    assert check_status(bad, "c0-n0")[1].startswith("/status off-spec at rejected")
    older = {k: v for k, v in doc.items() if k != "pending"}
    clean, violation = check_status(older, "c0-n0")
    assert violation == "/status off-spec at document: 'pending' is a required property"
    assert clean["pending"] == {}
    broken = {**doc, "peers": "none", "counters": {"decisions": "many", "view_changes": 2},
              "queues": None, "last_decision_ms": "x"}
    clean, violation = check_status(broken, "c0-n0")
    assert violation is not None
    assert (clean["peers"], clean["counters"], clean["queues"], clean["last_decision_ms"]) == (
        [], {"view_changes": 2}, {"next_in": {}, "next_out": {}}, 0)


def test_load_deployment_errors_are_local(tmp_path):
    with pytest.raises(UsageError, match="no manifest"):
        load_deployment(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(UsageError, match="cannot read"):
        load_deployment(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"clusters": []}))
    with pytest.raises(UsageError, match="invalid manifest"):
        load_deployment(tmp_path)


def test_load_deployment_reads_nodes(tmp_path):
    dep = load_deployment(write_deployment(tmp_path, demo_manifest()))
    assert [c.id for c in dep.clusters] == ["c0", "s0", "s1"]
    assert dep.testbed and dep.regions == ("us-east", "eu-west", "ap-south")
    n1 = dep.cluster("s0").nodes[1]
    assert (n1.id, n1.impl_letter, n1.region, n1.role) == ("s0-n1", "B", "eu-west", "shard")


def test_three_implementations_have_letters_and_badges(tmp_path):
    """Every implementation of the registry gets its letter and a badge colour of its own; the
    demo's impl_c node (c0-n3) shows as C, and its /status names its Go backend."""
    dep = load_deployment(write_deployment(tmp_path, demo_manifest()))
    by_impl = {n.implementation: n for n in dep.nodes}
    assert sorted(by_impl) == ["impl_a", "impl_b", "impl_c"]
    assert {i: n.impl_letter for i, n in by_impl.items()} == {"impl_a": "A", "impl_b": "B", "impl_c": "C"}
    styles = {n.impl_style for n in by_impl.values()}
    assert len(styles) == 3 and "" not in styles
    assert by_impl["impl_c"].id == "c0-n3"
    assert demo_statuses(0)["c0-n3"]["implementation"] == "impl_c"
    assert "Go" in demo_statuses(0)["c0-n3"]["crypto_backend"]


def test_tail_log_and_format(tmp_path):
    log = tmp_path / "n.log"
    lines = [json.dumps({"ts": f"2026-11-26T06:00:0{i}.123Z", "level": "info", "node": "n",
                         "event": "decided", "msg": "ok", "height": i}) for i in range(5)]
    log.write_text("\n".join(lines) + "\n")
    tail = tail_log(log, lines=2)
    assert [json.loads(x)["height"] for x in tail] == [3, 4]
    assert format_log_line(tail[-1]) == "06:00:04.123 info decided ok height=4"
    assert format_log_line("plain text") == "plain text"
    assert tail_log(tmp_path / "absent.log") == []


def _snapshot(dep, step, overrides=None):
    docs = demo_statuses(step)
    docs.update(overrides or {})
    samples = {nid: NodeSample(nid, status=d) if d else NodeSample(nid, error="refused")
               for nid, d in docs.items()}
    return Snapshot(taken_ms=1_000_000 + 1000 * step, deployment=dep, samples=samples)


def test_state_diff_produces_events_and_verdicts(tmp_path):
    dep = load_deployment(write_deployment(tmp_path, demo_manifest()))
    state = MonitorState()
    first = state.ingest(_snapshot(dep, 0))
    assert first == []
    assert {h.assessment.verdict for h in state.clusters.values()} == {Verdict.HEALTHY}
    new = state.ingest(_snapshot(dep, 2))
    kinds = sorted(e.kind for e in new)
    assert kinds == ["byzantine", "node_down", "verdict", "verdict", "view_change"]
    byz = next(e for e in new if e.kind == "byzantine")
    assert byz.node == "c0-n0" and "equivocation" in byz.text and byz.detail.startswith("0a02")
    assert state.clusters["s1"].assessment.verdict is Verdict.AT_RISK
    assert state.clusters["s1"].assessment.margin == 0
    assert state.clusters["c0"].view == 1 and state.clusters["c0"].leader == "c0-n1"
    # the same evidence is not reported twice; a recovered node is
    again = state.ingest(_snapshot(dep, 3, {"s1-n3": demo_statuses(1)["s1-n3"]}))
    assert [e.kind for e in again] == ["node_up", "verdict"]
    assert state.clusters["s1"].assessment.verdict is Verdict.HEALTHY
    # testbed fault rules appearing and disappearing on a node are events too
    rigged = demo_statuses(3)
    rigged["s0-n1"]["testbed_faults"] = [{"action": "equivocate"}, {"action": "drop", "messages": ["commit"]}]
    assert [e.text for e in state.ingest(_snapshot(dep, 3, rigged))] == [
        "s0-n1 testbed faults: equivocate, drop", "s1-n3 down: refused",
        "s0 healthy → ▲ at-risk: testbed fault rules on s0-n1; one more fault stops it",
        "s1 healthy → ▲ at-risk: 1 down: s1-n3; one more fault stops it"]
    # a node running testbed rules is a fault, as in `heraclius-ops status` (one verdict rule)
    assert state.clusters["s0"].assessment.faulty == ("s0-n1",)
    assert [e.text for e in state.ingest(_snapshot(dep, 3))] == [
        "s0-n1 testbed faults cleared", "s0 at-risk → ✔ healthy: all 4 up"]


def test_rates_from_counters(tmp_path):
    dep = load_deployment(write_deployment(tmp_path, demo_manifest()))
    state = MonitorState()
    state.ingest(_snapshot(dep, 0))
    state.ingest(_snapshot(dep, 1))
    assert state.history.rate("c0") == pytest.approx(3.0)  # 3 heights in 1 s
    assert state.history.ops_per_s == pytest.approx(30.0)  # c0-n1 replies 400 -> 430
    state.ingest(_snapshot(dep, 2))
    assert list(state.history.ops_rate) == pytest.approx([30.0, 45.0])


def test_stall_detected_from_queue_backlog(tmp_path):
    dep = load_deployment(write_deployment(tmp_path, demo_manifest()))
    state = MonitorState(stall_after_ms=5_000)
    frozen = demo_statuses(1)
    for doc in frozen.values():
        doc["pending"] = {"requests": 0, "remote": 0}
        if doc["cluster_id"] == "c0":
            doc["queues"]["next_out"]["s0"] = 90  # 90 leaves for s0, which took far fewer
            doc["pending"]["requests"] = 5 if doc["node_id"] == "c0-n2" else 0
    for step in range(0, 8):
        samples = {nid: NodeSample(nid, status=d) for nid, d in frozen.items()}
        state.ingest(Snapshot(taken_ms=2_000_000 + 1000 * step, deployment=dep, samples=samples))
    s0 = state.clusters["s0"].assessment
    assert s0.verdict is Verdict.STALLED and "queued from c0" in s0.why
    c0 = state.clusters["c0"].assessment
    assert c0.verdict is Verdict.STALLED and "with 5 requests pooled" in c0.why
    assert state.clusters["s1"].assessment.verdict is Verdict.HEALTHY  # nothing waiting: idle


def test_loss_scenarios(tmp_path):
    dep = load_deployment(write_deployment(tmp_path, demo_manifest()))
    state = MonitorState()
    state.ingest(_snapshot(dep, 0))
    by_label = {s.label: s.impacts for s in state.losses}
    assert set(by_label) == {"us-east", "eu-west", "ap-south", "impl_a", "impl_b", "impl_c"}
    # us-east holds n0 and n3 of each cluster: losing it stalls all; eu-west holds one node each
    assert {a.verdict for a in by_label["us-east"].values()} == {Verdict.STALLED}
    assert {a.verdict for a in by_label["eu-west"].values()} == {Verdict.AT_RISK}
    assert by_label["impl_b"]["s0"].up == 2


def test_loss_scenarios_agree_with_infra_planner_when_nothing_is_faulty(tmp_path):
    planner = pytest.importorskip("infra.model.planner")
    manifest = demo_manifest()
    dep = load_deployment(write_deployment(tmp_path, manifest))
    state = MonitorState()
    state.ingest(_snapshot(dep, 0))
    ours = {s.label: s.impacts for s in state.losses}
    expected = {"unaffected": {Verdict.HEALTHY}, "degraded": {Verdict.DEGRADED, Verdict.AT_RISK},
                "stops": {Verdict.STALLED}}
    reports = planner.loss_reports(planner.plan_from_manifest(manifest))
    assert {r.name for r in reports} == set(ours)
    for report in reports:
        for impact in report.impacts:
            assert ours[report.name][impact.cluster].verdict in expected[impact.verdict]
            assert ours[report.name][impact.cluster].margin == impact.margin_after


def test_partitions_from_state_json_count_as_faults(tmp_path):
    """The monitor applies status's rule to partitions too: nodes cut off from their cluster's main side
    (state.json `partitions`, written by infra's fault functions) are faults while they still answer."""
    from infra.model.deployment import read_partitions

    root = write_deployment(tmp_path, demo_manifest())
    cut = [["ap-south", "us-east"], ["ap-south", "eu-west"]]
    (root / "state.json").write_text(json.dumps({"provider": "local", "partitions": cut}))
    assert read_partitions(root) == cut
    dep = load_deployment(root)
    state = MonitorState()
    snap = _snapshot(dep, 3)
    state.ingest(Snapshot(taken_ms=snap.taken_ms, deployment=dep, samples=snap.samples,
                          partitions=tuple(tuple(p) for p in cut)))
    s0 = state.clusters["s0"].assessment
    assert (s0.verdict, s0.faulty, s0.up) == (Verdict.AT_RISK, ("s0-n2",), 4)  # n2 sits in ap-south
    assert "partitioned off s0-n2" in s0.why
    (root / "state.json").write_text("{broken")
    assert read_partitions(root) == []
