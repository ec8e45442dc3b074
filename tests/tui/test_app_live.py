"""Drive the monitor headless (App.run_test) against fake nodes over real HTTP."""

from __future__ import annotations

import json
import time

from infra.model.verdict import Verdict
from tests.tui.pilot_helpers import cell, events_text, sync, wait_until
from tui.app import MonitorApp
from tui.demo import evidence_id
from tui.widgets.cluster_table import ClusterTable
from tui.widgets.confirm_screen import ConfirmScreen
from tui.widgets.node_detail import NodeDetailScreen
from tui.widgets.node_table import NodeTable
from tui.widgets.status_bar import StatusBar


def make_app(path, **kwargs) -> MonitorApp:
    kwargs.setdefault("poll_interval", 0.1)
    # generous: on a loaded machine a healthy fake node must never look down
    kwargs.setdefault("timeout", 2.0)
    return MonitorApp(path, **kwargs)


@sync
async def test_node_that_stops_answering_turns_down(fake_deployment):
    app = make_app(fake_deployment.path, stall_after_s=60)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.state.polls >= 2)
        clusters = app.query_one(ClusterTable)
        assert cell(clusters, "s0", "verdict") == "✔ healthy"
        assert cell(clusters, "s0", "margin") == "1"
        fake_deployment["s0-n2"].stop()
        await wait_until(pilot, lambda: app.state.clusters["s0"].assessment.verdict is Verdict.AT_RISK)
        await pilot.pause()
        assert cell(clusters, "s0", "verdict") == "▲ at-risk"
        assert cell(clusters, "s0", "faults") == "1"
        assert cell(clusters, "s0", "margin") == "0"
        assert cell(clusters, "c0", "verdict") == "✔ healthy"
        text = events_text(app)
        assert "s0-n2 down: /status: connection refused" in text
        assert "s0 healthy → ▲ at-risk" in text
        # the node table shows the down node once s0 is selected
        await pilot.press("down")
        await pilot.pause()
        assert cell(app.query_one(NodeTable), "s0-n2", "state") == "✖ down"
        assert cell(app.query_one(NodeTable), "s0-n1", "state") == "● up"
        # a second node stopping stalls the cluster
        fake_deployment["s0-n3"].stop()
        await wait_until(pilot, lambda: app.state.clusters["s0"].assessment.verdict is Verdict.STALLED)
        await pilot.pause()
        assert cell(clusters, "s0", "verdict") == "✖ stalled"
        assert "2 of 4 up, quorum needs 3" in app.state.clusters["s0"].assessment.why
        assert "s0-n3 down" in events_text(app)


@sync
async def test_slow_or_invalid_nodes_count_as_down(fake_deployment):
    fake_deployment["c0-n1"].mode = "invalid"
    fake_deployment["c0-n2"].mode = "hang"
    app = make_app(fake_deployment.path, stall_after_s=60)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.state.polls >= 1)
        health = app.state.clusters["c0"]
        assert health.down == {"c0-n1", "c0-n2"}
        assert health.assessment.verdict is Verdict.STALLED
        rows = {r.spec.id: r for r in health.rows}
        assert "/status invalid at height" in rows["c0-n1"].error
        assert "timed out after 2s" in rows["c0-n2"].error
        assert "c0-n1 unreachable: /status invalid" in events_text(app)
        fake_deployment["c0-n1"].mode = "ok"
        fake_deployment["c0-n2"].mode = "ok"
        await wait_until(pilot, lambda: app.state.clusters["c0"].assessment.verdict is Verdict.HEALTHY)
        await pilot.pause()
        assert "c0-n1 up at height 10" in events_text(app)


@sync
async def test_rates_view_changes_and_evidence(fake_deployment):
    app = make_app(fake_deployment.path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.state.polls >= 2)
        for nid in ("c0-n0", "c0-n1", "c0-n2", "c0-n3"):
            node = fake_deployment[nid]
            node.advance(decisions=5, replies=10 if nid == "c0-n1" else 0)
            node.status["view"] = 1
            node.status["leader"] = "c0-n1"
            node.status["counters"]["view_changes"] = 1
        signed = ["0a0263301001", "0a0263301002"]
        record = {"id": evidence_id(signed), "node_id": "c0-n0", "kind": "equivocation",
                  "detail": "two proposals for view 0 height 11", "time_ms": int(time.time() * 1000),
                  "messages_hex": signed}
        fake_deployment["c0-n2"].status["byzantine_evidence"] = [record]
        # the same misdeed seen later by another member: same id, one event
        fake_deployment["c0-n3"].status["byzantine_evidence"] = [{**record, "time_ms": record["time_ms"] + 7}]
        await wait_until(pilot, lambda: app.state.clusters["c0"].view == 1)
        await pilot.pause()
        assert app.state.history.decision_rate["c0"] and max(app.state.history.decision_rate["c0"]) > 0
        assert max(app.state.history.ops_rate) > 0
        assert app.state.clusters["c0"].view_changes == 1
        text = events_text(app)
        assert "c0 view 0 → 1, leader c0-n1" in text
        assert "c0-n0 equivocation (seen by c0-n2): two proposals for view 0 height 11" in text
        assert "signed 0a0263301001, 0a0263301002" in text
        assert text.count("equivocation") == 1
        assert app.state.clusters["c0"].assessment.verdict is Verdict.AT_RISK
        assert cell(app.query_one(NodeTable), "c0-n0", "state") == "! byz"


@sync
async def test_missing_deployment_keeps_running_then_recovers(tmp_path, fake_deployment):
    target = tmp_path / "later"
    app = make_app(target)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.state.polls >= 2)
        bar = str(app.query_one(StatusBar).content)
        assert "deployment unreachable" in bar and "no manifest at" in bar
        assert "deployment unreadable" in events_text(app)
        target.mkdir()
        (target / "manifest.json").write_text(json.dumps(fake_deployment.manifest))
        await wait_until(pilot, lambda: bool(app.state.clusters))
        await pilot.pause()
        assert "8/8 nodes up" in str(app.query_one(StatusBar).content)
        assert "deployment readable again" in events_text(app)


@sync
async def test_node_detail_shows_status_and_log_tail(fake_deployment):
    log = fake_deployment.path / "logs" / "c0-n0.log"
    log.write_text(json.dumps({"ts": "2026-11-26T06:00:00.123Z", "level": "info", "node": "c0-n0",
                               "event": "ready", "msg": "listening"}) + "\n")
    app = make_app(fake_deployment.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.state.polls >= 1)
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, NodeDetailScreen))
        screen = app.screen
        await wait_until(pilot, lambda: "06:00:00.123 info ready listening"
                         in str(screen.query_one("#log-body").content))
        status = str(screen.query_one("#status-body").content)  # shown from the last poll at once
        assert '"node_id": "c0-n0"' in status and '"crypto_backend"' in status
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, NodeDetailScreen))


@sync
async def test_fault_keys_confirm_then_call_infra(fake_deployment):
    calls = []

    def actions(path, action, node, region):
        calls.append((path, action, node, region))
        return f"{action} {node}: done"

    app = make_app(fake_deployment.path, actions=actions)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.state.polls >= 1)
        await pilot.press("tab", "down")  # nodes table, second node
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        await pilot.pause(0.2)
        assert calls == []
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Pause (SIGSTOP) node c0-n1?" in str(app.screen.query_one("Static").content)
        await pilot.press("y")
        await wait_until(pilot, lambda: calls)
        assert calls == [(fake_deployment.path, "pause", "c0-n1", "eu-west")]


@sync
async def test_fault_keys_disabled_without_testbed(fake_production):
    calls = []
    app = make_app(fake_production.path, actions=lambda *a: calls.append(a) or "")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.state.polls >= 1)
        await pilot.press("c", "r")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmScreen)
        assert calls == []
        assert app.check_action("fault", ("crash",)) is False


@sync
async def test_cluster_with_backlog_and_no_progress_is_stalled(fake_deployment):
    for i in range(4):
        fake_deployment[f"c0-n{i}"].status["queues"]["next_out"] = {"s0": 40}  # 39 leaves for s0
        fake_deployment[f"s0-n{i}"].status["queues"]["next_in"] = {"c0": 1}
    app = make_app(fake_deployment.path, stall_after_s=1.0)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.state.clusters.get("s0") is not None
                         and app.state.clusters["s0"].assessment.verdict is Verdict.STALLED)
        await pilot.pause()
        why = app.state.clusters["s0"].assessment.why
        assert "with 39 queued from c0" in why and why.startswith("no decision for")
        assert app.state.clusters["c0"].assessment.verdict is Verdict.HEALTHY  # idle, nothing pending
        assert cell(app.query_one(ClusterTable), "s0", "verdict") == "✖ stalled"
        for i in range(4):  # s0 takes the leaves in and decides
            fake_deployment[f"s0-n{i}"].advance(decisions=2)
            fake_deployment[f"s0-n{i}"].status["queues"]["next_in"] = {"c0": 40}
        await wait_until(pilot, lambda: app.state.clusters["s0"].assessment.verdict is Verdict.HEALTHY)
        assert "s0 stalled → ✔ healthy" in events_text(app)


@sync
async def test_off_spec_node_stays_up_and_is_flagged(fake_deployment):
    del fake_deployment["s0-n1"].status["pending"]  # e.g. a node built against an older schema
    app = make_app(fake_deployment.path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.state.polls >= 1)
        await pilot.press("down")  # s0
        await pilot.pause()
        assert cell(app.query_one(NodeTable), "s0-n1", "state") == "⚠ spec"
        assert app.state.clusters["s0"].assessment.verdict is Verdict.HEALTHY
        assert "s0-n1 /status off-spec at document: 'pending' is a required property" in events_text(app)
        fake_deployment["s0-n1"].status["pending"] = {"requests": 0, "remote": 0}
        await wait_until(pilot, lambda: "s0-n1 /status follows the spec again" in events_text(app))
        await pilot.pause()
        assert cell(app.query_one(NodeTable), "s0-n1", "state") == "● up"
