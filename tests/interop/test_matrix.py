"""Interop matrix: real impl_a / impl_b / impl_c processes over real sockets, one network per cell,
with coordinator and shard clusters of different implementation mixes, driven by the client
libraries of the implementations in the cell (impl_a's and impl_b's everywhere, impl_c's
`heraclius-client` in every cell holding impl_c nodes)."""

from __future__ import annotations

import pytest

from infra import ops
from tests.testbed import scenario as sc

C, S = "coordinator", "shard"
AB, ABC = ("a", "b"), ("a", "b", "c")
# cell -> (clusters, client libraries). Cells with impl_c combine several mixes in one network (a
# second shard cluster) to keep the matrix at one network per cell on the 2-core CI machine.
CELLS = {
    "AAAA": ([sc.ClusterSpec("c0", C, "aaaa"), sc.ClusterSpec("s0", S, "aaaa")], AB),
    "BBBB": ([sc.ClusterSpec("c0", C, "bbbb"), sc.ClusterSpec("s0", S, "bbbb")], AB),
    "AABB": ([sc.ClusterSpec("c0", C, "aabb"), sc.ClusterSpec("s0", S, "abab")], AB),
    "ABAB": ([sc.ClusterSpec("c0", C, "abab"), sc.ClusterSpec("s0", S, "aabb"), sc.ClusterSpec("s1", S, "abbb")], AB),
    "ABBB": ([sc.ClusterSpec("c0", C, "abbb"), sc.ClusterSpec("s0", S, "baaa")], AB),
    "BAAA": ([sc.ClusterSpec("c0", C, "baaa"), sc.ClusterSpec("s0", S, "abbb")], AB),
    # impl_c everywhere: its coordinator and shard with all three client libraries
    "CCCC": ([sc.ClusterSpec("c0", C, "cccc"), sc.ClusterSpec("s0", S, "cccc")], ABC),
    # coordinator a,b,c,a (impl_a leads view 0); shards a,b,c,c and c,a,b,a (impl_c leads s1)
    "ABCA": ([sc.ClusterSpec("c0", C, "abca"), sc.ClusterSpec("s0", S, "abcc"), sc.ClusterSpec("s1", S, "caba")], ABC),
    # impl_c leads the coordinator; shards a,b,c,a and all impl_c
    "CABA": ([sc.ClusterSpec("c0", C, "caba"), sc.ClusterSpec("s0", S, "abca"), sc.ClusterSpec("s1", S, "cccc")], ABC),
    # two impl_c members in the coordinator (no implementation holds a quorum); shard led by impl_c
    "ABCC": ([sc.ClusterSpec("c0", C, "abcc"), sc.ClusterSpec("s0", S, "caba")], ABC),
}


@pytest.fixture
def cell(request, tmp_path):
    name = f"mx-{request.param.lower()}"
    specs, clients = CELLS[request.param]
    request.addfinalizer(lambda: ops.destroy(name, tmp_path))
    return sc.deploy(name, tmp_path, specs), clients


@pytest.mark.parametrize("cell", list(CELLS), indirect=True)
def test_matrix_cell(cell, tmp_path):
    """Proves that every implementation mix interoperates: a value written by each client library
    is read back by another one on every shard, a workload of every library is linearizable, and
    every node of every cluster holds a byte-identical decision log."""
    dep, clients = cell
    for shard, keys in sc.keys_on_shards(dep, "mx-", len(clients)).items():
        for client, key in zip(clients, keys, strict=True):
            put = sc.kv(dep, client, "put", key, f"{client.upper()}-{key}")
            assert put.get("value") == f"{client.upper()}-{key}" and put["shard"] == shard, (client, put)
            assert put.get("found") is False, (client, put)
        for i, (client, key) in enumerate(zip(clients, keys, strict=True)):
            reader = clients[(i + 1) % len(clients)]
            got = sc.kv(dep, reader, "get", key)
            assert (got.get("found"), got.get("value"), got.get("shard")) == (True, f"{client.upper()}-{key}", shard), \
                (reader, got)
    for client in clients:
        missing = sc.kv(dep, client, "get", "mx-never-written")
        assert missing.get("found") is False and missing.get("value") is None, (client, missing)
    sc.checked_workload(dep, tmp_path / "history.jsonl", "mxw-", ops=20, keys=6, clients=clients)
    for c in dep.clusters:
        assert sc.assert_logs_identical(dep, c["id"], min_height=2) >= 2
