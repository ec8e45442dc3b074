"""Interop matrix: real impl_a / impl_b processes over real sockets, one network per cell, with
coordinator and shard clusters of different implementation mixes, driven by both client libraries."""

from __future__ import annotations

import pytest

from infra import ops
from tests.testbed import scenario as sc

C, S = "coordinator", "shard"
CELLS = {
    "AAAA": [sc.ClusterSpec("c0", C, "aaaa"), sc.ClusterSpec("s0", S, "aaaa")],
    "BBBB": [sc.ClusterSpec("c0", C, "bbbb"), sc.ClusterSpec("s0", S, "bbbb")],
    "AABB": [sc.ClusterSpec("c0", C, "aabb"), sc.ClusterSpec("s0", S, "abab")],
    "ABAB": [sc.ClusterSpec("c0", C, "abab"), sc.ClusterSpec("s0", S, "aabb"), sc.ClusterSpec("s1", S, "abbb")],
    "ABBB": [sc.ClusterSpec("c0", C, "abbb"), sc.ClusterSpec("s0", S, "baaa")],
    "BAAA": [sc.ClusterSpec("c0", C, "baaa"), sc.ClusterSpec("s0", S, "abbb")],
}


@pytest.fixture
def cell(request, tmp_path):
    name = f"mx-{request.param.lower()}"
    request.addfinalizer(lambda: ops.destroy(name, tmp_path))
    return sc.deploy(name, tmp_path, CELLS[request.param])


@pytest.mark.parametrize("cell", list(CELLS), indirect=True)
def test_matrix_cell(cell, tmp_path):
    """Proves that every implementation mix interoperates: values written by one client library
    are read back by the other on every shard, a concurrent workload of both libraries is
    linearizable, and every node of every cluster holds a byte-identical decision log."""
    dep = cell
    for shard, (ka, kb) in sc.keys_on_shards(dep, "mx-", 2).items():
        put_a = sc.kv(dep, "a", "put", ka, f"A-{ka}")
        assert put_a.get("value") == f"A-{ka}" and put_a["found"] is False and put_a["shard"] == shard, put_a
        put_b = sc.kv(dep, "b", "put", kb, f"B-{kb}")
        assert put_b.get("value") == f"B-{kb}" and put_b["shard"] == shard, put_b
        got_b = sc.kv(dep, "b", "get", ka)
        assert (got_b.get("found"), got_b.get("value"), got_b.get("shard")) == (True, f"A-{ka}", shard), got_b
        got_a = sc.kv(dep, "a", "get", kb)
        assert (got_a.get("found"), got_a.get("value"), got_a.get("shard")) == (True, f"B-{kb}", shard), got_a
    missing = sc.kv(dep, "b", "get", "mx-never-written")
    assert missing.get("found") is False and missing.get("value") is None, missing
    sc.checked_workload(dep, tmp_path / "history.jsonl", "mxw-", ops=20, keys=6)
    for c in dep.clusters:
        assert sc.assert_logs_identical(dep, c["id"], min_height=2) >= 2
