"""Client command line (SPEC 4.1): get, put and workload (with --history)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from impl_a.client import Client, NoValidAnswer, Result
from impl_a.errors import LocalError
from impl_a.keys import read_secret
from impl_a.manifest import load
from impl_a.workload import Workload


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m impl_a.client")
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--key", required=True, dest="key_file")
    ap.add_argument("--cluster")
    ap.add_argument("--timeout-ms", type=int, default=10000)
    ap.add_argument("--hex", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("get")
    g.add_argument("op_key", metavar="KEY")
    p = sub.add_parser("put")
    p.add_argument("op_key", metavar="KEY")
    p.add_argument("value", metavar="VALUE")
    w = sub.add_parser("workload")
    w.add_argument("--ops", type=int, required=True)
    w.add_argument("--concurrency", type=int, default=8)
    w.add_argument("--keys", type=int, default=16)
    w.add_argument("--put-ratio", type=float, default=0.5)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--duration-s", type=float)
    w.add_argument("--key-prefix", default="k")
    w.add_argument("--key-bytes", type=int)
    w.add_argument("--preload", action="store_true")
    w.add_argument("--pattern", choices=["uniform", "payments"], default="uniform")
    w.add_argument("--history")
    w.add_argument("--samples")
    return ap.parse_args(argv)


def _text(b: bytes | None, as_hex: bool) -> str | None:
    if b is None:
        return None
    return b.hex() if as_hex else b.decode("utf-8", errors="replace")


def _arg_bytes(s: str, as_hex: bool) -> bytes:
    if as_hex:
        try:
            return bytes.fromhex(s)
        except ValueError:
            raise LocalError(f"{s!r} is not hex", 2) from None
    return s.encode()


def result_json(r: Result, as_hex: bool) -> dict:
    return {"op": r.op, "key": _text(r.key, as_hex), "found": r.found, "value": _text(r.value, as_hex),
            "cluster": r.cluster, "height": r.height, "node": r.node, "shard": r.shard,
            "shard_height": r.shard_height}


async def single(args: argparse.Namespace, client: Client) -> int:
    key = _arg_bytes(args.op_key, args.hex)
    try:
        if args.command == "get":
            r = await client.get(key)
        else:
            r = await client.put(key, _arg_bytes(args.value, args.hex))
    except NoValidAnswer as exc:
        print(json.dumps({"op": args.command, "error": str(exc)}))
        return 1
    print(json.dumps(result_json(r, args.hex)))
    return 0


async def workload(args: argparse.Namespace, client: Client) -> int:
    summary = await Workload(client, args).run()
    print(json.dumps(summary))
    return 0 if summary["failed"] == 0 else 1


async def run(args: argparse.Namespace) -> int:
    manifest = load(args.manifest)
    client = Client(manifest, read_secret(args.key_file), args.cluster, args.timeout_ms)
    try:
        if args.command == "workload":
            return await workload(args, client)
        return await single(args, client)
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import uvloop  # the node's event loop; a workload's client shares the CPU with the nodes

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    try:
        return runner(run(args))
    except LocalError as exc:
        print(json.dumps({"op": args.command, "error": str(exc)}))
        return exc.exit_code if exc.exit_code != 3 else 1
