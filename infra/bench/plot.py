"""PNG plots of a benchmark result document (matplotlib, Agg backend): throughput and latency
against offered users for each series, and peak throughput against cluster count for a scaling
sweep."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

from infra.bench.report import series_label  # noqa: E402


def plot_sweep(doc: dict, path: Path) -> Path:
    """Two panels: completed ops/s and p50/p99 latency, both against users (log2 axis)."""
    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(12, 4.5))
    repeated = any(s.get("repeats", 1) > 1 for s in doc["series"])
    kinds = sorted({(s["homogeneous"] or "", s["coordinators"], s["shards"]) for s in doc["series"]})
    for s in doc["series"]:
        users = [st["users"] for st in s["steps"]]
        label = series_label(s)
        style = {}
        if repeated:  # one colour per configuration, one marker per repeat; p99 left out (too many lines)
            style = {"color": f"C{kinds.index((s['homogeneous'] or '', s['coordinators'], s['shards'])) % 10}",
                     "marker": "os^dv"[(s.get("repeat", 1) - 1) % 5]}
        (line,) = ax_t.plot(users, [st["ops_per_s"] for st in s["steps"]], **{"marker": "o", **style}, label=label)
        p50 = [st["latency_ms"]["p50"] for st in s["steps"]]
        p99 = [st["latency_ms"]["p99"] for st in s["steps"]]
        ax_l.plot(users, [float("nan") if v is None else v for v in p50], marker=line.get_marker(),
                  color=line.get_color(), label=f"{label} p50")
        if not repeated:
            ax_l.plot(users, [float("nan") if v is None else v for v in p99], marker="x", linestyle="--",
                      color=line.get_color(), label=f"{label} p99")
    cfg = doc["config"]
    for ax, ylabel in ((ax_t, "completed ops/s"), (ax_l, "latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("closed-loop users (all clients)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        ax.xaxis.set_major_formatter(ticker.ScalarFormatter())
    ax_t.set_ylim(bottom=0)
    ax_l.set_yscale("log")
    ax_l.yaxis.set_major_formatter(ticker.ScalarFormatter())
    ax_l.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax_l.yaxis.set_minor_formatter(ticker.NullFormatter())
    fig.suptitle(f"Heraclius {cfg['workload'].upper()} sweep, {cfg['step_s']:g} s per step "
                 f"({doc['started_utc']}, load {doc['machine']['loadavg_1m']:.1f} on {doc['machine']['cpus']} CPUs)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_scaling(doc: dict, path: Path) -> Path:
    """Peak ops/s against the number of clusters (coordinators + shards), one line per node mix."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    by_kind: dict[str, list[dict]] = {}
    for row in doc["scaling"]:
        by_kind.setdefault(row["homogeneous"] or "mixed", []).append(row)
    for kind, rows in sorted(by_kind.items()):
        ax.plot([r["clusters"] for r in rows], [r["peak_ops_per_s"] for r in rows], marker="o",
                label=kind if kind == "mixed" else f"all {kind}")
    ax.set_xlabel("clusters (coordinator + shard)")
    ax.set_ylabel("peak completed ops/s")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title("Heraclius scaling sweep")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_all(doc: dict, out_dir: Path, stem: str = "bench") -> dict[str, Path]:
    paths = {"png": plot_sweep(doc, out_dir / f"{stem}.png")}
    if doc.get("scaling"):
        paths["scaling_png"] = plot_scaling(doc, out_dir / f"{stem}_scaling.png")
    return paths
