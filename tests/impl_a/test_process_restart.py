"""SPEC 12.9 on real processes: every member of a cluster killed with -9 in the middle of a view-change
storm, each in its own view, comes back and the cluster decides again."""

import json
import time

import pytest

from .procnet import ProcNet

PAIR = [("c0", "coordinator"), ("s0", "shard")]
C0 = ("c0-n0", "c0-n1", "c0-n2", "c0-n3")
NO_NEW_VIEW = [{"action": "drop", "messages": ["new_view"]}]


@pytest.fixture
def storm_net(tmp_path):
    net = ProcNet(tmp_path, PAIR, testbed=True)
    try:
        net.start_all()
        yield net
    finally:
        net.close()


def _views(net):
    return {n: (st["view"], st["in_view_change"]) for n in C0 for st in [net.status(n)]}


def _set_faults(net, rules):
    for c in net.doc["clusters"]:
        for n in c["nodes"]:
            n.pop("faults", None)
            if n["id"] in C0 and rules:
                n["faults"] = rules
    net.manifest.write_text(json.dumps(net.doc, indent=1))


def test_all_members_killed_mid_storm_at_different_views_recover(storm_net):
    net = storm_net
    assert net.op("put", "before", "1")["found"] is False
    # Every member of c0 now drops the NewViews it sends, so each view change of c0 fails and the
    # views climb; the storm starts while the leader (of view 0, or of the view a slow start led to)
    # is down.
    leader = net.status("c0-n1")["leader"]
    _set_faults(net, NO_NEW_VIEW)
    for nid in C0:
        net.kill9(nid)
    for nid in C0:
        if nid != leader:
            net.start(nid)
    time.sleep(2.5)
    net.start(leader)
    for nid in C0:
        net.wait_ready(nid)
    deadline = time.monotonic() + 60
    while min(v for v, _ in _views(net).values()) < 4 and time.monotonic() < deadline:
        time.sleep(0.3)
    stopped = {}
    for nid in C0:  # one after the other: the storm goes on between the kills
        end = time.monotonic() + 12
        # Three members still move on together: wait until the second one is in a later view.
        while len(stopped) == 1 and net.status(nid)["view"] <= max(stopped.values()) and time.monotonic() < end:
            time.sleep(0.1)
        stopped[nid] = net.status(nid)["view"]
        net.kill9(nid)
        time.sleep(0.3)
    assert min(stopped.values()) >= 4 and len(set(stopped.values())) >= 2, stopped
    _set_faults(net, [])  # the same nodes, now without the fault
    for nid in reversed(C0):
        net.start(nid)
    for nid in C0:
        net.wait_ready(nid)
    after = {nid: net.status(nid)["view"] for nid in C0}
    assert max(after.values()) >= 4, after  # they came back in the storm's views, not in view 0
    t0 = time.monotonic()
    assert net.op("put", "after", "2", timeout_ms=40000)["found"] is False
    recovery_s = time.monotonic() - t0
    assert net.op("get", "before")["value"] == "1"
    end = time.monotonic() + 10
    views = _views(net)
    while (len(set(views.values())) > 1 or any(vc for _, vc in views.values())) and time.monotonic() < end:
        time.sleep(0.3)
        views = _views(net)
    assert len({v for v, _ in views.values()}) == 1 and not any(vc for _, vc in views.values()), views
    heights = {net.status(n)["height"] for n in C0}
    assert len(heights) <= 2, heights
    assert recovery_s < 30, recovery_s
