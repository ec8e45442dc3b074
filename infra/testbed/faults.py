"""Fault injection through the provider interface: crash, stop, pause/resume, start/restart,
partition/heal and region latency, and testbed Byzantine rules (SPEC 16).

Node faults are the provider's (`infra.providers.base.Provider`): signals to local processes, the
engine's kill / stop / pause / unpause / start for docker containers, not implemented on aws.
Partitions and latency act on the provider's region layout (a netns deployment's namespaces or a
docker deployment's region bridges, both routed through the host), with the same host routing rules
(infra.testbed.netns); they need root.

Every function returns a small dict describing what was done; the monitor calls these too (the CLI
hands them to it)."""

from __future__ import annotations

import copy
import os
import shutil

from infra import providers
from infra.errors import UsageError
from infra.model.deployment import CLIENT_IDS, Deployment
from infra.model.manifest import fault_actions, validate_manifest, write_manifest
from infra.testbed import netns

BYZANTINE_ACTIONS = fault_actions()


def crash(dep: Deployment, node_id: str) -> dict:
    """kill -9: no chance to flush or close anything."""
    return providers.for_deployment(dep).kill(dep, node_id)


def stop(dep: Deployment, node_id: str) -> dict:
    """SIGTERM, SIGKILL after 5 s."""
    return providers.for_deployment(dep).stop(dep, node_id)


def pause(dep: Deployment, node_id: str) -> dict:
    """SIGSTOP (docker: cgroup freezer): the node keeps its sockets but answers nothing (a very slow node)."""
    return providers.for_deployment(dep).pause(dep, node_id)


def resume(dep: Deployment, node_id: str) -> dict:
    """SIGCONT a paused node; UsageError when it is not paused (a running node needs no resume)."""
    return providers.for_deployment(dep).resume(dep, node_id)


def start(dep: Deployment, node_id: str, timeout: float = 30.0) -> dict:
    """Start a stopped or crashed node with its old data dir and wait for /health."""
    return providers.for_deployment(dep).start(dep, node_id, timeout)


def restart(dep: Deployment, node_id: str, timeout: float = 30.0) -> dict:
    """Clean stop (if running), then start with the same data dir; waits for /health."""
    provider = providers.for_deployment(dep)
    dep.node(node_id)
    if provider.is_running(dep, node_id):
        provider.stop(dep, node_id)
    result = provider.start(dep, node_id, timeout)
    return {**result, "action": "restart"}


def region_layout(dep: Deployment) -> dict | None:
    """The region network layout partitions and delays act on, None for loopback and remote machines."""
    return providers.for_deployment(dep).region_layout(dep)


def partition_support(dep: Deployment) -> tuple[bool, str]:
    """Whether region partitions (and latency) can be emulated for `dep`, and why not."""
    provider = providers.for_deployment(dep)
    if provider.region_layout(dep) is None:
        if provider.name != "local":
            return False, f"region partitions are not implemented for the {provider.name} provider"
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
    dep.state["partitions"] = [list(p) for p in layout["partitions"]]  # provider-neutral, for the monitor
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
    dep.state["partitions"] = []
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
    `clients` (censor_client only): manifest client ids, or a/b/c for the three libraries' clients."""
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
