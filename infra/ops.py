"""Top-level operations shared by the CLI, the demo and tests: deploy and destroy by provider."""

from __future__ import annotations

import json

from infra import faults, implementations, local
from infra.deployment import DEFAULT_NAME, Deployment, check_name, deployment_root
from infra.errors import UsageError
from infra.planner import make_plan

PROVIDERS = ("local", "docker", "aws")


def deploy(name: str = DEFAULT_NAME, home=None, provider: str = "local", regions: int = 3, coordinators: int = 1,
           shards: int = 1, nodes_per_cluster: int = 4, mix: str = "alternate", testbed: bool = False,
           node_modules: dict[str, str] | None = None, client_modules: dict[str, str] | None = None,
           health_timeout: float = 30.0, progress=local._quiet, network: str = "loopback",
           latency_ms: int = 0, timeouts: dict[str, int] | None = None) -> Deployment:
    """Plan, write keys and manifest, start every node and wait until all are healthy.
    latency_ms (netns only): one-way delay between every pair of regions; timeouts: overrides of
    the manifest's `timeouts_ms` (checked like any manifest before anything starts)."""
    check_name(name)
    if provider not in PROVIDERS:
        raise UsageError(f"unknown provider {provider!r}", fix="use --provider local")
    if provider != "local":
        plan = make_plan(regions, coordinators, shards, nodes_per_cluster, mix)
        plan.timeouts_ms = dict(timeouts or {})
        return _cloud(provider).deploy(plan, name, home, testbed, health_timeout, progress, latency_ms)
    plan = make_plan(regions, coordinators, shards, nodes_per_cluster, mix)
    plan.timeouts_ms = dict(timeouts or {})
    progress(f"planned {len(plan.clusters)} clusters, {len(plan.nodes)} nodes in {len(plan.regions)} regions")
    for impl in sorted({n.implementation for n in plan.nodes} - set(node_modules or {})):
        implementations.ensure_built(implementations.get(impl))
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
    state = deployment_root(name, home) / "state.json"
    provider = json.loads(state.read_text()).get("provider", "local") if state.exists() else "local"
    if provider != "local":
        return _cloud(provider).destroy(name, home, progress)
    return local.destroy(check_name(name), home, progress)


def _cloud(provider: str):
    """The docker or aws provider module, imported only when used (docker SDK, boto3, ansible)."""
    if provider == "docker":
        from infra import docker_provider
        return docker_provider
    from infra.aws import provider as aws_provider
    return aws_provider
