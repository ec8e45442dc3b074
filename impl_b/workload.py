"""The `workload` command of SPEC 4.1: closed-loop users, uniform or payments pattern, preload,
history and per-second samples."""

import hashlib
import json
import os
import random
import threading
import time

from .client import Client, ClientFailure
from .schema import OP_GET, OP_PUT


class Workload:
    """Shared state of one workload run (all users of this process share the client key)."""

    def __init__(self, manifest, signer, args, process_name: str):
        self.m, self.signer, self.args, self.name = manifest, signer, args, process_name
        self.lock = threading.Lock()
        self.budget = args.keys if args.preload else args.ops
        self.started = 0
        self.latencies: list[float] = []
        self.ok = self.failed = 0
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.duration_s if args.duration_s else None
        self.history = open(args.history, "a", encoding="utf-8") if args.history else None  # noqa: SIM115
        self.samples = open(args.samples, "a", encoding="utf-8") if getattr(args, "samples", None) else None  # noqa: SIM115
        self.second: dict[int, list] = {}
        self.serial = 0
        # Concurrent users share one Bundler: their ready requests go out as RequestBundles (SPEC 14.6).
        self.bundler = None
        if args.concurrency > 1 and os.environ.get("IMPL_B_BUNDLES", "1") != "0":
            self.bundler = Client(manifest, signer, cluster=args.cluster, seed=args.seed).new_bundler()

    def key(self, i: int) -> bytes:
        a = self.args
        if a.key_bytes:
            return hashlib.sha256(a.key_prefix.encode() + i.to_bytes(8, "big")).digest()[: a.key_bytes]
        return f"{a.key_prefix}{i}".encode()

    def _claim(self, n: int = 1) -> int | None:
        """Reserve n operations; returns the serial of the first, or None when the run is over."""
        with self.lock:
            if self.started + n > self.budget or (self.deadline and time.monotonic() >= self.deadline):
                return None
            self.started += n
            self.serial += n
            return self.serial - n + 1

    def _one(self, client: Client, user: int, kind: int, key: bytes, value: bytes) -> None:
        req = client.make_request(kind, key, value, sign=self.bundler is None)
        t_start = time.time()
        try:
            ans = client.execute(kind, key, value, req=req)
            result, seen = "ok", ans.value
        except ClientFailure:
            result = "unknown" if kind == OP_PUT else "fail"
            seen = value if kind == OP_PUT else None
        t_end = time.time()
        ms = (t_end - t_start) * 1000
        with self.lock:
            self.latencies.append(ms)
            if result == "ok":
                self.ok += 1
            else:
                self.failed += 1
            self.second.setdefault(int(t_start), []).append((ms, result == "ok"))
            if self.history:
                self.history.write(json.dumps({
                    "process": f"{self.name}-{user}", "op": "put" if kind == OP_PUT else "get", "key": key.hex(),
                    "value": seen.hex() if seen is not None else None, "invoke_ms": round(t_start * 1000, 3),
                    "complete_ms": round(t_end * 1000, 3), "result": result, "request_id": req.request_id}) + "\n")

    def user(self, u: int) -> None:
        a = self.args
        rng = random.Random(f"{a.seed}/{u}")
        client = Client(self.m, self.signer, cluster=a.cluster, timeout_ms=a.timeout_ms, seed=rng.random(),
                        bundler=self.bundler)
        try:
            while True:
                if a.preload:
                    serial = self._claim()
                    if serial is None:
                        return
                    self._one(client, u, OP_PUT, self.key(serial - 1), f"pre-{a.seed}-{serial}".encode())
                elif a.pattern == "payments":
                    serial = self._claim(4)
                    if serial is None:
                        return
                    ka, kb = (self.key(i) for i in rng.sample(range(a.keys), 2))
                    self._one(client, u, OP_GET, ka, b"")
                    self._one(client, u, OP_GET, kb, b"")
                    self._one(client, u, OP_PUT, ka, f"v-{a.seed}-{u}-{serial}".encode())
                    self._one(client, u, OP_PUT, kb, f"v-{a.seed}-{u}-{serial + 1}".encode())
                else:
                    serial = self._claim()
                    if serial is None:
                        return
                    key = self.key(rng.randrange(a.keys))
                    if rng.random() < a.put_ratio:
                        self._one(client, u, OP_PUT, key, f"v-{a.seed}-{u}-{serial}".encode())
                    else:
                        self._one(client, u, OP_GET, key, b"")
        finally:
            client.close()

    def run(self) -> dict:
        users = [threading.Thread(target=self.user, args=(u,), daemon=True) for u in range(self.args.concurrency)]
        for t in users:
            t.start()
        for t in users:
            t.join()
        elapsed = time.monotonic() - self.t0
        if self.bundler is not None:
            self.bundler.close()
        if self.samples is not None:
            self._write_samples()
            self.samples.close()
        if self.history is not None:
            self.history.close()
        return _summary(sorted(self.latencies), self.ok, self.failed, elapsed)

    def _write_samples(self) -> None:
        for sec in sorted(self.second):
            lat = sorted(ms for ms, _ok in self.second[sec])
            good = sum(1 for _ms, ok in self.second[sec] if ok)
            self.samples.write(json.dumps({"t_ms": sec * 1000, "ok": good, "failed": len(lat) - good,
                                           "latency_ms": _percentiles(lat)}) + "\n")


def _percentiles(lat: list[float]) -> dict:
    if not lat:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    return {"p50": round(lat[min(len(lat) - 1, len(lat) // 2)], 3),
            "p99": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 3), "max": round(lat[-1], 3)}


def _summary(lat: list[float], ok: int, failed: int, elapsed: float) -> dict:
    n = len(lat)
    pct = _percentiles(lat)
    return {"ops": n, "ok": ok, "failed": failed, "elapsed_s": round(elapsed, 3),
            "ops_per_s": round(n / elapsed, 2) if elapsed > 0 else 0.0,
            "latency_ms": {"mean": round(sum(lat) / n, 3) if n else 0.0, **pct}}
