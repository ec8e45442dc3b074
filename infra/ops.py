"""Top-level operations shared by the CLI, the demo and tests: deploy and destroy by provider."""

from __future__ import annotations

from infra import faults, local
from infra.deployment import DEFAULT_NAME, Deployment, check_name
from infra.errors import UsageError
from infra.planner import make_plan

PROVIDERS = ("local", "docker", "aws")


def deploy(name: str = DEFAULT_NAME, home=None, provider: str = "local", regions: int = 3, coordinators: int = 1,
           shards: int = 1, nodes_per_cluster: int = 4, mix: str = "alternate", testbed: bool = False,
           node_modules: dict[str, str] | None = None, client_modules: dict[str, str] | None = None,
           health_timeout: float = 30.0, progress=local._quiet, network: str = "loopback",
           latency_ms: int = 0) -> Deployment:
    """Plan, write keys and manifest, start every node and wait until all are healthy.
    latency_ms (netns only): one-way delay between every pair of regions."""
    check_name(name)
    if provider not in PROVIDERS:
        raise UsageError(f"unknown provider {provider!r}", fix="use --provider local")
    if provider != "local":
        raise UsageError(f"provider {provider!r} is not implemented yet", fix="use --provider local")
    plan = make_plan(regions, coordinators, shards, nodes_per_cluster, mix)
    progress(f"planned {len(plan.clusters)} clusters, {len(plan.nodes)} nodes in {len(plan.regions)} regions")
    dep = local.create(plan, name, home, testbed, node_modules, progress, network)
    if latency_ms:
        if network != "netns":
            local.destroy(name, home)
            raise UsageError("--latency-ms needs --network netns")
        for i, a in enumerate(plan.regions):
            for b in plan.regions[i + 1:]:
                faults.delay(dep, a, b, latency_ms)
        progress(f"{latency_ms} ms one-way latency between regions")
    if client_modules:
        dep.state["client_modules"] = client_modules
        dep.save_state()
    return local.start_all(dep, health_timeout, progress)


def destroy(name: str = DEFAULT_NAME, home=None, progress=local._quiet) -> bool:
    """Stop everything and remove the deployment directory; False if it did not exist."""
    return local.destroy(check_name(name), home, progress)
