"""Fault injection on local and docker deployments: crash, stop, pause/resume, start/restart,
partition/heal and region latency, and testbed Byzantine rules (SPEC 16).

local: signals to the node processes; partitions and latency need `--network netns`.
docker: the engine's kill -s KILL / stop / pause / unpause / start on the node containers; partitions
and latency are the same host routing rules as netns, because regions are bridges routed through the
host (root needed for those). aws: not implemented (the nodes are remote machines).

Every function returns a small dict describing what was done; the monitor calls these too."""

from __future__ import annotations

import copy
import os
import shutil
import signal

from infra import local, netns, process
from infra.deployment import CLIENT_IDS, Deployment
from infra.errors import UsageError
from infra.manifest import fault_actions, validate_manifest, write_manifest
from infra.status import region_layout

BYZANTINE_ACTIONS = fault_actions()
ALIVE = ("running", "paused")


def _docker(dep: Deployment):
    """The docker provider module for a docker deployment (imported only then), else None."""
    if dep.provider == "docker":
        from infra import docker_provider
        return docker_provider
    if dep.provider != "local":
        raise UsageError(f"fault injection is implemented for the local and docker providers (this is "
                         f"{dep.provider})", fix="on aws, stop or reboot the node's instance with the AWS tools")
    return None


def _running_pid(dep: Deployment, node_id: str) -> int:
    n = dep.node(node_id)
    if not local.node_pid_alive(dep, node_id):
        raise UsageError(f"node {node_id} is not running (state: {n.status})",
                         fix=f"start it with `heraclius-ops fault start {node_id}`")
    assert n.pid is not None
    return n.pid


def crash(dep: Deployment, node_id: str) -> dict:
    """kill -9: no chance to flush or close anything."""
    dp = _docker(dep)
    if dp:
        return {"node": node_id, "action": "crash", "result": dp.kill_node(dep, node_id)}
    pid = _running_pid(dep, node_id)
    process.send(pid, signal.SIGKILL)
    process.wait_exit(pid, 5.0, local.node_marker(dep, node_id))
    dep.set_node_state(node_id, status="crashed")
    return {"node": node_id, "action": "crash", "pid": pid}


def stop(dep: Deployment, node_id: str) -> dict:
    """SIGTERM, SIGKILL after 5 s."""
    dp = _docker(dep)
    if dp:
        client = dp.engine.connect()
        dp.node_container(dep, node_id, client, ALIVE)
        return {"node": node_id, "action": "stop", "result": dp.stop_node(dep, node_id, client=client)}
    _running_pid(dep, node_id)
    return {"node": node_id, "action": "stop", "result": local.stop_node(dep, node_id)}


def pause(dep: Deployment, node_id: str) -> dict:
    """SIGSTOP (docker: cgroup freezer): the node keeps its sockets but answers nothing (a very slow node)."""
    dp = _docker(dep)
    if dp:
        return {"node": node_id, "action": "pause", "result": dp.pause_node(dep, node_id)}
    pid = _running_pid(dep, node_id)
    process.send(pid, signal.SIGSTOP)
    dep.set_node_state(node_id, status="paused")
    return {"node": node_id, "action": "pause", "pid": pid}


def resume(dep: Deployment, node_id: str) -> dict:
    dp = _docker(dep)
    if dp:
        return {"node": node_id, "action": "resume", "result": dp.unpause_node(dep, node_id)}
    pid = _running_pid(dep, node_id)
    process.send(pid, signal.SIGCONT)
    dep.set_node_state(node_id, status="running")
    return {"node": node_id, "action": "resume", "pid": pid}


def start(dep: Deployment, node_id: str, timeout: float = 30.0) -> dict:
    """Start a stopped or crashed node with its old data dir and wait for /health."""
    dp = _docker(dep)
    if dp:
        client = dp.engine.connect()
        result = dp.restart_node(dep, node_id, client)
        dp.wait_healthy(dep, [node_id], timeout, client=client)
        return {"node": node_id, "action": "start", "result": result}
    pid = local.start_node(dep, node_id)
    local.wait_healthy(dep, [node_id], timeout)
    return {"node": node_id, "action": "start", "pid": pid}


def restart(dep: Deployment, node_id: str, timeout: float = 30.0) -> dict:
    """Clean stop (if running), then start with the same data dir; waits for /health."""
    dp = _docker(dep)
    if dp:
        client = dp.engine.connect()
        if dp.container_state(dep, node_id, client) in ALIVE:
            dp.stop_node(dep, node_id, client=client)
    elif local.node_pid_alive(dep, node_id):
        local.stop_node(dep, node_id)
    result = start(dep, node_id, timeout)
    return {**result, "action": "restart"}


def partition_support(dep: Deployment) -> tuple[bool, str]:
    """Whether region partitions (and latency) can be emulated for `dep`, and why not."""
    _docker(dep)
    if region_layout(dep) is None:
        return False, (
            "region partitions need a deployment made with `--network netns` (root): with per-region "
            "loopback addresses nodes dial from 127.0.0.1, so no rule can tell which region a packet comes "
            "from (wire_spec/errata/infra.md E1), and this host has no iptables/nft. Crash, stop, pause "
            "and Byzantine faults work.")
    if os.geteuid() != 0:
        return False, "region partitions and latency are host routing rules (`ip rule`): they need root"
    return True, "ok"


def _layout_or_fail(dep: Deployment, what: str) -> dict:
    ok, why = partition_support(dep)
    if not ok:
        raise UsageError(f"cannot {what}: {why}",
                         fix="deploy with --network netns (local) or --provider docker, as root; or emulate a "
                             "lost region with `fault crash`/`fault pause`")
    layout = region_layout(dep)
    assert layout is not None
    return layout


def partition(dep: Deployment, regions: list[str]) -> dict:
    """Cut `regions` off from every other region (packets silently dropped both ways)."""
    layout = _layout_or_fail(dep, f"partition {', '.join(regions)}")
    added = netns.partition(layout, regions)
    dep.save_state()
    return {"action": "partition", "regions": regions, "cut": added, "active": layout["partitions"]}


def delay(dep: Deployment, region_a: str, region_b: str, ms: int) -> dict:
    """One-way latency of `ms` between two regions, both directions (0 removes it)."""
    layout = _layout_or_fail(dep, "add latency")
    netns.set_delay(layout, region_a, region_b, ms, dep.root / "delays.json", dep.log_path("delayd"))
    dep.save_state()
    return {"action": "delay", "regions": [region_a, region_b], "ms": ms, "active": dict(layout["delays"])}


def heal(dep: Deployment) -> dict:
    layout = _layout_or_fail(dep, "heal")
    healed = netns.heal(layout)
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
                   probability: float | None = None, delay_ms: int | None = None, seed: int | None = None,
                   clients: list[str] | None = None) -> dict:
    """One SPEC 16 rule with only the given fields (absent fields take the spec defaults).
    `clients` (censor_client only): manifest client ids, or a/b for the two libraries' clients."""
    if action not in BYZANTINE_ACTIONS:
        raise UsageError(f"unknown Byzantine action {action!r}", fix=f"use one of: {', '.join(BYZANTINE_ACTIONS)}")
    if action == "censor_client" and not clients:
        raise UsageError("censor_client needs the clients to censor", fix="add --clients a (or a manifest client id)")
    if clients and action != "censor_client":
        raise UsageError("--clients only applies to censor_client")
    clients = [CLIENT_IDS.get(c, c) for c in clients or []]
    rule: dict = {"action": action}
    for k, v in (("messages", messages), ("targets", targets), ("probability", probability),
                 ("delay_ms", delay_ms), ("seed", seed), ("clients", clients)):
        if v:
            rule[k] = v
    return rule
