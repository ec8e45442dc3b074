"""History checking: client histories (SPEC 4.1 `workload --history`) and cluster decision logs.

The register check is sound for histories whose written values are unique per key (the workload
guarantees that): every violation it reports is a real linearizability violation, though it can
miss some. Per key, with `a -> b` meaning a completed before b was invoked:
  unknown_value   a read returned a value no write of it had been invoked before the read completed
  stale_read      a read returned w's value (or nothing) although w -> w2 -> read for an acknowledged
                  write w2 (or an acknowledged write -> read, for a read of nothing)
  lost_write      a stale read invoked after every write of its key had completed (a final read)
  read_backwards  r0 -> r, r0 saw w0, r saw w with w -> w0 (or r saw nothing after r0 saw a value)
Writes whose result is `fail` or `unknown` may or may not have happened: reading them is allowed,
but they never make another value stale."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from infra.errors import RemoteError, UsageError
from infra.model.deployment import Deployment
from infra.nodes.admin import get_log_entry, get_status


@dataclass(frozen=True)
class Op:
    process: str
    op: str  # get / put
    key: str
    value: str | None
    invoke_ms: float
    complete_ms: float
    result: str  # ok / fail / unknown
    request_id: int | None = None

    def before(self, other: Op) -> bool:
        """Real-time order: self completed before other was invoked."""
        return self.complete_ms < other.invoke_ms


@dataclass(frozen=True)
class Violation:
    kind: str
    key: str
    op: Op
    detail: str


@dataclass
class HistoryReport:
    ops: int
    keys: int
    reads_checked: int
    final_reads: int
    violations: list[Violation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def summary(self) -> str:
        verdict = "OK" if self.ok else f"{len(self.violations)} violation(s)"
        return (f"history: {self.ops} ops on {self.keys} keys, {self.reads_checked} reads checked "
                f"({self.final_reads} final): {verdict}")


def parse_history(lines: list[str]) -> list[Op]:
    ops = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            ops.append(Op(d["process"], d["op"], d["key"], d.get("value"), float(d["invoke_ms"]),
                          float(d["complete_ms"]), d["result"], d.get("request_id")))
        except (ValueError, KeyError, TypeError) as e:
            raise UsageError(f"history line {i} is not a SPEC 4.1 history record: {e}") from None
        if ops[-1].op not in ("get", "put") or ops[-1].result not in ("ok", "fail", "unknown"):
            raise UsageError(f"history line {i}: bad op or result")
    return ops


def load_history(*paths: Path) -> list[Op]:
    ops: list[Op] = []
    for p in paths:
        ops += parse_history(Path(p).read_text().splitlines())
    return ops


def _check_key(key: str, ops: list[Op], report: HistoryReport) -> None:
    writes = [o for o in ops if o.op == "put"]
    acked = [w for w in writes if w.result == "ok"]
    reads = [o for o in ops if o.op == "get" and o.result == "ok"]
    by_value: dict[str, Op] = {}
    for w in writes:
        if w.value in by_value:
            report.warnings.append(f"key {key}: value {w.value} written twice; its reads are not checked")
            by_value[w.value] = None  # type: ignore[assignment]
        else:
            by_value[w.value] = w
    last_write_done = max((w.complete_ms for w in writes), default=float("-inf"))

    def source(r: Op) -> Op | None:
        return by_value.get(r.value) if r.value is not None else None

    def flag(kind: str, r: Op, detail: str) -> None:
        if kind == "stale_read" and r.invoke_ms > last_write_done:
            kind = "lost_write"
        report.violations.append(Violation(kind, key, r, detail))

    for r in reads:
        report.reads_checked += 1
        if r.invoke_ms > last_write_done:
            report.final_reads += 1
        if r.value is None:
            done = [w for w in acked if w.before(r)]
            if done:
                flag("stale_read", r, f"read found nothing after put {done[0].value} was acknowledged")
            seen = [r0 for r0 in reads if r0.before(r) and r0.value is not None]
            if seen:
                report.violations.append(Violation("read_backwards", key, r,
                                                   f"read found nothing after {seen[0].process} read {seen[0].value}"))
            continue
        if r.value in by_value and by_value[r.value] is None:
            continue
        w = source(r)
        if w is None or w.invoke_ms > r.complete_ms:
            report.violations.append(Violation("unknown_value", key, r, f"value {r.value} was never written before"))
            continue
        newer = [w2 for w2 in acked if w2 is not w and w.before(w2) and w2.before(r)]
        if newer:
            flag("stale_read", r, f"read {r.value} although put {newer[0].value} completed after it and before the read")
            continue
        for r0 in reads:
            w0 = source(r0)
            if r0.before(r) and w0 is not None and w0 is not w and w.before(w0):
                report.violations.append(Violation(
                    "read_backwards", key, r, f"read {r.value} after {r0.process} had read the newer {r0.value}"))
                break


def check_history(ops: list[Op]) -> HistoryReport:
    keys: dict[str, list[Op]] = {}
    for o in ops:
        keys.setdefault(o.key, []).append(o)
    report = HistoryReport(ops=len(ops), keys=len(keys), reads_checked=0, final_reads=0)
    for key, kops in sorted(keys.items()):
        _check_key(key, kops, report)
    return report


# --- cluster decision logs -------------------------------------------------------------------

@dataclass
class LogCheck:
    cluster: str
    nodes: list[str]
    compared_to: int  # lowest height among the compared nodes
    forks: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # height, node -> sha256
    missing: list[str] = field(default_factory=list)  # nodes that could not be read

    @property
    def ok(self) -> bool:
        return not self.forks

    def summary(self) -> str:
        if self.ok:
            return (f"cluster {self.cluster}: logs of {', '.join(self.nodes)} identical up to height "
                    f"{self.compared_to}" + (f" (not read: {', '.join(self.missing)})" if self.missing else ""))
        h, digests = self.forks[0]
        return f"cluster {self.cluster}: FORK at height {h}: " + ", ".join(f"{n}={d[:12]}" for n, d in digests.items())


def compare_logs(cluster: str, logs: dict[str, list[bytes]]) -> LogCheck:
    """`logs[node]` = decisions 1..height of that node. Compares byte for byte up to the lowest height."""
    low = min((len(v) for v in logs.values()), default=0)
    check = LogCheck(cluster, sorted(logs), low)
    for h in range(low):
        digests = {n: hashlib.sha256(v[h]).hexdigest() for n, v in sorted(logs.items())}
        if len(set(digests.values())) > 1:
            check.forks.append((h + 1, digests))
    return check


def check_cluster_logs(dep: Deployment, cluster_id: str, timeout: float = 2.0, max_height: int | None = None) -> LogCheck:
    """Fetch /log/1.. from every reachable node of the cluster and compare up to the lowest height."""
    nodes = dep.cluster_nodes(cluster_id)

    def height(n):
        try:
            return get_status(*n.admin, timeout=timeout, node_id=n.id)[0]["height"]
        except (OSError, RemoteError):
            return None

    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        heights = dict(zip([n.id for n in nodes], pool.map(height, nodes), strict=True))
    reachable = [n for n in nodes if heights[n.id] is not None]
    low = min((heights[n.id] for n in reachable), default=0)
    if max_height is not None:
        low = min(low, max_height)

    def fetch(n):
        out = []
        for h in range(1, low + 1):
            entry = get_log_entry(*n.admin, h, timeout=timeout)
            if entry is None:
                break
            out.append(entry)
        return out

    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        logs = dict(zip([n.id for n in reachable], pool.map(fetch, reachable), strict=True))
    check = compare_logs(cluster_id, logs)
    check.missing = [n.id for n in nodes if heights[n.id] is None]
    return check
