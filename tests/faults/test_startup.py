"""Leaders missing from the start: the view-0 leaders of both clusters are never started."""

from __future__ import annotations

import pytest

from infra import ops
from tests.faults.conftest import MIXED
from tests.testbed import scenario as sc


@pytest.fixture
def headless(request, tmp_path):
    request.addfinalizer(lambda: ops.destroy("headless", tmp_path))
    return sc.deploy("headless", tmp_path, MIXED, not_started=("c0-n0", "s0-n0"))


def test_leaders_crashed_at_start(headless):
    """With the view-0 leaders of c0 and s0 absent before any decision, both clusters change view
    on their own, serve both client libraries, and the absent leaders, started later, catch up
    to identical logs."""
    dep = headless
    assert sc.kv(dep, "a", "put", "st-key", "first", timeout_ms=30000).get("value") == "first"
    assert sc.kv(dep, "b", "get", "st-key").get("value") == "first"
    for c in ("c0", "s0"):
        assert sc.wait_leader(dep, c) != f"{c}-n0"
    sc.start(dep, ["c0-n0", "s0-n0"])
    for c in ("c0", "s0"):
        sc.heal_views(dep, c)
    assert sc.kv(dep, "b", "put", "st-key", "second").get("value") == "second"
    for c in ("c0", "s0"):
        sc.assert_logs_identical(dep, c, min_height=2)
