"""Benchmark outputs besides the plot: the JSON result document, a CSV with one row per
(series, step), and rich tables of the steps, peaks, cost of diversity and scaling."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from rich.table import Table

from infra.model.implementations import IMPLEMENTATIONS

# node CPU per implementation: one column per implementation of the registry (impl_a, impl_b, impl_c)
IMPL_CPU_COLUMNS = {name: f"cpu_{name}_s" for name in IMPLEMENTATIONS}
CSV_COLUMNS = ["series", "repeat", "mix", "coordinators", "shards", "users", "ops_ok", "errors", "ops_per_s",
               "lat_mean_ms", "lat_p50_ms", "lat_p99_ms", "lat_max_ms", "get_not_found", "window_s",
               "cpu_nodes_s", *IMPL_CPU_COLUMNS.values(), "cpu_clients_s", "cpu_other_s", "cpu_machine_busy_s",
               "cpu_machine_capacity_s", "node_cpu_ms_per_op", "batch_coordinator", "batch_shard", "loadavg_1m"]


def series_label(s: dict) -> str:
    kind = f"all {s['homogeneous']}" if s["homogeneous"] else "mixed"
    again = f" #{s['repeat']}" if s.get("repeats", 1) > 1 else ""
    return f"{kind}, {s['coordinators']}+{s['shards']} clusters{again}"


def csv_rows(doc: dict) -> list[dict]:
    rows = []
    for s in doc["series"]:
        for st in s["steps"]:
            lat, cpu = st["latency_ms"], st["cpu_s"]
            rows.append({
                "series": s["deployment"], "repeat": s.get("repeat", 1), "mix": s.get("mix") or "", "coordinators": s["coordinators"],
                "shards": s["shards"], "users": st["users"], "ops_ok": st["ops_ok"], "errors": st["errors"],
                "ops_per_s": st["ops_per_s"], "lat_mean_ms": lat["mean"], "lat_p50_ms": lat["p50"],
                "lat_p99_ms": lat["p99"], "lat_max_ms": lat["max"], "get_not_found": st["get_not_found"],
                "window_s": st["window_s"], "cpu_nodes_s": cpu["nodes_total"],
                **{col: cpu["nodes"].get(name, 0.0) for name, col in IMPL_CPU_COLUMNS.items()},
                "cpu_clients_s": cpu["clients"], "cpu_other_s": cpu["other"],
                "cpu_machine_busy_s": cpu["machine_busy"], "cpu_machine_capacity_s": cpu["machine_capacity"],
                "node_cpu_ms_per_op": st["node_cpu_ms_per_op"],
                "batch_coordinator": st.get("mean_batch", {}).get("coordinator"),
                "batch_shard": st.get("mean_batch", {}).get("shard"), "loadavg_1m": st["loadavg_1m"]})
    return rows


def write_outputs(doc: dict, out_dir: Path, stem: str = "bench") -> dict[str, Path]:
    """Write <stem>.json and <stem>.csv into out_dir; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{stem}.json", "csv": out_dir / f"{stem}.csv"}
    paths["json"].write_text(json.dumps(doc, indent=1) + "\n")
    with open(paths["csv"], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        for row in csv_rows(doc):
            w.writerow({k: "" if v is None else v for k, v in row.items()})
    return paths


def _f(x, fmt: str = "{:.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def impl_cpu_text(cpu: dict) -> str:
    """Node CPU seconds per implementation present, by letter: 'a 1.2 b 0.9 c 0.4' ('-' if none)."""
    parts = [f"{IMPLEMENTATIONS[name].letter} {cpu['nodes'][name]:.1f}" for name in IMPLEMENTATIONS
             if name in cpu.get("nodes", {})]
    parts += [f"{name} {v:.1f}" for name, v in sorted(cpu.get("nodes", {}).items()) if name not in IMPLEMENTATIONS]
    return " ".join(parts) or "-"


def step_row(st: dict) -> list[str]:
    lat, cpu = st["latency_ms"], st["cpu_s"]
    return [str(st["users"]), _f(st["ops_per_s"]), _f(lat["mean"]), _f(lat["p50"]), _f(lat["p99"]), _f(lat["max"]),
            str(st["errors"]), _f(cpu["nodes_total"]), impl_cpu_text(cpu), _f(cpu["clients"]), _f(cpu["other"]),
            _f(st["node_cpu_ms_per_op"], "{:.2f}"), _f(st.get("mean_batch", {}).get("coordinator")),
            _f(st.get("mean_batch", {}).get("shard")), _f(st["loadavg_1m"])]


STEP_COLUMNS = ("users", "ops/s", "mean ms", "p50 ms", "p99 ms", "max ms", "errors", "node CPU s",
                "node CPU s by impl", "client CPU s", "other CPU s", "node CPU ms/op", "batch coord", "batch shard", "load")


def series_table(s: dict) -> Table:
    t = Table(title=f"{s['deployment']}: {series_label(s)}")
    for col in STEP_COLUMNS:
        t.add_column(col, justify="right")
    for st in s["steps"]:
        t.add_row(*step_row(st))
    return t


def summary_table(doc: dict) -> Table:
    t = Table(title="peaks")
    for col in ("series", "configuration", "peak ops/s", "at users", "p50 ms", "peak with p50 < SLO", "preload"):
        t.add_column(col)
    for s in doc["series"]:
        p, q, pre = s["peak"], s["peak_within_slo"], s.get("preload")
        t.add_row(s["deployment"], series_label(s), _f(p and p["ops_per_s"]), str(p["users"]) if p else "-",
                  _f(p and p["latency_ms"]["p50"]), _f(q and q["ops_per_s"]),
                  f"{pre['keys_written']}/{pre['keys']} keys" if pre else "-")
    return t


def markdown_tables(doc: dict) -> str:
    """The step tables as GitHub markdown, for docs/benchmarks.md."""
    lines = []
    for s in doc["series"]:
        lines += [f"**{s['deployment']}** ({series_label(s)})", "", "| " + " | ".join(STEP_COLUMNS) + " |",
                  "|" + "---:|" * len(STEP_COLUMNS)]
        lines += ["| " + " | ".join(step_row(st)) + " |" for st in s["steps"]]
        lines.append("")
    for d in doc.get("diversity", []):
        which = "" if d.get("repeat", 1) == 1 else f" ({'median peaks' if d['repeat'] == 'median' else 'repeat ' + str(d['repeat'])})"
        lines.append(f"Cost of diversity at {d['coordinators']}+{d['shards']} clusters{which}: mixed peak "
                     f"{d['mixed_peak']:.1f} ops/s / fastest homogeneous (all {d['fastest_homogeneous']}) "
                     f"{d['homogeneous_peak']:.1f} ops/s = **{d['ratio']:.2f}**")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """`python -m infra.bench.report RESULT.json...`: print the markdown tables (for docs/benchmarks.md)."""
    import sys

    paths = argv if argv is not None else sys.argv[1:]
    if not paths or paths[0] in ("-h", "--help"):
        print("usage: python -m infra.bench.report BENCH.json [BENCH.json ...]\n"
              "Print the markdown tables of `heraclius-ops bench` results (as in docs/benchmarks.md).")
        sys.exit(0 if paths else 2)
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            sys.exit(f"error: cannot read {path}: {e}")
        print(markdown_tables(doc))


if __name__ == "__main__":
    main()
