"""Partitioned leader: cut off, the rest change view and serve; healed, it catches up and follows.

Two emulations: a real packet-level partition with network namespaces (root only: infra.testbed.faults
partition/heal, SPEC-independent), and, everywhere, SIGSTOP of the leader (cut off both ways;
its TCP connections survive, so like a short real partition the peers' queued bytes arrive when it
heals). Without root the namespace variant is skipped with the reason infra gives."""

from __future__ import annotations

import pytest

from infra import ops
from infra.testbed import faults
from tests.faults.conftest import MIXED
from tests.testbed import scenario as sc


def _partitioned_leader_scenario(dep, cut_off, isolate, heal, tmp_path):
    ld = sc.wait_leader(dep, "c0")
    assert ld == cut_off, f"the scenario isolates {cut_off}, but {ld} leads"
    before = sc.heights(dep, "c0")[ld]
    isolate()
    try:
        sc.checked_workload(dep, tmp_path / "h.jsonl", "pt-", ops=10, keys=4, clients=("b",), timeout_ms=25000)
        new = sc.wait_leader(dep, "c0", other_than=ld)
        if dep.state.get("netns"):  # a paused leader does not answer /status at all
            assert sc.heights(dep, "c0")[ld] == before, "the isolated leader decided alone"
    finally:
        heal()
    sc.wait_for(lambda: (sc.node_status(dep, ld) or {}).get("leader") == new, 30,
                f"{ld} to follow {new} after the partition heals")
    assert sc.kv(dep, "a", "put", "pt-after", "healed").get("value") == "healed"
    sc.assert_logs_identical(dep, "c0")


def test_partitioned_leader_netns(tmp_path, request):
    """Packet-level partition of the region holding c0's leader (and one s0 follower): c0 changes
    view and serves a linearizable workload while the old leader decides nothing; after healing,
    the old leader follows the new one and its log catches up byte for byte."""
    from infra.testbed import netns
    ok, why = netns.available()
    if not ok:
        pytest.skip(f"netns partition unavailable: {why}")
    request.addfinalizer(lambda: ops.destroy("part-netns", tmp_path))
    dep = sc.deploy("part-netns", tmp_path, MIXED, regions=4, network="netns")
    ok, why = faults.partition_support(dep)
    if not ok:
        pytest.skip(f"partition unavailable: {why}")
    region = dep.node("c0-n0").region
    _partitioned_leader_scenario(dep, "c0-n0", lambda: faults.partition(dep, [region]),
                                 lambda: faults.heal(dep), tmp_path)


def test_partitioned_leader_sigstop(net, tmp_path):
    """The same scenario on loopback with the leader frozen (SIGSTOP): view change, service, then
    the healed leader follows the new leader and catches up."""
    ld = sc.wait_leader(net, "c0")
    _partitioned_leader_scenario(net, ld, lambda: faults.pause(net, ld), lambda: faults.resume(net, ld), tmp_path)
