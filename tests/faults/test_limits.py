"""The honest limit: a deterministic bug in every impl_a node of a 2A+2B shard is two faulty nodes
out of four, more than f = 1. The cluster must not fork; it is expected to stall instead, and to
recover once the bug is gone."""

from __future__ import annotations

import time

import pytest

from infra import ops
from tests.testbed import scenario as sc

C, S = "coordinator", "shard"


@pytest.fixture
def limit_net(request, tmp_path):
    request.addfinalizer(lambda: ops.destroy("limits", tmp_path))
    return sc.deploy("limits", tmp_path, [sc.ClusterSpec("c0", C, "abab"), sc.ClusterSpec("s0", S, "aabb")])


@pytest.mark.parametrize("buggy", ["impl_a", "impl_b"])
def test_wrong_result_on_both_nodes_of_one_impl_stalls_without_forking(limit_net, buggy):
    """wrong_result on both members of one implementation in shard s0 (a,a,b,b): GETs stall
    (neither the two faulty nor the two correct members can gather 2f + 1 = 3 votes for their
    result; observed: every proposal is rejected as invalid and views change in a loop), no height
    is decided after the PUT, and no node's log forks."""
    dep = limit_net
    assert sc.kv(dep, "a", "put", "hl-key", "right").get("value") == "right"
    bad = [n.id for n in dep.cluster_nodes("s0") if n.implementation == buggy]
    assert len(bad) == 2
    sc.set_rules(dep, {i: [{"action": "wrong_result"}] for i in bad})
    frozen = sc.assert_logs_identical(dep, "s0")
    got = sc.kv(dep, "a", "get", "hl-key", timeout_ms=8000)
    assert "error" in got, f"a GET completed although 2 of 4 shard members compute wrong results: {got}"
    time.sleep(2)
    hs = sc.heights(dep, "s0")
    assert max(h for h in hs.values() if h is not None) == frozen, f"s0 decided past the stall: {hs}"
    assert sc.assert_logs_identical(dep, "s0", all_nodes=False) == frozen
    # Recovery (SPEC 12.9, errata F5): clear the rules and restart all four shard members at once,
    # in the middle of the view-change storm, each in whatever view it had reached. They must converge
    # on one view and serve the key written before the fault; nothing decided may be lost.
    members = [n.id for n in dep.cluster_nodes("s0")]
    sc.set_rules(dep, {i: [] for i in bad}, restart_nodes=members)
    got = sc.kv(dep, "a", "get", "hl-key", timeout_ms=60000)
    assert got.get("value") == "right", f"s0 did not recover after the storm: {got} {sc.view_table(dep, 's0')}"
    assert sc.kv(dep, "b", "put", "hl-key", "after").get("value") == "after"
    assert sc.kv(dep, "a", "get", "hl-key").get("value") == "after"
    assert sc.assert_logs_identical(dep, "s0") > frozen
