"""Real impl_a / impl_b nodes, started by command line: deploy a mixed network, kv round trips
with both client libraries, workload history and log checks, crash the leader and still serve, a
fail-silent leader, latency and a partitioned region (root), the demo, destroy."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra import demo, ops
from infra.model import implementations
from infra.model.deployment import load_deployment
from infra.nodes import process
from infra.nodes.client import final_reads, kv_get, kv_put, workload
from infra.providers.local import provider as local
from infra.status import collect_status, status_document
from infra.testbed import faults
from infra.testbed.history import check_cluster_logs, check_history, load_history


def wait_for(predicate, timeout, what, dep=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    state = status_document(collect_status(dep)) if dep is not None else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{state}")


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    home = tmp_path_factory.mktemp("real")
    try:
        dep = ops.deploy("mixed", home, testbed=True, health_timeout=90)
        yield dep
    finally:
        ops.destroy("mixed", home)


def verdicts(dep):
    return {c.id: c.verdict for c in collect_status(dep)}


def test_mixed_deployment_is_healthy(mixed):
    impls = {c["id"]: sorted({n["implementation"] for n in c["nodes"]}) for c in mixed.manifest["clusters"]}
    assert impls == {"c0": ["impl_a", "impl_b"], "s0": ["impl_a", "impl_b"]}
    clusters = collect_status(mixed)
    assert all(s.up for c in clusters for s in c.nodes)
    reported = {s.node.id: s.status["implementation"] for c in clusters for s in c.nodes}
    assert reported == {n.id: n.implementation for n in mixed.nodes}


def test_kv_round_trip_across_client_libraries(mixed):
    put = kv_put(mixed, "rt-key", "written-by-a", client="a")
    assert put.ok and put.doc["value"] == "written-by-a" and put.doc["found"] is False
    got = kv_get(mixed, "rt-key", client="b")
    assert got.ok and got.doc["found"] is True and got.doc["value"] == "written-by-a"
    assert kv_put(mixed, "rt-key", "then-b", client="b").doc["found"] is True
    assert kv_get(mixed, "rt-key", client="a").doc["value"] == "then-b"
    assert kv_put(mixed, "00ff", "deadbeef", client="b", hex_=True).ok
    binary = kv_get(mixed, "00ff", client="a", hex_=True)
    assert binary.ok and binary.doc["value"] == "deadbeef" and binary.doc["key"] == "00ff"
    missing = kv_get(mixed, "never-written", client="a")
    assert missing.ok and missing.doc["found"] is False and missing.doc["value"] is None


def test_workloads_are_linearizable_and_logs_agree(mixed, tmp_path):
    h = tmp_path / "h.jsonl"
    for client in ("a", "b"):
        r = workload(mixed, client, ops=30, concurrency=4, keys=4, seed=7, key_prefix="wl-", history=h)
        assert r.ok and r.doc["ok"] == r.doc["ops"] > 0, r.doc
    assert final_reads(mixed, "a", [f"wl-{i}" for i in range(4)], h) == 4
    report = check_history(load_history(h))
    assert report.ok, report.violations[:3]
    assert report.reads_checked > 0 and report.keys == 4 and report.final_reads >= 4
    for c in ("c0", "s0"):
        check = check_cluster_logs(mixed, c)
        assert check.ok and check.compared_to > 0 and len(check.nodes) == 4, check.summary()


def test_crash_leader_still_serves_then_recovers(mixed):
    leader = next(c for c in collect_status(mixed) if c.id == "c0").leader
    faults.crash(mixed, leader)
    assert verdicts(mixed)["c0"] == "at-risk"
    r = kv_put(mixed, "after-crash", "still-serving", client="b", timeout_ms=20000)
    assert r.ok, r.doc
    assert kv_get(mixed, "after-crash", client="a", timeout_ms=20000).doc["value"] == "still-serving"
    faults.start(mixed, leader, timeout=40)

    def caught_up():
        c0 = next(c for c in collect_status(mixed) if c.id == "c0")
        heights = {s.node.id: s.status["height"] for s in c0.nodes if s.up}
        return len(heights) == 4 and heights[leader] >= r.doc["height"]

    wait_for(caught_up, 60, f"{leader} to catch up")
    assert check_cluster_logs(mixed, "c0").ok


@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_latency_and_partitioned_region(tmp_path):
    try:
        dep = ops.deploy("parted", tmp_path, network="netns", latency_ms=40, health_timeout=90)
        # 40 ms one-way between regions: an operation needs >= 6 cross-region hops (3 decisions
        # whose quorums span regions, 2 queue transfers), so its latency cannot be below 200 ms
        r = workload(dep, "b", ops=6, concurrency=2, keys=2, seed=3, key_prefix="lat-")
        assert r.ok and r.doc["latency_ms"]["p50"] >= 200, r.doc
        # ap-south holds one node of each cluster: both keep a quorum
        faults.partition(dep, ["ap-south"])
        assert verdicts(dep) == {"c0": "at-risk", "s0": "at-risk"}
        r = kv_put(dep, "p-key", "cut", client="a", timeout_ms=20000)
        assert r.ok, r.doc
        faults.heal(dep)
        cut = [n.id for n in dep.nodes if n.region == "ap-south"]

        def caught_up():
            st = {s.node.id: s.status for c in collect_status(dep) for s in c.nodes if s.up}
            return all(i in st for i in cut) and st[cut[0]]["height"] >= r.doc["height"]

        wait_for(caught_up, 60, "the partitioned nodes to catch up")
        assert all(check_cluster_logs(dep, c).ok for c in ("c0", "s0"))
    finally:
        ops.destroy("parted", tmp_path)


def test_byzantine_silent_leader(mixed):
    """A fail-silent leader (SPEC 16 `silent`): the cluster changes view and keeps serving; status
    counts the node as a fault and echoes its rule exactly; clearing the rule heals the verdict."""
    leader = next(c for c in collect_status(mixed) if c.id == "c0").leader
    faults.byzantine(mixed, leader, [{"action": "silent"}], timeout=40)
    c0 = next(c for c in collect_status(mixed) if c.id == "c0")
    assert c0.byzantine == [leader] and c0.verdict == "at-risk"
    assert next(s for s in c0.nodes if s.node.id == leader).status["testbed_faults"] == [{"action": "silent"}]
    for i, client in enumerate(("a", "b")):
        r = kv_put(mixed, f"silent-{i}", client, client=client, timeout_ms=20000)
        assert r.ok, r.doc
    wait_for(lambda: next(c for c in collect_status(mixed) if c.id == "c0").leader != leader, 60, "a new leader")
    faults.byzantine(mixed.reload(), leader, [], timeout=40)
    assert "faults" not in next(n for n in mixed.reload().manifest["clusters"][0]["nodes"] if n["id"] == leader)
    wait_for(lambda: verdicts(mixed)["c0"] in ("healthy", "degraded"), 60, "c0 to recover", mixed)
    assert kv_get(mixed, "silent-1", client="a").doc["value"] == "b"


def test_demo_then_destroy(tmp_path, monkeypatch, capsys):
    """`./dev demo` = `python -m infra.demo`: deploys, runs both clients, checks, prints verdicts;
    a second run reuses the running deployment; destroy then stops every node (idempotently)."""
    monkeypatch.setenv("HERACLIUS_HOME", str(tmp_path))
    try:
        r = subprocess.run([sys.executable, "-m", "infra.demo", "--seconds", "1"], capture_output=True, text=True,
                           timeout=240, cwd=Path(__file__).resolve().parents[2])
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        clients = [f"client {i.name}: " for i in implementations.runnable()]  # impl_c's too when built
        for needle in (*clients, ": OK", "cluster c0 (coordinator): f=1",
                       "losing impl_a stops clusters c0, s0", "Stop it with: .venv/bin/heraclius-ops destroy"):
            assert needle in r.stdout, needle
        if len(clients) == 3:
            assert "impl_c" in r.stdout and demo.demo_mix() == "diverse"
        assert demo.run(seconds=1) == 0
        out = capsys.readouterr().out
        assert "using the existing deployment 'default'" in out and ": OK" in out
        dep = load_deployment("default", tmp_path)
        pids = [(n.pid, local.node_marker(dep, n.id)) for n in dep.nodes]
        assert all(process.is_alive(p, m) for p, m in pids)
        assert ops.destroy("default", tmp_path)  # destroy stops every node and removes the directory
        assert not any(process.is_alive(p, m) for p, m in pids) and not dep.root.exists()
        assert not ops.destroy("default", tmp_path)
    finally:
        ops.destroy("default", tmp_path)
