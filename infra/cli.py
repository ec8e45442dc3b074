"""heraclius-ops: a thin click wrapper over the infra library (tables and progress with rich)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infra import faults as fault_ops
from infra import history as hist
from infra import ops, process
from infra.bench_cli import bench_cmd
from infra.client import final_reads as read_all
from infra.client import kv_get, kv_put, workload
from infra.deployment import DEFAULT_NAME, deployment_root, list_deployments, load_deployment
from infra.errors import OpsError, RemoteError, UsageError
from infra.manifest import parse_timeouts
from infra.planner import loss_reports, make_plan, plan_from_manifest
from infra.status import collect_status, network_lines, network_summary, status_document

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True, highlight=False, soft_wrap=True)
VERDICT_STYLE = {"healthy": "green", "degraded": "yellow", "at-risk": "bold yellow", "stalled": "bold red"}


def where(f):
    f = click.option("--home", envvar="HERACLIUS_HOME", default=None,
                     help="Directory holding deployments [env HERACLIUS_HOME, default ./deployments].")(f)
    return click.option("--name", default=DEFAULT_NAME, show_default=True, help="Deployment name.")(f)


def _modules(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    result = {}
    for p in pairs:
        impl, sep, module = p.partition("=")
        if not sep or not impl or not module:
            raise UsageError(f"--{what} {p!r} is not IMPL=MODULE")
        result[impl] = module
    return result


def print_plan_lines(plan) -> None:
    for c in plan.clusters:
        out.print(f"cluster {c.id} ({c.role}): n={c.n}, f={c.f}, fault-tolerance margin {c.f}")
    for r in loss_reports(plan):
        out.print(f"  {r.line()}")
        if r.kind == "implementation":
            out.print(f"  {r.byzantine_line()}")


def status_table(dep, clusters) -> Table:
    t = Table(title=f"deployment {dep.name} ({dep.provider})")
    for col in ("cluster", "node", "implementation", "region", "address", "health", "view", "leader", "height"):
        t.add_column(col)
    for c in clusters:
        for s in c.nodes:
            st = s.status or {}
            health = "[green]up[/]" if s.up else f"[red]{s.process}[/]"
            t.add_row(c.id, s.node.id, s.node.implementation, s.node.region,
                      f"{s.node.host}:{s.node.ports['peer']}", health, str(st.get("view", "-")),
                      str(st.get("leader", "-")), str(st.get("height", "-")))
    return t


def print_network(dep) -> None:
    for line in network_lines(network_summary(dep)):
        out.print(line)


def print_verdicts(clusters) -> None:
    for c in clusters:
        for s in c.nodes:
            if s.warnings:
                more = f" (+{len(s.warnings) - 1} more)" if len(s.warnings) > 1 else ""
                out.print(f"[yellow]{s.node.id}: /status does not follow status.schema.json: "
                          f"{escape(s.warnings[0])}{more}[/]")
        if c.cut_off:
            out.print(f"cluster {c.id}: partitioned off: {', '.join(sorted(c.cut_off))}")
        style = VERDICT_STYLE[c.verdict]
        faulty = f" ({', '.join(c.faulty)})" if c.faulty else ""
        out.print(f"cluster {c.id} ({c.role}): f={c.f}, faults now {c.faults_now}{faulty}, margin {c.margin}, "
                  f"height {c.height}, leader {c.leader or '-'}: [{style}]{c.verdict}[/]")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """Deploy, inspect and break Heraclius test networks."""


@cli.command()
@where
@click.option("--provider", type=click.Choice(ops.PROVIDERS), default="local", show_default=True)
@click.option("--regions", type=int, default=3, show_default=True)
@click.option("--coordinators", type=int, default=1, show_default=True)
@click.option("--shards", type=int, default=1, show_default=True)
@click.option("--nodes-per-cluster", type=int, default=4, show_default=True, help="3f+1: 4, 7, 10, ...")
@click.option("--mix", default="alternate", show_default=True,
              help="Implementations per cluster: alternate (a, b), diverse (a, b, c), a, b, c, or a pattern like aabc.")
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
def deploy(name, home, provider, regions, coordinators, shards, nodes_per_cluster, mix, testbed,
           network, latency_ms, health_timeout, node_module, client_module, timeout_pairs):
    """Plan, generate keys and manifest, start every node, wait until healthy."""
    with out.status("deploying...") as spinner:
        dep = ops.deploy(name, home, provider, regions, coordinators, shards, nodes_per_cluster, mix, testbed,
                         _modules(node_module, "node-module"), _modules(client_module, "client-module"),
                         health_timeout, progress=lambda m: spinner.update(m), network=network,
                         latency_ms=latency_ms, timeouts=parse_timeouts(timeout_pairs))
    clusters = collect_status(dep)
    out.print(status_table(dep, clusters))
    print_plan_lines(plan_from_manifest(dep.manifest))
    print_verdicts(clusters)
    out.print(f"deployment directory: {dep.root}")


@cli.command()
@click.option("--regions", type=int, default=3, show_default=True)
@click.option("--coordinators", type=int, default=1, show_default=True)
@click.option("--shards", type=int, default=1, show_default=True)
@click.option("--nodes-per-cluster", type=int, default=4, show_default=True)
@click.option("--mix", default="alternate", show_default=True)
def plan(regions, coordinators, shards, nodes_per_cluster, mix):
    """Show a placement and what losing each region or implementation does, without deploying."""
    p = make_plan(regions, coordinators, shards, nodes_per_cluster, mix)
    t = Table()
    for col in ("cluster", "node", "implementation", "region"):
        t.add_column(col)
    for n in p.nodes:
        t.add_row(n.cluster, n.id, n.implementation, n.region)
    out.print(t)
    print_plan_lines(p)


@cli.command()
@where
@click.option("--json", "as_json", is_flag=True, help="Print the status document as JSON.")
def status(name, home, as_json):
    """Read /status of every node; judge each cluster healthy/degraded/at-risk/stalled."""
    dep = load_deployment(name, home)
    clusters = collect_status(dep)
    if as_json:
        doc = status_document(clusters)
        doc["network"] = network_summary(dep)
        click.echo(json.dumps(doc, indent=2))
        return
    out.print(status_table(dep, clusters))
    print_network(dep)
    print_verdicts(clusters)


@cli.command("list")
@click.option("--home", envvar="HERACLIUS_HOME", default=None)
def list_cmd(home):
    """List deployments."""
    for d in list_deployments(home):
        click.echo(d)


@cli.group()
def kv():
    """Read and write keys through a client library (SPEC 4.1 command line)."""


def _print_client(result):
    click.echo(json.dumps(result.doc))
    if not result.ok:
        sys.exit(1)


@kv.command("get")
@where
@click.option("--client", type=click.Choice(["a", "b"]), default="a", show_default=True)
@click.option("--hex", "hex_", is_flag=True, help="KEY is hex; the value is printed as hex.")
@click.argument("key")
def kv_get_cmd(name, home, client, hex_, key):
    """GET KEY."""
    _print_client(kv_get(load_deployment(name, home), key, client, hex_=hex_))


@kv.command("put")
@where
@click.option("--client", type=click.Choice(["a", "b"]), default="a", show_default=True)
@click.option("--hex", "hex_", is_flag=True, help="KEY and VALUE are hex.")
@click.argument("key")
@click.argument("value")
def kv_put_cmd(name, home, client, hex_, key, value):
    """PUT KEY VALUE."""
    _print_client(kv_put(load_deployment(name, home), key, value, client, hex_=hex_))


@cli.command("workload")
@where
@click.option("--client", type=click.Choice(["a", "b"]), default="a", show_default=True)
@click.option("--ops", "n_ops", type=int, default=200, show_default=True)
@click.option("--concurrency", type=int, default=4, show_default=True)
@click.option("--keys", type=int, default=16, show_default=True)
@click.option("--put-ratio", type=float, default=0.5, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--duration-s", type=float, default=None)
@click.option("--key-prefix", default=None,
              help="Key names are PREFIX + index [client default: k; with --history a fresh prefix].")
@click.option("--pattern", type=click.Choice(["uniform", "payments"]), default=None,
              help="payments: each user does GET a, GET b, PUT a, PUT b on two keys [client default: uniform].")
@click.option("--history", type=click.Path(path_type=Path), default=None,
              help="Append the operation history here and check it afterwards.")
@click.option("--final-reads", is_flag=True,
              help="With --history: afterwards GET every key once, so lost writes are detectable.")
def workload_cmd(name, home, client, n_ops, concurrency, keys, put_ratio, seed, duration_s, key_prefix, pattern,
                 history, final_reads):
    """Run the SPEC 4.1 workload through a client library and print its summary."""
    dep = load_deployment(name, home)
    if history is not None and key_prefix is None:
        # the checker must see every write of the keys it checks: start on keys nobody wrote yet
        key_prefix = f"h{int(time.time())}-"
        out.print(f"history run on fresh keys {key_prefix}0..{keys - 1} (set --key-prefix to choose)")
    with out.status(f"workload via client {client}..."):
        result = workload(dep, client, n_ops, concurrency, keys, put_ratio, seed, duration_s, key_prefix, history,
                          pattern=pattern)
    click.echo(json.dumps(result.doc))
    if history is not None and final_reads:
        names = [f"{key_prefix or 'k'}{i}" for i in range(keys)]
        with out.status(f"final reads of {keys} keys..."):
            n = read_all(dep, client, names, history)
        out.print(f"final reads: {n}/{keys} ok")
    if history is not None:
        report = hist.check_history(hist.load_history(history))
        out.print(report.summary())
        for v in report.violations[:10]:
            out.print(f"  {v.kind} key {v.key}: {v.detail}")
    if not result.ok:
        sys.exit(1)


@cli.command("check-history")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def check_history_cmd(files):
    """Check workload histories: lost writes, stale reads, reads going backwards."""
    report = hist.check_history(hist.load_history(*files))
    out.print(report.summary())
    for v in report.violations[:20]:
        out.print(f"  {v.kind} key {v.key} ({v.op.process}): {v.detail}")
    for w in report.warnings[:5]:
        out.print(f"  warning: {w}")
    sys.exit(0 if report.ok else 1)


@cli.command("check-logs")
@where
@click.argument("clusters", nargs=-1)
def check_logs_cmd(name, home, clusters):
    """Compare /log/<h> of every node of each cluster byte for byte (fork check)."""
    dep = load_deployment(name, home)
    ok = True
    for cid in clusters or [c["id"] for c in dep.clusters]:
        check = hist.check_cluster_logs(dep, cid)
        out.print(check.summary())
        ok &= check.ok
    sys.exit(0 if ok else 1)


@cli.group()
def fault():
    """Inject faults: crash, stop, pause, resume, start, restart, partition, heal, delay, byzantine.

    local and docker deployments; partition, heal and delay need --network netns (local) or the docker
    provider, as root."""


def _node_fault(action, help_text):
    @where
    @click.argument("node")
    def cmd(name, home, node):
        result = getattr(fault_ops, action)(load_deployment(name, home), node)
        out.print(f"{action} {node}: " + ", ".join(f"{k}={v}" for k, v in result.items() if k not in ("node", "action")))

    cmd.__doc__ = help_text
    fault.command(action)(cmd)


for _action, _help in (("crash", "kill -9 NODE (docker: docker kill -s KILL)."),
                       ("stop", "SIGTERM NODE, SIGKILL after 5 s (docker: docker stop)."),
                       ("pause", "SIGSTOP NODE (docker: docker pause)."),
                       ("resume", "SIGCONT NODE (docker: docker unpause)."),
                       ("start", "Start a stopped or crashed NODE (same data dir)."),
                       ("restart", "Stop and start NODE (same data dir).")):
    _node_fault(_action, _help)


@fault.command("partition")
@where
@click.argument("regions", nargs=-1, required=True)
def partition_cmd(name, home, regions):
    """Cut REGIONS off from the other regions (--network netns or docker deployments, root)."""
    result = fault_ops.partition(load_deployment(name, home), list(regions))
    out.print("cut region pairs: " + ", ".join("/".join(p) for p in result["active"]))


@fault.command("delay")
@where
@click.argument("region_a")
@click.argument("region_b")
@click.argument("ms", type=int)
def delay_cmd(name, home, region_a, region_b, ms):
    """One-way latency of MS milliseconds between two regions, both ways; 0 removes it (netns or docker)."""
    result = fault_ops.delay(load_deployment(name, home), region_a, region_b, ms)
    out.print("region delays (one-way ms): " + (", ".join(f"{k.replace('|', '/')}={v}" for k, v in
                                                          result["active"].items()) or "none"))


@fault.command("heal")
@where
def heal_cmd(name, home):
    """Remove all partitions."""
    result = fault_ops.heal(load_deployment(name, home))
    out.print("healed: " + (", ".join("/".join(p) for p in result["healed"]) or "nothing was cut"))


@fault.command("byzantine")
@where
@click.argument("node")
@click.argument("action", required=False, type=click.Choice(fault_ops.BYZANTINE_ACTIONS))
@click.option("--messages", default="", help="Comma-separated PeerMessage names (empty = all).")
@click.option("--targets", default="", help="Comma-separated node ids (empty = all).")
@click.option("--probability", type=float, default=None)
@click.option("--delay-ms", type=int, default=None)
@click.option("--seed", type=int, default=None)
@click.option("--clients", default="", help="censor_client: comma-separated client ids (a, b or manifest ids).")
@click.option("--clear", is_flag=True, help="Remove NODE's rules instead.")
def byzantine_cmd(name, home, node, action, messages, targets, probability, delay_ms, seed, clients, clear):
    """Give NODE a SPEC 16 fault rule (testbed deployments only) and restart it."""
    if not clear and not action:
        raise UsageError("give an ACTION or --clear", fix=f"actions: {', '.join(fault_ops.BYZANTINE_ACTIONS)}")
    split = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    rules = [] if clear else [fault_ops.byzantine_rule(action, split(messages), split(targets), probability,
                                                       delay_ms, seed, split(clients))]
    fault_ops.byzantine(load_deployment(name, home), node, rules)
    out.print(f"{node}: faults {json.dumps(rules)}; restarted")


@cli.command()
@where
@click.argument("node")
@click.option("-n", "lines", type=int, default=20, show_default=True, help="Number of lines.")
def logs(name, home, node, lines):
    """Print the last lines of NODE's log."""
    dep = load_deployment(name, home)
    dep.node(node)
    click.echo(process.tail(dep.log_path(node), lines))


@cli.command()
@where
def destroy(name, home):
    """Stop every node and remove the deployment directory (idempotent)."""
    if ops.destroy(name, home, progress=lambda m: out.print(m)):
        out.print(f"destroyed deployment {name}")
    else:
        out.print(f"no deployment {name}: nothing to do")


@cli.command()
@where
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between polls.")
def monitor(name, home, interval):
    """Open the live fault-tolerance monitor (Textual) on a deployment."""
    from tui.app import run as run_monitor  # imported here: only this command needs Textual

    root = deployment_root(name, home)
    if not (root / "manifest.json").is_file():
        raise UsageError(f"unknown deployment {name!r} (no {root / 'manifest.json'})",
                         fix="deploy one first: heraclius-ops deploy --regions 3, or pick --name/--home")
    run_monitor(root, poll_interval=interval)


cli.add_command(bench_cmd)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="heraclius-ops", standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except UsageError as e:
        err.print(e.render(), markup=False)
        sys.exit(2)
    except RemoteError as e:
        err.print(e.render(), markup=False)
        sys.exit(1)
    except OpsError as e:
        err.print(e.render(), markup=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
