"""kv get / kv put and workload: one operation or a workload through a client library (SPEC 4.1)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.table import Table

from infra.cli.common import emit_json, err, out, output_option, where
from infra.model.deployment import load_deployment
from infra.nodes.client import final_reads as read_all
from infra.nodes.client import kv_get, kv_put, workload
from infra.testbed import history as hist

CLIENTS = click.Choice(["a", "b", "c"])
NOT_FOUND_EXIT = 1


@click.group()
def kv():
    """Read and write keys through a client library (SPEC 4.1 command line).

    Exit codes: 0 done, 1 the operation failed or (get) the key does not exist (stderr says which),
    2 usage error."""


def _print_result(result, output: str) -> None:
    doc = result.doc
    if not result.ok:
        if output == "json":
            emit_json(doc)
        err.print(f"error: client {result.client}: {doc.get('error') or 'failed'}", markup=False)
        sys.exit(1)
    missing = doc.get("op") == "get" and doc.get("found") is False
    if output == "json":
        click.echo(json.dumps(doc))
    elif output == "value":
        if not missing and doc.get("value") is not None:
            click.echo(doc["value"])
    else:
        t = Table()
        for col in ("op", "key", "found", "value", "cluster", "height", "node"):
            t.add_column(col)
        t.add_row(*(str(doc.get(c, "-")) for c in ("op", "key", "found", "value", "cluster", "height", "node")))
        out.print(t)
    if missing:
        err.print(f"key {doc.get('key')!r} not found", markup=False)
        sys.exit(NOT_FOUND_EXIT)


@kv.command("get")
@where
@click.option("--client", type=CLIENTS, default="a", show_default=True)
@click.option("--hex", "hex_", is_flag=True, help="KEY is hex; the value is printed as hex.")
@output_option(default="json")
@click.argument("key")
def kv_get_cmd(name, home, client, hex_, output, key):
    """GET KEY (-o value: only the value; exit 1 when the key does not exist)."""
    _print_result(kv_get(load_deployment(name, home), key, client, hex_=hex_), output)


@kv.command("put")
@where
@click.option("--client", type=CLIENTS, default="a", show_default=True)
@click.option("--hex", "hex_", is_flag=True, help="KEY and VALUE are hex.")
@output_option(default="json")
@click.argument("key")
@click.argument("value")
def kv_put_cmd(name, home, client, hex_, output, key, value):
    """PUT KEY VALUE."""
    _print_result(kv_put(load_deployment(name, home), key, value, client, hex_=hex_), output)


@click.command("workload")
@where
@click.option("--client", type=CLIENTS, default="a", show_default=True)
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
