"""The monitor's single bridge to infra's fault functions (infra/faults.py).

infra is imported lazily so the monitor runs (read-only) where infra is absent. Every failure comes
back as a LocalError whose message can be shown to the operator as is.
"""

from __future__ import annotations

from pathlib import Path

from tui.errors import LocalError

ACTIONS = ("crash", "pause", "resume", "restart", "partition", "heal")


def perform(deployment_dir: Path, action: str, node_id: str, region: str) -> str:
    """Run `action` on node `node_id` (partition: cut off the node's region; heal: remove every
    partition); returns a summary."""
    if action not in ACTIONS:
        raise LocalError(f"unknown fault action {action!r}")
    try:
        from infra import faults
        from infra.deployment import Deployment
    except ImportError as exc:
        raise LocalError(f"fault injection unavailable: cannot import infra ({exc})") from exc
    deployment_dir = Path(deployment_dir)
    try:
        dep = Deployment(deployment_dir.name, deployment_dir)
        if action == "partition":
            result = faults.partition(dep, [region])
        elif action == "heal":
            result = faults.heal(dep)
        else:
            result = getattr(faults, action)(dep, node_id)
    except LocalError:
        raise
    except Exception as exc:  # infra reports misuse with its own error types; show them verbatim
        fix = getattr(exc, "fix", None)
        raise LocalError(f"{action} {node_id} failed: {exc}" + (f" ({fix})" if fix else "")) from exc
    return f"{action} {node_id}: done" + (f" {result}" if result else "")
