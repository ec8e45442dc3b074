"""deploy, plan, list, destroy."""

from __future__ import annotations

import time

import click
from rich.table import Table

from infra import ops
from infra.cli.common import (
    emit_json,
    err,
    out,
    output_option,
    print_plan_lines,
    print_verdicts,
    status_table,
    where,
)
from infra.errors import UsageError
from infra.model.manifest import parse_timeouts
from infra.model.planner import loss_reports, make_plan, plan_from_manifest, region_tolerance_problems
from infra.status import collect_status


def _modules(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    result = {}
    for p in pairs:
        impl, sep, module = p.partition("=")
        if not sep or not impl or not module:
            raise UsageError(f"--{what} {p!r} is not IMPL=MODULE")
        result[impl] = module
    return result


def placement_options(f):
    for opt in reversed([
        click.option("--regions", type=int, default=3, show_default=True),
        click.option("--coordinators", type=int, default=1, show_default=True),
        click.option("--shards", type=int, default=1, show_default=True),
        click.option("--nodes-per-cluster", type=int, default=4, show_default=True, help="3f+1: 4, 7, 10, ..."),
        click.option("--mix", default="alternate", show_default=True,
                     help="Implementations per cluster: alternate (a, b), diverse (a, b, c), a, b, c, or a "
                          "pattern like aabc."),
        click.option("--require-region-tolerance", is_flag=True,
                     help="Refuse a placement in which losing one region stops a cluster (the default 3 regions "
                          "for 4-node clusters is such a placement: use --regions 4)."),
    ]):
        f = opt(f)
    return f


@click.command()
@where
@click.option("--provider", type=click.Choice(ops.PROVIDERS), default="local", show_default=True)
@placement_options
@click.option("--testbed", is_flag=True, help="Mark the network as a testbed (allows Byzantine faults, SPEC 16).")
@click.option("--network", type=click.Choice(["loopback", "netns"]), default="loopback", show_default=True,
              help="loopback: 127.0.<region>.x; netns: a network namespace per region (root; allows partitions).")
@click.option("--latency-ms", type=int, default=0, show_default=True,
              help="One-way delay between every pair of regions (needs --network netns).")
@click.option("--health-timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for /health.")
@click.option("--node-module", multiple=True, metavar="IMPL=MODULE",
              help="Run MODULE instead of IMPL.node (e.g. a stand-in); repeatable.")
@click.option("--client-module", multiple=True, metavar="a|b=MODULE", help="Run MODULE instead of impl_x.client.")
@click.option("--timeout", "timeout_pairs", multiple=True, metavar="NAME=MS",
              help="Override a manifest timeout (SPEC 3), e.g. --timeout heartbeat_timeout=4000 for slow links; "
                   "repeatable.")
def deploy(name, home, provider, regions, coordinators, shards, nodes_per_cluster, mix, require_region_tolerance,
           testbed, network, latency_ms, health_timeout, node_module, client_module, timeout_pairs):
    """Plan, generate keys and manifest, start every node, wait until healthy."""
    with out.status("deploying...") as spinner:
        def progress(m: str) -> None:
            if not m.startswith("warning: "):  # the plan lines below repeat the warnings
                spinner.update(m)

        dep = ops.deploy(name, home, provider, regions, coordinators, shards, nodes_per_cluster, mix, testbed,
                         _modules(node_module, "node-module"), _modules(client_module, "client-module"),
                         health_timeout, progress=progress, network=network, latency_ms=latency_ms,
                         timeouts=parse_timeouts(timeout_pairs), require_region_tolerance=require_region_tolerance)
    clusters = collect_status(dep)
    out.print(status_table(dep, clusters))
    print_plan_lines(plan_from_manifest(dep.manifest))
    print_verdicts(clusters)
    out.print(f"deployment directory: {dep.root}")


@click.command()
@placement_options
@output_option()
def plan(regions, coordinators, shards, nodes_per_cluster, mix, require_region_tolerance, output):
    """Show a placement and what losing each region or implementation does, without deploying."""
    p = make_plan(regions, coordinators, shards, nodes_per_cluster, mix)
    problems = region_tolerance_problems(p)
    if output == "json":
        emit_json({"regions": p.regions,
                   "nodes": [{"id": n.id, "cluster": n.cluster, "role": n.role, "implementation": n.implementation,
                              "region": n.region} for n in p.nodes],
                   "losses": [{"kind": r.kind, "name": r.name, "line": r.line(), "survives": r.survives()}
                              for r in loss_reports(p)],
                   "region_tolerant": not problems})
    elif output == "value":
        for n in p.nodes:
            click.echo(f"{n.id}\t{n.implementation}\t{n.region}")
    else:
        t = Table()
        for col in ("cluster", "node", "implementation", "region"):
            t.add_column(col)
        for n in p.nodes:
            t.add_row(n.cluster, n.id, n.implementation, n.region)
        out.print(t)
        print_plan_lines(p)
    if problems and require_region_tolerance:
        raise UsageError("this placement cannot survive the loss of one region",
                         fix="use more regions (--regions 4 or more for 4-node clusters)")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


@click.command("list")
@click.option("--home", envvar="HERACLIUS_HOME", default=None, help="Directory holding deployments.")
@output_option()
@click.option("--no-probe", is_flag=True, help="Do not ask the nodes (health shows as unknown).")
def list_cmd(home, output, no_probe):
    """List deployments with provider, age and health."""
    infos = ops.inventory(home, probe=not no_probe and output != "value")
    if output == "json":
        emit_json({"deployments": [i.doc() for i in infos]})
        return
    if output == "value":
        for i in infos:
            click.echo(i.name)
        return
    if not infos:
        err.print("no deployments (create one with `heraclius-ops deploy`)")
        return
    t = Table()
    for col in ("name", "provider", "nodes", "age", "health", "path"):
        t.add_column(col)
    for i in infos:
        t.add_row(i.name, i.provider, str(i.nodes), _age(i.age_s), i.health, str(i.root))
    out.print(t)


@click.command()
@where
def destroy(name, home):
    """Stop every node and remove the deployment directory (idempotent; works without a manifest)."""
    t0 = time.monotonic()
    if ops.destroy(name, home, progress=lambda m: out.print(m)):
        out.print(f"destroyed deployment {name} ({time.monotonic() - t0:.1f} s)")
    else:
        out.print(f"no deployment {name}: nothing to do")
