"""Stand-in client whose workload runs for its whole --duration-s (then prints the SPEC 4.1
summary), for the workload-timeout test."""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--manifest", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--timeout-ms", type=int, default=10000)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("workload")
    for opt in ("--ops", "--concurrency", "--keys", "--seed"):
        w.add_argument(opt, type=int)
    w.add_argument("--put-ratio", type=float)
    w.add_argument("--duration-s", type=float)
    w.add_argument("--key-prefix")
    a = p.parse_args()
    t0 = time.monotonic()
    time.sleep(a.duration_s or 0)
    print(json.dumps({"ops": 1, "ok": 1, "failed": 0, "elapsed_s": time.monotonic() - t0, "ops_per_s": 1,
                      "latency_ms": {"mean": 1, "p50": 1, "p99": 1, "max": 1}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
