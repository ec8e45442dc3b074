"""A short real benchmark (mixed impl_a/impl_b 1+1 clusters, tiny user counts, a few seconds a
step) through the `heraclius-ops bench` command line: the command keeps working, and its JSON, CSV
and PNG outputs exist and agree with each other."""

import csv
import json
import subprocess
import sys

import pytest

from infra import ops
from infra.nodes.client import REPO_ROOT

NAME = "bt"
SERIES = f"{NAME}-alternate-1x1"


@pytest.fixture
def run_dir(tmp_path, request):
    home = tmp_path / "deployments"
    request.addfinalizer(lambda: ops.destroy(SERIES, home))  # bench destroys it too; this covers a crash
    return home, tmp_path / "out"


def test_short_get_sweep_writes_consistent_outputs(run_dir):
    home, out = run_dir
    cmd = [sys.executable, "-c", "from infra.cli import main; main()", "bench", "--name", NAME, "--home", str(home),
           "--deploy", "--workload", "get", "--users-start", "2", "--users-end", "4", "--step-s", "3",
           "--keys", "8", "--warmup-s", "0.5", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=200, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not (home / SERIES).exists(), "bench must destroy the deployment it made"

    doc = json.loads((out / "bench.json").read_text())
    assert doc["config"]["workload"] == "get" and doc["machine"]["cpus"] >= 1
    [series] = doc["series"]
    assert series["deployment"] == SERIES and series["homogeneous"] is None
    assert sorted(series["implementations"]) == ["c0", "s0"]
    assert {i for impls in series["implementations"].values() for i in impls} == {"impl_a", "impl_b"}
    # --preload writes every key once, and the keys are the SPEC 4.1 --key-bytes 32 keys bench expects
    assert series["preload"] == {"puts": 8, "failed": 0, "keys": 8, "keys_written": 8, "coverage": 1.0}
    steps = series["steps"]
    assert [s["users"] for s in steps] == [2, 4]
    for s in steps:
        assert s["ops_ok"] > 0 and s["errors"] == 0 and s["ops_per_s"] > 0
        lat = s["latency_ms"]
        assert 0 < lat["p50"] <= lat["p99"] <= lat["max"]
        assert s["cpu_s"]["nodes_total"] > 0 and set(s["cpu_s"]["nodes"]) == {"impl_a", "impl_b"}
        assert s["nodes_running"] == "8/8"
        assert set(s["consensus"]) == {"c0", "s0"} and all(c["decisions"] > 0 for c in s["consensus"].values())
        assert s["mean_batch"]["coordinator"] >= 1 and s["mean_batch"]["shard"] >= 1
        [client] = s["clients"]
        assert client["cluster"] == "c0" and client["client"] == "a" and client["returncode"] == 0
        # the client's own summary counts the same operations as its history
        assert client["summary"]["ok"] == s["ops_ok"] and client["summary"]["failed"] == 0
        assert sum(x["ok"] for x in s["samples"]) <= s["ops_ok"]
        assert s["get_not_found"] == 0  # every key was preloaded
    assert series["peak"]["ops_per_s"] == max(s["ops_per_s"] for s in steps)

    with open(out / "bench.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["users"]) for r in rows] == [s["users"] for s in steps]
    for row, s in zip(rows, steps, strict=True):
        assert row["series"] == SERIES
        assert float(row["ops_per_s"]) == s["ops_per_s"] and int(row["ops_ok"]) == s["ops_ok"]
        assert float(row["lat_p99_ms"]) == s["latency_ms"]["p99"]
        assert float(row["cpu_nodes_s"]) == s["cpu_s"]["nodes_total"]
        assert float(row["batch_shard"]) == s["mean_batch"]["shard"]

    png = (out / "bench.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "peak" in proc.stdout and SERIES in proc.stdout


def test_bench_refuses_unknown_deployment(tmp_path):
    cmd = [sys.executable, "-c", "from infra.cli import main; main()", "bench", "--name", "nope",
           "--home", str(tmp_path), "--step-s", "1", "--out", str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert proc.returncode == 2 and "unknown deployment" in proc.stderr
    assert not (tmp_path / "out" / "bench.json").exists()
