"""Placement planner: pinned placements and loss reports for a few topologies."""

import pytest

from infra.errors import UsageError
from infra.model.planner import loss_reports, make_plan, parse_mix


def lines(plan):
    return [r.line() for r in loss_reports(plan)]


def test_three_regions_default():
    p = make_plan(3)
    assert [(n.id, n.implementation, n.region) for n in p.nodes] == [
        ("c0-n0", "impl_a", "us-east"), ("c0-n1", "impl_b", "eu-west"), ("c0-n2", "impl_a", "ap-south"),
        ("c0-n3", "impl_b", "us-east"), ("s0-n0", "impl_a", "eu-west"), ("s0-n1", "impl_b", "ap-south"),
        ("s0-n2", "impl_a", "us-east"), ("s0-n3", "impl_b", "eu-west")]
    assert lines(p) == [
        "losing us-east stops cluster c0 (2 of 4 nodes there); degrades cluster s0 (1 of 4 nodes there, margin 0 left)",
        "losing eu-west stops cluster s0 (2 of 4 nodes there); degrades cluster c0 (1 of 4 nodes there, margin 0 left)",
        "losing ap-south degrades clusters c0, s0 (1 of 4 nodes there, margin 0 left)",
        "losing impl_a stops clusters c0, s0 (2 of 4 nodes there)",
        "losing impl_b stops clusters c0, s0 (2 of 4 nodes there)"]
    assert [c.f for c in p.clusters] == [1, 1]


def test_four_regions_survive_any_region():
    p = make_plan(4, coordinators=1, shards=2)
    for c in p.clusters:
        assert sorted(n.region for n in c.nodes) == sorted(p.regions)
    region_reports = [r for r in loss_reports(p) if r.kind == "region"]
    assert all(r.clusters("stops") == [] for r in region_reports)
    assert region_reports[0].line() == "losing us-east degrades clusters c0, s0, s1 (1 of 4 nodes there, margin 0 left)"


def test_two_regions_every_region_is_fatal():
    p = make_plan(2, coordinators=2, shards=1)
    assert lines(p)[:2] == ["losing us-east stops clusters c0, c1, s0 (2 of 4 nodes there)",
                            "losing eu-west stops clusters c0, c1, s0 (2 of 4 nodes there)"]


def test_seven_node_clusters():
    p = make_plan(4, coordinators=1, shards=2, nodes_per_cluster=7)
    assert [c.f for c in p.clusters] == [2, 2, 2]
    assert lines(p) == [
        "losing us-east degrades clusters c0, s1 (2 of 7 nodes there, margin 0 left); "
        "degrades cluster s0 (1 of 7 nodes there, margin 1 left)",
        "losing eu-west degrades clusters c0, s0 (2 of 7 nodes there, margin 0 left); "
        "degrades cluster s1 (1 of 7 nodes there, margin 1 left)",
        "losing ap-south degrades clusters c0, s0, s1 (2 of 7 nodes there, margin 0 left)",
        "losing sa-east degrades cluster c0 (1 of 7 nodes there, margin 1 left); "
        "degrades clusters s0, s1 (2 of 7 nodes there, margin 0 left)",
        "losing impl_a stops clusters c0, s0, s1 (4 of 7 nodes there)",
        "losing impl_b stops clusters c0, s0, s1 (3 of 7 nodes there)"]


def test_mix_options():
    assert parse_mix("alternate", 4) == ["impl_a", "impl_b", "impl_a", "impl_b"]
    assert parse_mix("a", 4) == ["impl_a"] * 4
    assert parse_mix("aabb", 4) == ["impl_a", "impl_a", "impl_b", "impl_b"]
    assert parse_mix("abb", 7) == ["impl_a", "impl_b", "impl_b", "impl_a", "impl_b", "impl_b", "impl_a"]
    single = make_plan(3, mix="b")
    assert [r.line() for r in loss_reports(single) if r.kind == "implementation"] == [
        "losing impl_b stops clusters c0, s0 (4 of 4 nodes there)"]
    with pytest.raises(UsageError, match="not understood"):
        parse_mix("ax", 4)


def test_diverse_mix_and_byzantine_lines():
    """Three implementations in 4-node clusters: the two singletons' failures are survivable (crash and
    Byzantine), the doubled one's is not; the planner says which."""
    assert parse_mix("diverse", 4) == ["impl_a", "impl_b", "impl_c", "impl_a"]
    assert parse_mix("diverse", 7) == ["impl_a", "impl_b", "impl_c"] * 2 + ["impl_a"]
    p = make_plan(3, mix="diverse")
    impl = {r.name: r for r in loss_reports(p) if r.kind == "implementation"}
    assert impl["impl_a"].line() == "losing impl_a stops clusters c0, s0 (2 of 4 nodes there)"
    assert impl["impl_b"].line() == "losing impl_b degrades clusters c0, s0 (1 of 4 nodes there, margin 0 left)"
    assert [impl[n].survives() for n in ("impl_a", "impl_b", "impl_c")] == [False, True, True]
    assert impl["impl_a"].byzantine_line() == "impl_a turning Byzantine: may fork in c0 (2 of 4), s0 (2 of 4)"
    assert impl["impl_c"].byzantine_line() == "impl_c turning Byzantine: tolerated in c0 (1 of 4), s0 (1 of 4)"
    homogeneous = {r.name: r for r in loss_reports(make_plan(3, mix="c")) if r.kind == "implementation"}
    assert homogeneous["impl_c"].byzantine_line() == "impl_c turning Byzantine: decides alone in c0 (4 of 4), s0 (4 of 4)"


@pytest.mark.parametrize("n, hint", [(5, "4 or 7"), (3, "4"), (6, "4 or 7"), (8, "7 or 10")])
def test_bad_cluster_size(n, hint):
    with pytest.raises(UsageError) as e:
        make_plan(3, nodes_per_cluster=n)
    assert "not 3f+1" in e.value.message and hint in e.value.fix


def test_bad_counts():
    with pytest.raises(UsageError):
        make_plan(3, coordinators=0)
    with pytest.raises(UsageError):
        make_plan(0)
