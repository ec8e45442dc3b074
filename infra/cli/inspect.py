"""status, logs, check-logs, check-history."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import click

from infra.cli.common import emit_json, out, output_option, print_network, print_verdicts, status_table, where
from infra.model.deployment import load_deployment
from infra.nodes import process
from infra.status import collect_status, exit_code, network_summary, status_document, worst_verdict
from infra.testbed import history as hist


@click.command()
@where
@output_option()
@click.option("--json", "as_json", is_flag=True, help="Same as -o json.")
def status(name, home, output, as_json):
    """Read /status of every node; judge each cluster healthy/degraded/at-risk/stalled.

    Exit code (a health gate): 0 every cluster healthy, 3 some cluster degraded or at-risk, 4 some
    cluster stalled; 2 usage error (unknown deployment, corrupt manifest)."""
    dep = load_deployment(name, home)
    clusters = collect_status(dep)
    if as_json or output == "json":
        doc = status_document(clusters)
        doc["network"] = network_summary(dep)
        emit_json(doc)
    elif output == "value":
        click.echo(worst_verdict(clusters))
    else:
        out.print(status_table(dep, clusters))
        print_network(dep)
        print_verdicts(clusters)
    sys.exit(exit_code(clusters))


def follow(path: Path, start_lines: int, poll_s: float = 0.25, stop=lambda: False) -> None:
    """Print the last lines of `path`, then every line appended to it until interrupted (or `stop()`);
    a file that is truncated or replaced (a node restarted with a fresh log) is read from its start."""
    click.echo(process.tail(path, start_lines))
    try:
        f = open(path, "rb")  # noqa: SIM115 - kept open across the loop
    except OSError:
        f = None
    if f:
        f.seek(0, 2)
    buf = b""
    while not stop():
        if f is None:
            try:
                f = open(path, "rb")  # noqa: SIM115
            except OSError:
                time.sleep(poll_s)
                continue
        chunk = f.read()
        if chunk:
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                click.echo(line.decode(errors="replace"))
            continue
        try:
            st = path.stat()
            if st.st_ino != os.fstat(f.fileno()).st_ino or st.st_size < f.tell():
                f.close()
                f = None
                continue
        except OSError:
            pass
        time.sleep(poll_s)
    if f:
        f.close()


@click.command()
@where
@click.argument("node")
@click.option("-n", "lines", type=int, default=20, show_default=True, help="Number of lines.")
@click.option("-f", "--follow", "follow_", is_flag=True, help="Keep printing lines as they are written (Ctrl-C stops).")
def logs(name, home, node, lines, follow_):
    """Print the last lines of NODE's log."""
    dep = load_deployment(name, home)
    dep.node(node)
    if follow_:
        with contextlib.suppress(KeyboardInterrupt):
            follow(dep.log_path(node), lines)
        return
    click.echo(process.tail(dep.log_path(node), lines))


@click.command("check-history")
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


@click.command("check-logs")
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
