"""Pure functions of the benchmark: step statistics from histories, /proc parsing, step plans."""

import json

import pytest

from infra.bench import run as bench
from infra.bench import stats as bench_stats
from infra.bench.procstat import TICKS, parse_machine_stat, parse_stat_cpu
from infra.errors import UsageError


def rec(invoke, latency, op="get", result="ok", value="76"):
    return {"op": op, "key": "6b", "value": value, "invoke_ms": invoke, "complete_ms": invoke + latency,
            "result": result}


def test_percentile_nearest_rank():
    values = sorted(float(v) for v in range(1, 101))
    assert bench_stats.percentile(values, 50) == 50.0
    assert bench_stats.percentile(values, 99) == 99.0
    assert bench_stats.percentile(values, 100) == 100.0
    assert bench_stats.percentile([7.0], 99) == 7.0
    assert bench_stats.percentile([], 50) is None


def test_summarise_window_latency_errors_and_samples():
    t0 = 1_000_000.0
    records = [rec(t0, 900.0)]  # start-up op: inside the warm-up, latency not measured
    # after 1 s of warm-up: 10 ops/s for 4 s, latencies 10..49 ms
    records += [rec(t0 + 1000 + 100 * i, 10.0 + i) for i in range(40)]
    records += [rec(t0 + 2000, 5000.0, result="fail"), rec(t0 + 2500, 30.0, op="get", value=None)]
    s = bench_stats.summarise(records, warmup_s=1.0)
    assert s["ops_total"] == 43 and s["errors"] == 1 and s["ops_ok"] == 42
    assert s["get_not_found"] == 1
    end = t0 + 2000 + 5000.0  # the failed op completes last
    assert s["window_s"] == pytest.approx((end - (t0 + 1000)) / 1000)
    assert s["ops_per_s"] == pytest.approx(41 / s["window_s"], rel=1e-3)  # the 900 ms op completed before the window
    lat = s["latency_ms"]
    assert lat["max"] == 49.0 and lat["p50"] == 30.0 and lat["p99"] == 49.0  # 41 measured values, 30 appears twice
    assert sum(x["ok"] for x in s["samples"]) == 41
    assert sum(x["failed"] for x in s["samples"]) == 1
    assert [x["t_s"] for x in s["samples"]] == sorted(x["t_s"] for x in s["samples"])


def test_summarise_no_success():
    s = bench_stats.summarise([rec(0.0, 10.0, result="unknown")], warmup_s=1.0)
    assert s["ops_ok"] == 0 and s["errors"] == 1 and s["ops_per_s"] == 0.0 and s["latency_ms"]["p50"] is None
    assert bench_stats.summarise([], 1.0)["ops_total"] == 0


def test_load_records_ignores_torn_last_line_only(tmp_path):
    good = json.dumps(rec(1.0, 2.0))
    p = tmp_path / "h.jsonl"
    p.write_text(good + "\n" + good + "\n" + good[:20])
    assert len(bench_stats.load_records(p)) == 2
    p.write_text(good + "\n{not json\n" + good + "\n")
    with pytest.raises(ValueError):
        bench_stats.load_records(p)
    assert bench_stats.load_records(tmp_path / "missing") == []


def test_peak_and_slo():
    steps = [{"users": u, "ops_per_s": t, "latency_ms": {"p50": p}} for u, t, p in
             ((8, 100.0, 20.0), (16, 180.0, 90.0), (32, 200.0, 150.0), (64, 190.0, 300.0))]
    assert bench_stats.peak(steps)["users"] == 32
    assert bench_stats.peak(steps, slo_p50_ms=100.0)["users"] == 16
    assert bench_stats.peak(steps, slo_p50_ms=10.0) is None


def test_proc_stat_parsing():
    line = "1234 (py thon) (x)) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 1 0 100 0 0"
    assert parse_stat_cpu(line) == pytest.approx(400 / TICKS)
    busy, total = parse_machine_stat("cpu  100 5 50 800 45 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    assert busy == pytest.approx(155 / TICKS) and total == pytest.approx(1000 / TICKS)


def test_steps_users_split_and_keys():
    cfg = bench.BenchConfig(users_start=3, users_end=40, keys=1000)
    assert cfg.user_steps() == [3, 6, 12, 24]
    assert bench.split_users(5, ["c0", "c1"]) == {"c0": 3, "c1": 2}
    assert bench.split_users(1, ["c0", "c1", "c2"]) == {"c0": 1}
    keys = {bytes.fromhex(k) for k in cfg.expected_keys()}
    assert len(keys) == 1000 and {len(k) for k in keys} == {bench.KEY_BYTES}
    assert cfg.key_args() == ["--keys", "1000", "--key-prefix", "bench1-", "--key-bytes", "32"]
    payments = bench.BenchConfig(workload="payments")
    assert payments.key_prefix() == "acct-" and payments.load_args() == ["--pattern", "payments"]
    assert bench.BenchConfig(workload="mixed").load_args() == ["--put-ratio", "0.5"]
    assert bench.BenchConfig(workload="put", put_ratio=0.25).load_args() == ["--put-ratio", "0.25"]
    for bad in (dict(workload="scan"), dict(users_start=0), dict(users_start=9, users_end=8), dict(client="d")):
        with pytest.raises(UsageError):
            bench.BenchConfig(**bad).check()


def series(homog, peak, repeat=1):
    return {"coordinators": 1, "shards": 1, "homogeneous": homog, "peak": {"ops_per_s": peak}, "repeat": repeat}


def test_cost_of_diversity_ratio():
    d = bench.diversity([series(None, 90.0), series("impl_a", 120.0), series("impl_b", 100.0)])
    assert d == [{"coordinators": 1, "shards": 1, "repeat": 1, "mixed_peak": 90.0, "fastest_homogeneous": "impl_a",
                  "homogeneous_peak": 120.0, "ratio": 0.75}]


def test_cost_of_diversity_over_repeats_uses_median_peaks():
    runs = [series(None, 90.0, 1), series("impl_a", 120.0, 1), series("impl_b", 100.0, 1),
            series(None, 300.0, 2), series("impl_a", 100.0, 2), series("impl_b", 200.0, 2),
            series(None, 110.0, 3), series("impl_a", 130.0, 3), series("impl_b", 90.0, 3)]
    d = bench.diversity(runs)
    assert [(x["repeat"], x["ratio"]) for x in d] == [(1, 0.75), (2, 1.5), (3, 0.846), ("median", 0.917)]
    median = d[-1]  # mixed median 110; impl_a median 120 beats impl_b median 100
    assert median["mixed_peak"] == 110.0 and median["fastest_homogeneous"] == "impl_a"
    assert median["homogeneous_peak"] == 120.0


def test_repeats_rotate_series_order():
    target = bench.Target(name="x", deploy=True, mixes=["alternate", "a", "b"], repeat=3)
    specs = target.series_specs()
    assert [s["deployment"] for s in specs] == ["x-alternate-1x1", "x-a-1x1", "x-b-1x1"]
    order = [(r, s["mix"]) for r, s in bench.rotation(specs, target.repeat)]
    assert order == [(0, "alternate"), (0, "a"), (0, "b"), (1, "a"), (1, "b"), (1, "alternate"),
                     (2, "b"), (2, "alternate"), (2, "a")]


def test_profile_summary_by_function():
    from infra.bench.profile import summarise_raw
    raw = ("<module> (impl/node.py:3);run_forever (asyncio/base_events.py:9);persist (impl/storage.py:40) 6\n"
           "<module> (impl/node.py:3);run_forever (asyncio/base_events.py:9);verify (impl/crypto.py:7) 3\n"
           "<module> (impl/node.py:3);handle (impl/runtime.py:5);verify (impl/crypto.py:7) 1\n")
    s = summarise_raw(raw)
    assert s["samples"] == 10
    assert s["self"] == [("persist (storage.py)", 60.0), ("verify (crypto.py)", 40.0)]
    inclusive = dict(s["inclusive"])
    assert inclusive == {"persist (storage.py)": 60.0, "verify (crypto.py)": 40.0, "handle (runtime.py)": 10.0}


def test_metrics_counters_and_delta():
    from infra.bench.metrics import delta, parse_counters
    text = ("# HELP heraclius_decisions_total decisions applied\n# TYPE heraclius_decisions_total counter\n"
            'heraclius_decisions_total{node="c0-n0",cluster="c0"} 87\n'
            'heraclius_batch_inputs_total{node="c0-n0",cluster="c0"} 337\n'
            'heraclius_height{node="c0-n0",cluster="c0"} 87\n')
    assert parse_counters(text) == {"heraclius_decisions_total": 87.0, "heraclius_batch_inputs_total": 337.0}
    before = {"c0": {"node": "c0-n0", "heraclius_decisions_total": 87.0, "heraclius_batch_inputs_total": 337.0},
              "s0": {"node": "s0-n0", "heraclius_decisions_total": 5.0, "heraclius_batch_inputs_total": 5.0}}
    after = {"c0": {"node": "c0-n0", "heraclius_decisions_total": 107.0, "heraclius_batch_inputs_total": 837.0},
             "s0": {"node": "s0-n1", "heraclius_decisions_total": 9.0, "heraclius_batch_inputs_total": 9.0}}
    assert delta(before, after, 10.0) == {"c0": {"node": "c0-n0", "decisions": 20, "decisions_per_s": 2.0,
                                                 "mean_batch": 25.0}}


def test_three_implementations_clients_and_cpu_columns():
    """--client accepts c and diverse (a, b, c, a, ...), and the CSV and the step table report node
    CPU for every implementation of the registry, impl_c included."""
    from infra.bench import report as bench_report

    for client in ("a", "b", "c", "alternate", "diverse"):
        bench.BenchConfig("get", 2, 4, 3, 8, client).check()
    with pytest.raises(UsageError, match="unknown --client 'd'"):
        bench.BenchConfig("get", 2, 4, 3, 8, "d").check()
    diverse = bench.BenchConfig("get", 2, 4, 3, 8, "diverse")
    assert [bench.client_for(diverse, i) for i in range(4)] == ["a", "b", "c", "a"]
    assert bench.client_for(bench.BenchConfig("get", 2, 4, 3, 8, "c"), 1) == "c"
    cols = bench_report.CSV_COLUMNS
    assert cols[cols.index("cpu_nodes_s") + 1:cols.index("cpu_clients_s")] == ["cpu_impl_a_s", "cpu_impl_b_s", "cpu_impl_c_s"]
    cpu = {"nodes_total": 6.0, "nodes": {"impl_a": 3.0, "impl_c": 1.0, "impl_b": 2.0}, "clients": 1.0, "other": 0.5,
           "machine_busy": 8.0, "machine_capacity": 20.0}
    step = {"users": 2, "ops_ok": 10, "errors": 0, "ops_per_s": 5.0, "get_not_found": 0, "window_s": 2.0,
            "latency_ms": {"mean": 1.0, "p50": 1.0, "p99": 2.0, "max": 3.0}, "cpu_s": cpu,
            "node_cpu_ms_per_op": 600.0, "loadavg_1m": 1.0}
    doc = {"series": [{"deployment": "x", "mix": "diverse", "coordinators": 1, "shards": 1, "homogeneous": None,
                       "steps": [step]}]}
    [row] = bench_report.csv_rows(doc)
    assert (row["cpu_impl_a_s"], row["cpu_impl_b_s"], row["cpu_impl_c_s"]) == (3.0, 2.0, 1.0)
    assert bench_report.impl_cpu_text(cpu) == "a 3.0 b 2.0 c 1.0"
    assert bench_report.step_row(step)[bench_report.STEP_COLUMNS.index("node CPU s by impl")] == "a 3.0 b 2.0 c 1.0"
    assert "a 3.0 b 2.0 c 1.0" in bench_report.markdown_tables(doc)
