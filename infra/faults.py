"""Fault injection on a local deployment: crash, stop, pause/resume, start/restart, partition/heal
and region latency (`--network netns` deployments only) and testbed Byzantine rules (SPEC 16).

Every function returns a small dict describing what was done; the monitor calls these too."""

from __future__ import annotations

import copy
import shutil
import signal

from infra import local, netns, process
from infra.deployment import Deployment
from infra.errors import UsageError
from infra.manifest import validate_manifest, write_manifest

BYZANTINE_ACTIONS = ["drop", "delay", "duplicate", "mutate", "bad_signature", "equivocate", "tamper_compact",
                     "withhold_queue", "wrong_result", "false_client_response", "silent"]


def _require_local(dep: Deployment) -> None:
    if dep.provider != "local":
        raise UsageError(f"fault injection is only implemented for the local provider (this is {dep.provider})")


def _running_pid(dep: Deployment, node_id: str) -> int:
    _require_local(dep)
    n = dep.node(node_id)
    if not local.node_pid_alive(dep, node_id):
        raise UsageError(f"node {node_id} is not running (state: {n.status})",
                         fix=f"start it with `heraclius-ops fault start {node_id}`")
    assert n.pid is not None
    return n.pid


def crash(dep: Deployment, node_id: str) -> dict:
    """kill -9: no chance to flush or close anything."""
    pid = _running_pid(dep, node_id)
    process.send(pid, signal.SIGKILL)
    process.wait_exit(pid, 5.0, local.node_marker(dep, node_id))
    dep.set_node_state(node_id, status="crashed")
    return {"node": node_id, "action": "crash", "pid": pid}


def stop(dep: Deployment, node_id: str) -> dict:
    """SIGTERM, SIGKILL after 5 s."""
    _running_pid(dep, node_id)
    return {"node": node_id, "action": "stop", "result": local.stop_node(dep, node_id)}


def pause(dep: Deployment, node_id: str) -> dict:
    """SIGSTOP: the process keeps its sockets but answers nothing (a very slow node)."""
    pid = _running_pid(dep, node_id)
    process.send(pid, signal.SIGSTOP)
    dep.set_node_state(node_id, status="paused")
    return {"node": node_id, "action": "pause", "pid": pid}


def resume(dep: Deployment, node_id: str) -> dict:
    pid = _running_pid(dep, node_id)
    process.send(pid, signal.SIGCONT)
    dep.set_node_state(node_id, status="running")
    return {"node": node_id, "action": "resume", "pid": pid}


def start(dep: Deployment, node_id: str, timeout: float = 30.0) -> dict:
    """Start a stopped or crashed node with its old data dir and wait for /health."""
    _require_local(dep)
    pid = local.start_node(dep, node_id)
    local.wait_healthy(dep, [node_id], timeout)
    return {"node": node_id, "action": "start", "pid": pid}


def restart(dep: Deployment, node_id: str, timeout: float = 30.0) -> dict:
    """Clean stop (if running), then start with the same data dir; waits for /health."""
    _require_local(dep)
    if local.node_pid_alive(dep, node_id):
        local.stop_node(dep, node_id)
    result = start(dep, node_id, timeout)
    return {**result, "action": "restart"}


def partition_support(dep: Deployment) -> tuple[bool, str]:
    """Whether region partitions can be emulated for `dep`, and why not."""
    if dep.state.get("netns"):
        return True, "ok"
    return False, (
        "region partitions need a deployment made with `--network netns` (root): with per-region "
        "loopback addresses nodes dial from 127.0.0.1, so no rule can tell which region a packet comes "
        "from (wire_spec/errata/infra.md E1), and this host has no iptables/nft. Crash, stop, pause "
        "and Byzantine faults work.")


def partition(dep: Deployment, regions: list[str]) -> dict:
    """Cut `regions` off from every other region (packets silently dropped both ways)."""
    ok, why = partition_support(dep)
    if not ok:
        raise UsageError(f"cannot partition {', '.join(regions)}: {why}",
                         fix="deploy with --network netns, or emulate a lost region with `fault crash`/`fault pause`")
    layout = dep.state["netns"]
    added = netns.partition(layout, regions)
    dep.save_state()
    return {"action": "partition", "regions": regions, "cut": added, "active": layout["partitions"]}


def delay(dep: Deployment, region_a: str, region_b: str, ms: int) -> dict:
    """One-way latency of `ms` between two regions, both directions (0 removes it). netns only."""
    if not dep.state.get("netns"):
        raise UsageError("latency needs a deployment made with `--network netns` (root)",
                         fix="deploy with --network netns")
    layout = dep.state["netns"]
    netns.set_delay(layout, region_a, region_b, ms, dep.root / "delays.json", dep.log_path("delayd"))
    dep.save_state()
    return {"action": "delay", "regions": [region_a, region_b], "ms": ms, "active": dict(layout["delays"])}


def heal(dep: Deployment) -> dict:
    ok, why = partition_support(dep)
    if not ok:
        raise UsageError(f"nothing to heal: {why}")
    healed = netns.heal(dep.state["netns"])
    dep.save_state()
    return {"action": "heal", "healed": healed}


def byzantine(dep: Deployment, node_id: str, rules: list[dict], timeout: float = 30.0) -> dict:
    """Set the node's SPEC 16 `faults` rules in the (shared) manifest and restart that node.
    An empty list clears its rules. Only for deployments made with --testbed."""
    if not dep.testbed:
        raise UsageError(f"deployment {dep.name!r} is not a testbed (manifest testbed is false)",
                         fix="deploy with `heraclius-ops deploy --testbed` to use Byzantine faults")
    dep.node(node_id)
    manifest = copy.deepcopy(dep.manifest)
    for c in manifest["clusters"]:
        for n in c["nodes"]:
            if n["id"] == node_id:
                if rules:
                    n["faults"] = rules
                else:
                    n.pop("faults", None)
    validate_manifest(manifest)
    backup = dep.manifest_path.with_suffix(".bak")
    shutil.copyfile(dep.manifest_path, backup)
    write_manifest(dep.manifest_path, manifest)
    result = restart(dep, node_id, timeout)
    return {**result, "action": "byzantine", "rules": rules}


def byzantine_rule(action: str, messages: list[str] | None = None, targets: list[str] | None = None,
                   probability: float | None = None, delay_ms: int | None = None, seed: int | None = None) -> dict:
    """One SPEC 16 rule with only the given fields (absent fields take the spec defaults)."""
    if action not in BYZANTINE_ACTIONS:
        raise UsageError(f"unknown Byzantine action {action!r}", fix=f"use one of: {', '.join(BYZANTINE_ACTIONS)}")
    rule: dict = {"action": action}
    for k, v in (("messages", messages), ("targets", targets), ("probability", probability),
                 ("delay_ms", delay_ms), ("seed", seed)):
        if v:
            rule[k] = v
    return rule
