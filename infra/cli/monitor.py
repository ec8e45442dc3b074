"""`heraclius-ops monitor`: the composition root of the monitor. The monitor (tui) reads a deployment
through infra.model and never imports infra's operations; this command hands it the fault actions it
may perform (`fault_action`), so the dependency runs one way: infra.cli -> tui -> infra.model."""

from __future__ import annotations

from pathlib import Path

import click

from infra.cli.common import where
from infra.errors import OpsError, UsageError
from infra.model.deployment import Deployment, deployment_root
from infra.testbed import faults
from tui.errors import LocalError  # the monitor's error type for what it shows the operator

ACTIONS = ("crash", "pause", "resume", "restart", "partition", "heal")


def fault_action(deployment_dir: Path, action: str, node_id: str, region: str) -> str:
    """Run one of the monitor's fault keys on the deployment at `deployment_dir` (partition: cut off
    the node's region; heal: remove every partition); returns a summary. Failures come back as the
    monitor's LocalError with infra's message and fix, shown to the operator as is."""
    if action not in ACTIONS:
        raise LocalError(f"unknown fault action {action!r}")
    deployment_dir = Path(deployment_dir)
    try:
        dep = Deployment(deployment_dir.name, deployment_dir)
        if action == "partition":
            result = faults.partition(dep, [region])
        elif action == "heal":
            result = faults.heal(dep)
        else:
            result = getattr(faults, action)(dep, node_id)
    except OpsError as exc:
        fix = f" ({exc.fix})" if exc.fix else ""
        raise LocalError(f"{action} {node_id} failed: {exc.message}{fix}") from exc
    return f"{action} {node_id}: done" + (f" {result}" if result else "")


@click.command()
@where
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between polls.")
@click.option("--read-only", is_flag=True, help="No fault keys, even on a testbed deployment.")
def monitor(name, home, interval, read_only):
    """Open the live fault-tolerance monitor (Textual) on a deployment."""
    from tui.app import run as run_monitor  # imported here: only this command needs Textual

    root = deployment_root(name, home)
    if not (root / "manifest.json").is_file():
        raise UsageError(f"unknown deployment {name!r} (no {root / 'manifest.json'})",
                         fix="deploy one first: heraclius-ops deploy --regions 3, or pick --name/--home")
    Deployment(name, root)  # a corrupt manifest is a usage error before the screen opens
    run_monitor(root, poll_interval=interval, actions=None if read_only else fault_action)
