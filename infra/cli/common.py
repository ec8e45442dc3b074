"""What every command shares: --name/--home, -o table|json|value, consoles and the renderers of
plans and statuses (the demo prints with these too)."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infra.model.deployment import DEFAULT_NAME, home_notice
from infra.model.planner import loss_reports, region_tolerance_problems
from infra.model.topology import impl_style
from infra.model.verdict import Verdict
from infra.status import network_lines, network_summary

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True, highlight=False, soft_wrap=True)
VERDICT_STYLE = {v.word: {"healthy": "green", "degraded": "yellow", "at-risk": "bold yellow",
                          "stalled": "bold red"}[v.word] for v in Verdict}
OUTPUTS = ("table", "json", "value")


def _notice_home(ctx: click.Context, _param, home):
    note = home_notice(home)
    if note and not ctx.resilient_parsing:
        err.print(note, markup=False)
    return home


def where(f):
    f = click.option("--home", envvar="HERACLIUS_HOME", default=None, callback=_notice_home,
                     help="Directory holding deployments [env HERACLIUS_HOME; default: ./deployments if it holds "
                          "deployments (the old default), else the user data dir's heraclius/deployments].")(f)
    return click.option("--name", default=DEFAULT_NAME, show_default=True, help="Deployment name.")(f)


def output_option(default: str = "table"):
    return click.option("-o", "--output", "output", type=click.Choice(OUTPUTS), default=default, show_default=True,
                        help="table: for people; json: one JSON document; value: bare values, one per line.")


def emit_json(doc) -> None:
    click.echo(json.dumps(doc, indent=2))


def print_plan_lines(plan) -> None:
    for c in plan.clusters:
        out.print(f"cluster {c.id} ({c.role}): n={c.n}, f={c.f}, fault-tolerance margin {c.f}")
    for r in loss_reports(plan):
        out.print(f"  {r.line()}")
        if r.kind == "implementation":
            out.print(f"  {r.byzantine_line()}")
    for p in region_tolerance_problems(plan):
        err.print(f"[yellow]warning: {escape(p)}[/]")


def status_table(dep, clusters) -> Table:
    t = Table(title=f"deployment {dep.name} ({dep.provider})")
    for col in ("cluster", "node", "implementation", "region", "address", "health", "view", "leader", "height"):
        t.add_column(col)
    for c in clusters:
        for s in c.nodes:
            st = s.status or {}
            health = "[green]up[/]" if s.up else f"[red]{s.process}[/]"
            style = impl_style(s.node.implementation)
            impl = f"[{style}]{escape(s.node.implementation)}[/]" if style else escape(s.node.implementation)
            t.add_row(c.id, s.node.id, impl, s.node.region,
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
