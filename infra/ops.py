"""Top-level operations shared by the CLI, the demo, the monitor and tests. Each returns data.

deploy / destroy go through the provider interface (infra.providers); `inventory` lists the
deployments of a home with provider, age and health."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from infra import providers
from infra.errors import UsageError
from infra.model.deployment import (
    DEFAULT_NAME,
    Deployment,
    check_name,
    deployment_root,
    list_deployments,
    load_deployment,
    read_state,
)
from infra.model.planner import make_plan, region_tolerance_problems
from infra.providers import PROVIDERS, DeployOptions
from infra.providers.base import quiet

__all__ = ["PROVIDERS", "deploy", "destroy", "inventory", "DeploymentInfo"]


def deploy(name: str = DEFAULT_NAME, home=None, provider: str = "local", regions: int = 3, coordinators: int = 1,
           shards: int = 1, nodes_per_cluster: int = 4, mix: str = "alternate", testbed: bool = False,
           node_modules: dict[str, str] | None = None, client_modules: dict[str, str] | None = None,
           health_timeout: float = 30.0, progress=quiet, network: str = "loopback",
           latency_ms: int = 0, timeouts: dict[str, int] | None = None,
           require_region_tolerance: bool = False) -> Deployment:
    """Plan, write keys and manifest, start every node and wait until all are healthy.
    latency_ms (netns or docker): one-way delay between every pair of regions; timeouts: overrides of
    the manifest's `timeouts_ms` (checked like any manifest before anything starts);
    require_region_tolerance: refuse a placement in which losing one region stops a cluster."""
    check_name(name)
    impl = providers.get(provider)
    plan = make_plan(regions, coordinators, shards, nodes_per_cluster, mix)
    plan.timeouts_ms = dict(timeouts or {})
    problems = region_tolerance_problems(plan)
    if problems and require_region_tolerance:
        raise UsageError("this placement cannot survive the loss of one region: " + "; ".join(problems),
                         fix="use more regions (--regions 4 or more for 4-node clusters: at most f nodes of a "
                             "cluster per region) or drop --require-region-tolerance")
    for p in problems:
        progress(f"warning: {p}")
    options = DeployOptions(testbed=testbed, health_timeout=health_timeout, network=network,
                            latency_ms=latency_ms, node_modules=dict(node_modules or {}),
                            client_modules=dict(client_modules or {}))
    return impl.deploy(plan, name, home, options, progress)


def destroy(name: str = DEFAULT_NAME, home=None, progress=quiet) -> bool:
    """Stop every process the deployment ever started and remove its directory; False if it did not
    exist. Needs only state.json (a missing or corrupt manifest is fine; without state.json the local
    provider still finds its node processes by their command lines). Refuses to delete the directory
    while any node still runs (RemoteError-free: a UsageError with the pids and a fix)."""
    root = deployment_root(check_name(name), home)
    if not root.exists():
        return False
    state, problem = read_state(root)
    if problem:
        progress(f"warning: {problem}; looking for node processes by their command lines")
    provider = providers.get(state.get("provider", "local"))
    still = provider.destroy(root, state, progress)
    if still:
        raise UsageError(f"not removing {root}: {len(still)} node process(es) still run: {', '.join(still)}",
                         fix="stop them (kill -9 PID as their owner), then run `heraclius-ops destroy "
                             f"--name {name}` again")
    shutil.rmtree(root)
    return True


@dataclass
class DeploymentInfo:
    name: str
    root: Path
    provider: str
    created: float | None
    nodes: int
    health: str  # a verdict word of the worst cluster, or "unreadable: ..."

    @property
    def age_s(self) -> float | None:
        return None if self.created is None else max(0.0, time.time() - self.created)

    def doc(self) -> dict:
        return {"name": self.name, "path": str(self.root), "provider": self.provider, "created": self.created,
                "age_s": None if self.age_s is None else round(self.age_s), "nodes": self.nodes,
                "health": self.health}


def inventory(home=None, probe: bool = True, timeout: float = 1.0) -> list[DeploymentInfo]:
    """Every deployment of `home` with its provider, age and health (the worst cluster verdict;
    `probe=False` skips asking the nodes)."""
    from infra.status import collect_status, worst_verdict

    out = []
    for name in list_deployments(home):
        root = deployment_root(name, home)
        state, _ = read_state(root)
        info = DeploymentInfo(name, root, state.get("provider", "local"), state.get("created"),
                              len(state.get("nodes") or {}), "unknown")
        try:
            dep = load_deployment(name, home)
            info.nodes = len(dep.nodes)
            if probe:
                info.health = worst_verdict(collect_status(dep, timeout=timeout))
        except UsageError as e:
            info.health = f"unreadable: {e.message}"
        out.append(info)
    return out
