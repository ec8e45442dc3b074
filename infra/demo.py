"""`./dev demo`: deploy a local 3-region network (1 coordinator + 1 shard cluster, every runnable
implementation in each: a, b, c, a with impl_c built, else a, b, a, b) unless it is already there,
run a short workload with each runnable client library, check the histories and decision logs,
print the status, and leave the network running."""

from __future__ import annotations

import argparse
import sys
import time

from rich.console import Console

from infra import ops, providers
from infra.cli.common import print_plan_lines, print_verdicts, status_table
from infra.errors import OpsError, RemoteError
from infra.model import implementations
from infra.model.deployment import DEFAULT_NAME, list_deployments, load_deployment
from infra.model.planner import plan_from_manifest
from infra.nodes.client import workload
from infra.status import collect_status
from infra.testbed import faults, history

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 150)


def demo_mix() -> str:
    """diverse (a, b, c, a) when impl_c is built here, else alternate (a, b, a, b)."""
    return "diverse" if len(implementations.runnable()) >= 3 else "alternate"


def ensure_deployment(name: str):
    if name not in list_deployments():
        with out.status("deploying 8 nodes in 3 regions...") as spinner:
            return ops.deploy(name, regions=3, coordinators=1, shards=1, mix=demo_mix(),
                              progress=lambda m: spinner.update(m))
    dep = load_deployment(name)
    states = providers.for_deployment(dep).node_states(dep)
    down = [n.id for n in dep.nodes if states.get(n.id) == "down"]
    for node_id in down:
        out.print(f"starting {node_id} (it was not running)")
        faults.start(dep, node_id)
    out.print(f"using the existing deployment {name!r} ({dep.root})")
    return dep.reload()


def run(name: str = DEFAULT_NAME, seconds: float = 3.0) -> int:
    t0 = time.monotonic()
    dep = ensure_deployment(name)
    ok = True
    histories = []
    # fresh keys each run: the history checker must see every write of the keys it checks
    run_id = int(time.time())
    for client in [i.letter for i in implementations.runnable()]:
        path = dep.root / f"demo-history-{client}.jsonl"
        path.unlink(missing_ok=True)
        with out.status(f"workload through client library impl_{client} ({seconds:.0f} s)..."):
            result = workload(dep, client, ops=400, concurrency=4, keys=8, duration_s=seconds,
                              key_prefix=f"demo-{run_id}-{client}-", history=path, seed=run_id)
        d = result.doc
        if "ops" in d:
            lat = d.get("latency_ms", {})
            out.print(f"client impl_{client}: {d['ok']}/{d['ops']} ok, {d['failed']} failed, "
                      f"{d['ops_per_s']:.1f} ops/s, latency p50 {lat.get('p50', 0):.1f} ms, "
                      f"p99 {lat.get('p99', 0):.1f} ms")
        else:
            out.print(f"client impl_{client}: [red]{d}[/]")
        ok &= result.ok
        histories.append(path)
    report = history.check_history(history.load_history(*[p for p in histories if p.exists()]))
    out.print(report.summary())
    ok &= report.ok
    for c in dep.clusters:
        check = history.check_cluster_logs(dep, c["id"])
        out.print(check.summary())
        ok &= check.ok
    clusters = collect_status(dep)
    out.print(status_table(dep, clusters))
    print_plan_lines(plan_from_manifest(dep.manifest))
    print_verdicts(clusters)  # also names any node whose /status breaks status.schema.json
    # the demo doubles as a smoke test of the contract: an off-schema /status makes it fail
    ok &= not any(s.warnings for c in clusters for s in c.nodes)
    ok &= all(s.up for c in clusters for s in c.nodes)
    out.print(f"demo took {time.monotonic() - t0:.1f} s. The network is still running "
              f"(deployment directory {dep.root}).")
    out.print("Try: .venv/bin/heraclius-ops status | fault crash c0-n1 | kv put k v --client b")
    out.print("Stop it with: .venv/bin/heraclius-ops destroy")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m infra.demo", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=3.0, help="workload duration per client library")
    p.add_argument("--name", default=DEFAULT_NAME, help="deployment name")
    args = p.parse_args(argv)
    try:
        sys.exit(run(args.name, args.seconds))
    except RemoteError as e:
        out.print(e.render(), markup=False)
        sys.exit(1)
    except OpsError as e:
        out.print(e.render(), markup=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
