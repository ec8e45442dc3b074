"""Closed-loop workload of the client command line (SPEC 4.1): uniform, payments and preload modes,
summary, per-operation history and per-second samples."""

from __future__ import annotations

import asyncio
import json
import pathlib
import random
import struct
import time

from impl_a.client import Client, NoValidAnswer
from impl_a.crypto import sha256
from impl_a.verify import GET, PUT


def key_name(prefix: str, index: int, key_bytes: int | None) -> bytes:
    if key_bytes:
        return sha256(prefix.encode() + struct.pack(">Q", index))[:key_bytes]
    return f"{prefix}{index}".encode()


def _pct(lat: list[float], p: float) -> float:
    return round(lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else 0.0


class Workload:
    def __init__(self, client: Client, args):
        self.c = client
        self.a = args
        self.rng = random.Random(args.seed)
        self.issued = 0
        self.ok = self.failed = 0
        self.latencies: list[float] = []
        self.per_second: dict[int, list] = {}
        self.stem = pathlib.Path(args.key_file).stem  # SPEC 4.1: <client> is the key file's stem
        self.hist = None
        self.stop_at: float | None = None
        self.preload_next = 0

    def _more(self) -> bool:
        if self.a.preload:
            return self.preload_next < self.a.keys
        return self.issued < self.a.ops and (self.stop_at is None or time.monotonic() < self.stop_at)

    async def _one(self, user: int, is_put: bool, key: bytes) -> None:
        self.issued += 1
        value = f"v-{self.a.seed}-{self.issued}".encode() if is_put else b""
        t_inv = time.time() * 1000
        start = time.monotonic()
        req = self.c.new_request(PUT if is_put else GET, key, value, sign=False)
        outcome, read = "ok", None
        try:
            res = await self.c.execute(req)
            read = res.value
        except NoValidAnswer:
            outcome = "unknown" if is_put else "fail"
        lat = (time.monotonic() - start) * 1000
        sec = int(time.time())
        bucket = self.per_second.setdefault(sec, [0, 0, []])
        if outcome == "ok":
            self.ok += 1
            self.latencies.append(lat)
            bucket[0] += 1
            bucket[2].append(lat)
        else:
            self.failed += 1
            bucket[1] += 1
        if self.hist is not None:
            shown = value if is_put else read
            self.hist.write(json.dumps({"process": f"{self.stem}-{user}", "op": "put" if is_put else "get",
                                        "key": key.hex(), "value": shown.hex() if shown is not None else None,
                                        "invoke_ms": round(t_inv, 3), "complete_ms": round(time.time() * 1000, 3),
                                        "result": outcome, "request_id": req.request_id}) + "\n")

    async def _user(self, u: int) -> None:
        a = self.a
        while self._more():
            if a.preload:
                i = self.preload_next
                self.preload_next += 1
                await self._one(u, True, key_name(a.key_prefix, i, a.key_bytes))
            elif a.pattern == "payments":
                i, j = self.rng.sample(range(a.keys), 2) if a.keys > 1 else (0, 0)
                ka, kb = key_name(a.key_prefix, i, a.key_bytes), key_name(a.key_prefix, j, a.key_bytes)
                for is_put, k in ((False, ka), (False, kb), (True, ka), (True, kb)):
                    if not self._more():
                        break
                    await self._one(u, is_put, k)
            else:
                k = key_name(a.key_prefix, self.rng.randrange(a.keys), a.key_bytes)
                await self._one(u, self.rng.random() < a.put_ratio, k)

    async def run(self) -> dict:
        a = self.a
        t0 = time.monotonic()
        self.stop_at = t0 + a.duration_s if a.duration_s else None
        self.hist = open(a.history, "a", encoding="utf-8") if a.history else None  # noqa: SIM115
        try:
            await asyncio.gather(*(self._user(u) for u in range(max(1, a.concurrency))))
        finally:
            if self.hist is not None:
                self.hist.close()
        elapsed = time.monotonic() - t0
        if a.samples:
            with open(a.samples, "a", encoding="utf-8") as fh:
                for sec in sorted(self.per_second):
                    ok, failed, lat = self.per_second[sec]
                    lat.sort()
                    fh.write(json.dumps({"t_ms": sec * 1000, "ok": ok, "failed": failed, "latency_ms": {
                        "p50": _pct(lat, 0.5), "p99": _pct(lat, 0.99), "max": round(lat[-1], 3) if lat else 0.0}})
                        + "\n")
        lat = sorted(self.latencies)
        n = self.ok + self.failed
        return {"ops": n, "ok": self.ok, "failed": self.failed, "elapsed_s": round(elapsed, 3),
                "ops_per_s": round(n / elapsed, 3) if elapsed > 0 else 0.0,
                "latency_ms": {"mean": round(sum(lat) / len(lat), 3) if lat else 0.0, "p50": _pct(lat, 0.5),
                               "p99": _pct(lat, 0.99), "max": round(lat[-1], 3) if lat else 0.0}}
