"""Client command line of SPEC 4.1: get, put and workload (with --history)."""

import argparse
import json
import os
import random
import sys
import threading
import time

from . import crypto
from .client import Client, ClientFailure
from .manifest import ManifestError, load


def _text(b: bytes | None, hexmode: bool):
    if b is None:
        return None
    return b.hex() if hexmode else b.decode("utf-8", errors="replace")


def _arg_bytes(s: str, hexmode: bool) -> bytes:
    return bytes.fromhex(s) if hexmode else s.encode("utf-8")


def _single(c: Client, args) -> int:
    key = _arg_bytes(args.op_key, args.hex)
    try:
        ans = c.get(key) if args.command == "get" else c.put(key, _arg_bytes(args.value, args.hex))
    except ClientFailure as e:
        print(json.dumps({"op": args.command, "error": str(e)}))
        return 1
    print(json.dumps({"op": ans.op, "key": _text(ans.key, args.hex), "found": ans.found,
                      "value": _text(ans.value, args.hex), "cluster": ans.cluster, "height": ans.height,
                      "node": ans.node, "shard": ans.shard, "shard_height": ans.shard_height}))
    return 0


def _workload(m, signer, args, key_name: str) -> int:
    ops_left = [args.ops]
    lock = threading.Lock()
    lat: list[float] = []
    counts = {"ok": 0, "failed": 0}
    t_start = time.monotonic()
    end = t_start + args.duration_s if args.duration_s else None
    hist = open(args.history, "a", encoding="utf-8") if args.history else None  # noqa: SIM115
    uniq = [0]

    def user(u: int) -> None:
        rng = random.Random(f"{args.seed}/{u}")
        c = Client(m, signer, cluster=args.cluster, timeout_ms=args.timeout_ms, seed=rng.random())
        try:
            while True:
                with lock:
                    if ops_left[0] <= 0 or (end and time.monotonic() >= end):
                        return
                    ops_left[0] -= 1
                    uniq[0] += 1
                    n = uniq[0]
                key = f"{args.key_prefix}{rng.randrange(args.keys)}".encode()
                is_put = rng.random() < args.put_ratio
                value = f"v-{args.seed}-{u}-{n}".encode() if is_put else b""
                req = c.make_request(2 if is_put else 1, key, value)
                t0 = time.time()
                try:
                    ans = c.execute(req.op.kind, key, value, req=req)
                    result, out_val = "ok", ans.value
                except ClientFailure:
                    result, out_val = "unknown" if is_put else "fail", value if is_put else None
                t1 = time.time()
                with lock:
                    lat.append((t1 - t0) * 1000)
                    counts["ok" if result == "ok" else "failed"] += 1
                    if hist:
                        hist.write(json.dumps({
                            "process": f"{key_name}-{u}", "op": "put" if is_put else "get", "key": key.hex(),
                            "value": out_val.hex() if out_val is not None else None,
                            "invoke_ms": round(t0 * 1000, 3), "complete_ms": round(t1 * 1000, 3), "result": result,
                            "request_id": req.request_id}) + "\n")
        finally:
            c.close()

    threads = [threading.Thread(target=user, args=(u,), daemon=True) for u in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if hist:
        hist.close()
    elapsed = time.monotonic() - t_start
    lat.sort()
    n = len(lat)

    def pct(p):
        return round(lat[min(n - 1, int(p * n))], 3) if n else 0.0

    print(json.dumps({"ops": n, "ok": counts["ok"], "failed": counts["failed"], "elapsed_s": round(elapsed, 3),
                      "ops_per_s": round(n / elapsed, 2) if elapsed > 0 else 0.0,
                      "latency_ms": {"mean": round(sum(lat) / n, 3) if n else 0.0, "p50": pct(0.5),
                                     "p99": pct(0.99), "max": round(lat[-1], 3) if n else 0.0}}))
    return 0 if counts["failed"] == 0 and n > 0 else 1


# workload options of SPEC 4.1: (flag, type, default)
_WORKLOAD_OPTIONS = (("--ops", int, None), ("--concurrency", int, 8), ("--keys", int, 16), ("--put-ratio", float, 0.5),
                     ("--seed", int, 0), ("--duration-s", float, None), ("--key-prefix", str, "k"),
                     ("--history", str, None))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m impl_b.client")
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--cluster")
    ap.add_argument("--timeout-ms", type=int, default=10000)
    ap.add_argument("--hex", action="store_true")
    commands = ap.add_subparsers(dest="command", required=True)
    for name, positionals in (("get", ("op_key",)), ("put", ("op_key", "value"))):
        cmd = commands.add_parser(name)
        for pos in positionals:
            cmd.add_argument(pos, metavar=pos.replace("op_", "").upper())
    wl = commands.add_parser("workload")
    for flag, typ, default in _WORKLOAD_OPTIONS:
        wl.add_argument(flag, type=typ, default=default, required=flag == "--ops")
    args = ap.parse_args(argv)
    try:
        m = load(args.manifest)
        signer = crypto.Signer(crypto.read_key_file(args.key))
    except (ManifestError, crypto.KeyFileError) as e:
        print(json.dumps({"op": args.command, "error": str(e)}))
        return 2
    if args.cluster and args.cluster not in m.coordinators:
        print(json.dumps({"op": args.command, "error": f"{args.cluster} is not a coordinator cluster"}))
        return 2
    name = os.path.splitext(os.path.basename(args.key))[0]
    if args.command == "workload":
        return _workload(m, signer, args, name)
    c = Client(m, signer, cluster=args.cluster, timeout_ms=args.timeout_ms)
    try:
        return _single(c, args)
    finally:
        c.close()


if __name__ == "__main__":
    sys.exit(main())
