"""Turn the SPEC 4.1 workload histories of one benchmark step (one file per client process) into
the step's numbers: completed ops/s over the measured window, latency mean/p50/p99/max, errors,
GETs that found nothing, and per-second samples."""

from __future__ import annotations

import json
import math
from pathlib import Path


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 100]) of an ascending list; None if it is empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def load_records(path: Path) -> list[dict]:
    """History records of one client process. A line cut short (the process was killed while
    writing) is ignored; anything else unreadable is a broken contract and raises ValueError."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            if i == len(lines) - 1:
                break
            raise ValueError(f"{path}: line {i + 1} is not JSON") from None
        if not isinstance(rec, dict) or not {"op", "invoke_ms", "complete_ms", "result"} <= rec.keys():
            raise ValueError(f"{path}: line {i + 1} is not a SPEC 4.1 history record")
        records.append(rec)
    return records


def _r(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


def summarise(records: list[dict], warmup_s: float = 0.0) -> dict:
    """Numbers of one step from all its history records (every client process together).

    The window starts `warmup_s` after the first invocation (client start-up and connection set-up
    are not load) and ends at the last completion. Throughput counts successful operations that
    completed inside the window; latencies are those of successful operations invoked inside it.
    Errors count every record whose result is not `ok`, over the whole step."""
    errors = sum(1 for r in records if r["result"] != "ok")
    ok = [r for r in records if r["result"] == "ok"]
    base = {"ops_total": len(records), "errors": errors}
    if not ok:
        return {**base, "ops_ok": 0, "window_s": 0.0, "ops_per_s": 0.0, "latency_ms": dict.fromkeys(
            ("mean", "p50", "p99", "max")), "get_not_found": 0, "samples": []}
    start = min(r["invoke_ms"] for r in records) + warmup_s * 1000
    end = max(r["complete_ms"] for r in records)
    if end - start < 500:  # step too short for a warm-up: measure all of it
        start = min(r["invoke_ms"] for r in records)
    window_ms = max(end - start, 1.0)
    done = [r for r in ok if r["complete_ms"] >= start]
    measured = sorted(r["complete_ms"] - r["invoke_ms"] for r in ok if r["invoke_ms"] >= start)
    if not measured:
        measured = sorted(r["complete_ms"] - r["invoke_ms"] for r in ok)
    samples: dict[int, list[float]] = {}
    failed_per_s: dict[int, int] = {}
    for r in done:
        samples.setdefault(int((r["complete_ms"] - start) // 1000), []).append(r["complete_ms"] - r["invoke_ms"])
    for r in records:
        if r["result"] != "ok" and r["complete_ms"] >= start:
            sec = int((r["complete_ms"] - start) // 1000)
            failed_per_s[sec] = failed_per_s.get(sec, 0) + 1
    seconds = sorted(set(samples) | set(failed_per_s))
    return {
        **base,
        "ops_ok": len(ok),
        "window_s": round(window_ms / 1000, 3),
        "ops_per_s": round(len(done) / (window_ms / 1000), 2),
        "latency_ms": {"mean": _r(sum(measured) / len(measured)), "p50": _r(percentile(measured, 50)),
                       "p99": _r(percentile(measured, 99)), "max": _r(measured[-1])},
        "get_not_found": sum(1 for r in ok if r["op"] == "get" and r.get("value") is None),
        "samples": [{"t_s": s, "ok": len(samples.get(s, [])), "failed": failed_per_s.get(s, 0),
                     "p50_ms": _r(percentile(sorted(samples.get(s, [])), 50))} for s in seconds],
    }


def written_keys(records: list[dict]) -> set[str]:
    """Keys (hex) that a successful PUT wrote."""
    return {r["key"] for r in records if r["op"] == "put" and r["result"] == "ok"}


def peak(steps: list[dict], slo_p50_ms: float | None = None) -> dict | None:
    """The step with the highest throughput; with `slo_p50_ms`, among steps whose p50 is below it."""
    eligible = [s for s in steps if s["ops_per_s"] > 0 and (
        slo_p50_ms is None or (s["latency_ms"]["p50"] is not None and s["latency_ms"]["p50"] < slo_p50_ms))]
    if not eligible:
        return None
    best = max(eligible, key=lambda s: s["ops_per_s"])
    return {"users": best["users"], "ops_per_s": best["ops_per_s"], "latency_ms": best["latency_ms"]}
