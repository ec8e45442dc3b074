"""Twins: the view-0 leader of c0 runs as two processes with the same identity and keys, twin 1
seen by c0-n1 and twin 2 by c0-n2 and c0-n3 (tests.testbed.twins), once with impl_a and once with impl_b
as the twin. The twins lead both sides at once and propose different batches for the same height."""

from __future__ import annotations

import pytest

from infra import ops
from infra.nodes.client import run_client
from infra.testbed.history import check_history, load_history
from tests.testbed import scenario as sc
from tests.testbed import twins

C, S = "coordinator", "shard"


@pytest.fixture(params=["impl_a", "impl_b"])
def twin_net(request, tmp_path):
    name = f"twins-{request.param[-1]}"
    request.addfinalizer(lambda: ops.destroy(name, tmp_path))
    mix = "abab" if request.param == "impl_a" else "baba"
    return sc.deploy(name, tmp_path, [sc.ClusterSpec("c0", C, mix), sc.ClusterSpec("s0", S, "abab")])


def _workload_args(prefix: str, seed: int, history) -> list[str]:
    return ["--timeout-ms", "15000", "workload", "--ops", "12", "--concurrency", "2", "--keys", "4",
            "--put-ratio", "0.6", "--seed", str(seed), "--key-prefix", prefix, "--history", str(history)]


def test_twins_cannot_fork_the_cluster(twin_net, tmp_path, request):
    """Both twins lead (view 0) and clients reach both sides, so each twin proposes its own batches:
    twin 2 with c0-n2, c0-n3 forms a quorum of 3 and decides; twin 1 with c0-n1 (2 votes) cannot.
    Every process's log is a prefix of the longest one (no conflicting decision at any height),
    the history stays linearizable, and after the twins are merged back the cluster converges."""
    dep = twin_net
    assert sc.kv(dep, "a", "put", "tw-before", "x").get("value") == "x"
    x = "c0-n0"
    assert sc.wait_leader(dep, "c0") == x
    start = sc.wait_converged(dep, "c0")
    tw = twins.make_twins(dep, x, ["c0-n1"], ["c0-n2", "c0-n3"])
    request.addfinalizer(tw.close)
    both = [sc.node_status(dep, x), twins.admin_status(*tw.twin2_admin)]
    assert all(st and (st["view"], st["leader"], st["node_id"]) == (0, x, x) for st in both), both
    h = tmp_path / "h.jsonl"
    side1 = run_client(dep, "a", _workload_args("tw-", 1, h), 120).doc
    side2 = sc.run_client_with_manifest(dep, "b", twins.manifest_for(tw, 2), _workload_args("tw-", 2, h), 120)
    assert side1.get("ok", 0) + side2.get("ok", 0) > 0, (side1, side2)
    report = check_history(load_history(h))
    assert report.ok, report.violations[:3]
    hs = sc.heights(dep, "c0")
    assert (hs["c0-n2"] or 0) > start and (hs["c0-n3"] or 0) > start, hs
    twin2_height = twins.admin_status(*tw.twin2_admin)["height"]
    logs = {i: sc.log_entries(dep, i, hs[i]) for i in hs if hs[i] is not None}  # c0-n0 here is twin 1
    logs["twin2"] = twins.admin_log(*tw.twin2_admin, twin2_height)
    longest = max(logs.values(), key=len)
    for who, log in logs.items():
        assert log == longest[:len(log)], f"{who}'s log is not a prefix of the longest: fork"
    twins.restore(tw)
    for c in ("c0", "s0"):
        sc.heal_views(dep, c)
    assert sc.kv(dep, "b", "put", "tw-after", "y", timeout_ms=30000).get("value") == "y"
    assert sc.assert_logs_identical(dep, "c0") >= len(longest)
