"""`heraclius-ops bench`: the click command over infra.bench (progress, tables, output files).
infra/cli.py only registers it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
from rich.console import Console

from infra.bench import plot as bench_plot
from infra.bench import report as bench_report
from infra.bench import run as bench
from infra.errors import UsageError

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 150)


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--{what} {text!r} is not a comma-separated list of integers") from None
    if not values or any(v < 1 for v in values):
        raise UsageError(f"--{what} needs positive integers, e.g. 1,2,4")
    return values


@click.command("bench")
@click.option("--name", default="default", show_default=True,
              help="Deployment to load (or, with --deploy/--scale, prefix of the deployments made).")
@click.option("--home", envvar="HERACLIUS_HOME", default=None, help="Deployments directory [env HERACLIUS_HOME].")
@click.option("--deploy", "do_deploy", is_flag=True, help="Deploy each configuration, run, destroy it.")
@click.option("--coordinators", type=int, default=None, help="With --deploy: coordinator clusters [1].")
@click.option("--shards", type=int, default=None, help="With --deploy: shard clusters [1].")
@click.option("--mix", default="alternate", show_default=True,
              help="With --deploy: node mix per cluster (alternate, diverse, a, b, c, aabc...); a comma list runs each.")
@click.option("--scale", default=None, help="Scaling sweep: e.g. 1,2,4 coordinator AND shard clusters (deploys).")
@click.option("--workload", type=click.Choice(list(bench.WORKLOADS)), default="get", show_default=True)
@click.option("--users-start", type=int, default=8, show_default=True, help="Users (all clients) at step 1.")
@click.option("--users-end", type=int, default=256, show_default=True, help="Last step's users (doubling).")
@click.option("--step-s", type=float, default=10.0, show_default=True, help="Seconds per step.")
@click.option("--keys", type=int, default=256, show_default=True, help="Distinct keys (preloaded for GETs).")
@click.option("--put-ratio", type=float, default=None, help="Override the workload's PUT ratio.")
@click.option("--client", type=click.Choice(list(bench.CLIENT_CHOICES)), default="alternate", show_default=True,
              help="Client library per coordinator cluster (alternate: a, b, a, ...; diverse: a, b, c, a, ...).")
@click.option("--timeout-ms", type=int, default=10000, show_default=True, help="Client deadline per operation.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--warmup-s", type=float, default=1.0, show_default=True, help="Not measured at each step's start.")
@click.option("--slo-p50-ms", type=float, default=100.0, show_default=True, help="Latency bound for the 2nd peak.")
@click.option("--repeat", type=int, default=1, show_default=True,
              help="Run every series N times, rotating their order; the cost of diversity uses median peaks.")
@click.option("--keep", is_flag=True, help="Keep the deployments made by --deploy/--scale.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("bench-results"), show_default=True,
              help="Directory for bench.json, bench.csv, bench.png (and client histories under raw/).")
def bench_cmd(name, home, do_deploy, coordinators, shards, mix, scale, workload, users_start, users_end, step_s,
              keys, put_ratio, client, timeout_ms, seed, warmup_s, slo_p50_ms, repeat, keep, out_dir):
    """The paper's load sweep: closed-loop users doubling per step, one client per coordinator cluster."""
    mixes = [m for m in mix.split(",") if m]
    scales = _ints(scale, "scale") if scale else [1]
    deploying = do_deploy or scale is not None or len(mixes) > 1
    if not deploying and (coordinators or shards):
        raise UsageError("--coordinators/--shards need --deploy")
    config = bench.BenchConfig(workload, users_start, users_end, step_s, keys, client, put_ratio, timeout_ms,
                               seed, warmup_s, slo_p50_ms)
    if repeat < 1:
        raise UsageError("--repeat must be at least 1")
    target = bench.Target(name, home, deploying, mixes, scales, coordinators, shards, keep, repeat=repeat)
    command = "heraclius-ops " + shlex.join(sys.argv[1:]) if sys.argv and "bench" in sys.argv else ""

    def on_step(series, st):
        lat = st["latency_ms"]
        out.print(f"{series['deployment']}: {st['users']:>6} users  {st['ops_per_s']:9.1f} ops/s  "
                  f"p50 {bench_report._f(lat['p50'])} ms  p99 {bench_report._f(lat['p99'])} ms  "
                  f"errors {st['errors']}  node CPU {st['cpu_s']['nodes_total']:.1f} s "
                  f"({bench_report.impl_cpu_text(st['cpu_s'])})  load {st['loadavg_1m']:.1f}")

    with out.status("benchmark starting...") as spinner:
        doc = bench.run(config, target, out_dir / "raw", command, lambda m: spinner.update(m), on_step)
    paths = bench_report.write_outputs(doc, out_dir)
    paths.update(bench_plot.plot_all(doc, out_dir))
    for s in doc["series"]:
        out.print(bench_report.series_table(s))
    out.print(bench_report.summary_table(doc))
    for d in doc["diversity"]:
        out.print(f"cost of diversity ({d['coordinators']}+{d['shards']} clusters, repeat {d['repeat']}): mixed / all "
                  f"{d['fastest_homogeneous']} = {d['ratio']:.2f}")
    for kind, p in paths.items():
        out.print(f"{kind}: {p}")
