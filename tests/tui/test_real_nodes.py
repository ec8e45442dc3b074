"""The monitor on a real mixed impl_a/impl_b network deployed by infra: a workload shows up as
client throughput and decision rates, crashing a node with the `c` key turns it down, and restarting
it with the `r` key brings the cluster back to healthy."""

from __future__ import annotations

import threading

import pytest

from infra.cli.monitor import fault_action
from infra.model.verdict import Verdict
from tests.tui.pilot_helpers import events_text, sync, wait_until
from tui.app import MonitorApp
from tui.widgets.confirm_screen import ConfirmScreen

ops = pytest.importorskip("infra.ops", reason="infra's local provider is not available")
client = pytest.importorskip("infra.nodes.client")


@pytest.fixture
def real_deployment(tmp_path):
    home = tmp_path / "deployments"
    try:
        yield ops.deploy("monreal", home, testbed=True, health_timeout=60)
    finally:
        ops.destroy("monreal", home)


@sync
async def test_workload_and_crash_on_real_nodes(real_deployment):
    dep = real_deployment
    app = MonitorApp(dep.root, poll_interval=0.5, stall_after_s=60, timeout=2.0, actions=fault_action)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.state.polls >= 2 and app.state.up_count == (8, 8), timeout=30)
        assert {h.assessment.verdict for h in app.state.clusters.values()} == {Verdict.HEALTHY}
        result = {}
        worker = threading.Thread(target=lambda: result.setdefault(
            "w", client.workload(dep, "a", ops=60, concurrency=4, keys=4, seed=3)), daemon=True)
        worker.start()
        await wait_until(pilot, lambda: not worker.is_alive(), timeout=60)
        await pilot.pause(1.2)  # at least two more polls
        assert result["w"].ok, result["w"].doc
        assert max(app.state.history.ops_rate) > 0
        assert max(app.state.history.decision_rate["s0"]) > 0
        assert app.state.clusters["s0"].height > 0
        await pilot.press("tab", "down", "down", "c")  # c0-n2
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: "c0-n2" in app.state.clusters["c0"].down, timeout=20)
        assert app.state.clusters["c0"].assessment.verdict is Verdict.AT_RISK
        assert app.state.clusters["c0"].assessment.margin == 0
        assert "c0-n2 down" in events_text(app)
        await pilot.press("r")  # restart the crashed c0-n2, same data dir
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.state.clusters["c0"].down, timeout=60)
        await wait_until(pilot, lambda: app.state.clusters["c0"].assessment.verdict is Verdict.HEALTHY, timeout=30)
        assert app.state.clusters["c0"].assessment.margin == 1
        assert "c0-n2 up" in events_text(app)
