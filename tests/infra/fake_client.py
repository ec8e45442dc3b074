"""Stand-in client for infra tests: the SPEC 4.1 client command line over a local JSON file
(next to the manifest) instead of a network. FAKE_CLIENT_LOSE=1 makes puts acknowledge without
storing (a lost write, for the history checker)."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

LOCK = threading.Lock()


def store_op(store: Path, key: str, value: str | None) -> tuple[bool, str | None]:
    with LOCK, open(store.with_suffix(".lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        data = json.loads(store.read_text()) if store.exists() else {}
        found = key in data
        old = data.get(key)
        if value is not None and not os.environ.get("FAKE_CLIENT_LOSE"):
            data[key] = value
            store.write_text(json.dumps(data))
        return found, old


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--manifest", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--cluster")
    p.add_argument("--timeout-ms", type=int, default=10000)
    p.add_argument("--hex", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("get")
    g.add_argument("k")
    pu = sub.add_parser("put")
    pu.add_argument("k")
    pu.add_argument("v")
    w = sub.add_parser("workload")
    w.add_argument("--ops", type=int, required=True)
    w.add_argument("--concurrency", type=int, default=8)
    w.add_argument("--keys", type=int, default=16)
    w.add_argument("--put-ratio", type=float, default=0.5)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--duration-s", type=float)
    w.add_argument("--key-prefix", default="k")
    w.add_argument("--history")
    a = p.parse_args()
    Path(a.key).read_text()
    store = Path(a.manifest).parent / "fake-kv.json"
    if a.hex:
        a.k = bytes.fromhex(a.k).decode()
        if a.cmd == "put":
            a.v = bytes.fromhex(a.v).decode()
    if a.cmd == "get":
        found, old = store_op(store, a.k, None)
        if a.hex and old is not None:
            old = old.encode().hex()
        print(json.dumps({"op": "get", "key": a.k, "found": found, "value": old, "cluster": "c0", "height": 1,
                          "node": "c0-n0", "shard": "s0", "shard_height": 1}))
        return 0
    if a.cmd == "put":
        found, _ = store_op(store, a.k, a.v)
        print(json.dumps({"op": "put", "key": a.k, "found": found, "value": a.v, "cluster": "c0", "height": 1,
                          "node": "c0-n0", "shard": "s0", "shard_height": 1}))
        return 0
    rng = random.Random(a.seed)
    lines, lat = [], []
    t_start = time.monotonic()
    for i in range(a.ops):
        if a.duration_s is not None and time.monotonic() - t_start > a.duration_s:
            break
        key = f"{a.key_prefix}{rng.randrange(a.keys)}"
        t0 = time.time() * 1000
        if rng.random() < a.put_ratio:
            value = f"v{a.seed}-{i}"
            store_op(store, key, value)
            rec = {"op": "put", "value": value.encode().hex()}
        else:
            _, old = store_op(store, key, None)
            rec = {"op": "get", "value": old.encode().hex() if old is not None else None}
        t1 = time.time() * 1000
        lat.append(t1 - t0)
        lines.append({"process": f"fake-{i % a.concurrency}", **rec, "key": key.encode().hex(), "invoke_ms": t0,
                      "complete_ms": t1, "result": "ok", "request_id": i + 1})
    if a.history:
        with open(a.history, "a") as f:
            f.writelines(json.dumps(x) + "\n" for x in lines)
    elapsed = time.monotonic() - t_start
    lat.sort()
    print(json.dumps({"ops": len(lines), "ok": len(lines), "failed": 0, "elapsed_s": elapsed,
                      "ops_per_s": len(lines) / elapsed, "latency_ms": {"mean": sum(lat) / len(lat),
                      "p50": lat[len(lat) // 2], "p99": lat[int(len(lat) * 0.99)], "max": lat[-1]}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
