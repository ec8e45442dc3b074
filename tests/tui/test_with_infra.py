"""The monitor on a real local deployment made by infra (stand-in node processes from
tests/infra/fake_node.py), with its fault keys calling infra's fault functions for real."""

from __future__ import annotations

import pytest

from infra.cli.monitor import fault_action
from infra.model.verdict import Verdict
from tests.tui.pilot_helpers import cell, events_text, sync, wait_until
from tui.app import MonitorApp
from tui.errors import LocalError
from tui.widgets.cluster_table import ClusterTable
from tui.widgets.confirm_screen import ConfirmScreen

ops = pytest.importorskip("infra.ops", reason="infra's local provider is not available")
STAND_IN = {"impl_a": "tests.infra.fake_node", "impl_b": "tests.infra.fake_node"}


@pytest.fixture
def infra_deployment(tmp_path):
    home = tmp_path / "deployments"
    try:
        yield ops.deploy("mon", home, testbed=True, node_modules=STAND_IN, health_timeout=30)
    finally:
        ops.destroy("mon", home)


@sync
async def test_crash_and_restart_keys_on_real_processes(infra_deployment):
    app = MonitorApp(infra_deployment.root, poll_interval=0.2, stall_after_s=60, timeout=2.0, actions=fault_action)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.state.polls >= 2 and app.state.up_count == (8, 8))
        assert app.state.clusters["c0"].assessment.verdict is Verdict.HEALTHY
        assert app.state.history.rate("c0") > 0  # stand-in heights grow every 0.2 s
        await pilot.press("tab", "down", "c")  # nodes of c0, second node: c0-n1
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: "c0-n1" in app.state.clusters["c0"].down, timeout=20)
        await pilot.pause()
        assert app.state.clusters["c0"].assessment.verdict is Verdict.AT_RISK
        assert cell(app.query_one(ClusterTable), "c0", "margin") == "0"
        assert "c0-n1 down: /status: connection refused" in events_text(app)
        await pilot.press("r")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: not app.state.clusters["c0"].down, timeout=40)
        await pilot.pause()
        assert app.state.clusters["c0"].assessment.verdict is Verdict.HEALTHY
        assert "c0-n1 up at height" in events_text(app)
    # partitions need a netns deployment: infra's refusal comes back as a local error, verbatim
    with pytest.raises(LocalError, match="partition c0-n0 failed: cannot partition us-east"):
        fault_action(infra_deployment.root, "partition", "c0-n0", "us-east")
