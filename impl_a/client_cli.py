"""Client command line (SPEC 4.1): get, put and workload (with --history)."""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import random
import sys
import time

from impl_a.client import Client, NoValidAnswer, Result
from impl_a.errors import LocalError
from impl_a.keys import read_secret
from impl_a.manifest import load


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
    w.add_argument("--history")
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
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    stop_at = t0 + args.duration_s if args.duration_s else None
    issued = 0
    latencies: list[float] = []
    ok = failed = 0
    hist = open(args.history, "a", encoding="utf-8") if args.history else None  # noqa: SIM115
    stem = pathlib.Path(args.key_file).stem  # SPEC 4.1: <client> is the key file's stem

    async def user(u: int) -> None:
        nonlocal issued, ok, failed
        while issued < args.ops and (stop_at is None or time.monotonic() < stop_at):
            issued += 1
            n = issued
            key = f"{args.key_prefix}{rng.randrange(args.keys)}".encode()
            is_put = rng.random() < args.put_ratio
            value = f"v-{args.seed}-{n}".encode() if is_put else None
            t_inv = time.time() * 1000
            start = time.monotonic()
            req = client.new_request(2 if is_put else 1, key, value or b"")
            outcome, read = "ok", None
            try:
                res = await client.execute(req)
                read = res.value
                ok += 1
                latencies.append((time.monotonic() - start) * 1000)
            except NoValidAnswer:
                failed += 1
                outcome = "unknown" if is_put else "fail"
            if hist is not None:
                val = value if is_put else read
                hist.write(json.dumps({"process": f"{stem}-{u}", "op": "put" if is_put else "get",
                                       "key": key.hex(), "value": val.hex() if val is not None else None,
                                       "invoke_ms": round(t_inv, 3), "complete_ms": round(time.time() * 1000, 3),
                                       "result": outcome, "request_id": req.request_id}) + "\n")

    try:
        await asyncio.gather(*(user(u) for u in range(max(1, args.concurrency))))
    finally:
        if hist is not None:
            hist.close()
    elapsed = time.monotonic() - t0
    lat = sorted(latencies) or [0.0]

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 3)

    print(json.dumps({"ops": ok + failed, "ok": ok, "failed": failed, "elapsed_s": round(elapsed, 3),
                      "ops_per_s": round((ok + failed) / elapsed, 3) if elapsed > 0 else 0.0,
                      "latency_ms": {"mean": round(sum(lat) / len(lat), 3), "p50": pct(0.5), "p99": pct(0.99),
                                     "max": round(lat[-1], 3)}}))
    return 0 if failed == 0 else 1


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
        return asyncio.run(run(args))
    except LocalError as exc:
        print(json.dumps({"op": args.command, "error": str(exc)}))
        return exc.exit_code if exc.exit_code != 3 else 1
