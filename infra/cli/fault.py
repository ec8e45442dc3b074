"""fault crash|stop|pause|resume|start|restart|partition|heal|delay|byzantine."""

from __future__ import annotations

import json

import click

from infra.cli.common import out, where
from infra.errors import UsageError
from infra.model.deployment import load_deployment
from infra.testbed import faults as fault_ops


@click.group()
def fault():
    """Inject faults: crash, stop, pause, resume, start, restart, partition, heal, delay, byzantine.

    local and docker deployments; partition, heal and delay need --network netns (local) or the docker
    provider, as root. A node not in a state the action applies to (e.g. resume of a running node) is
    a usage error (exit 2) saying so."""


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
                       ("resume", "SIGCONT a paused NODE (docker: docker unpause)."),
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
@click.option("--clients", default="", help="censor_client: comma-separated client ids (a, b, c or manifest ids).")
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
