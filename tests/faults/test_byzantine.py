"""Byzantine scenarios with SPEC 16 testbed rules on one mixed network (c0 = a,b,a,b;
s0 = b,a,a,b): at most f = 1 consensus-faulty member per cluster at a time. Each test clears its
rules (restarting those nodes) and re-unites the views before the next."""

from __future__ import annotations

import pytest

from tests.faults.conftest import follower
from tests.testbed import scenario as sc

BAD_INPUT = ("malformed", "non_canonical", "bad_signature", "decrypt_failed", "invalid_proposal")


@pytest.fixture(autouse=True)
def healthy(net):
    for c in ("c0", "s0"):
        sc.heal_views(net, c)
    yield
    sc.set_rules(net, {n.id: [] for n in net.nodes if "faults" in _manifest_node(net, n.id)})


def _manifest_node(net, node_id: str) -> dict:
    return next(n for c in net.manifest["clusters"] for n in c["nodes"] if n["id"] == node_id)


def _bad_input_count(net, node_ids) -> int:
    return sum(sc.rejected(net, i).get(r, 0) for i in node_ids for r in BAD_INPUT)


def test_equivocating_leader(net, tmp_path):
    """A leader that sends a second, different valid proposal for the same height to one follower
    (equivocate): operations still succeed and are linearizable, no fork, and the follower that
    saw both proposals records `equivocation` evidence naming the leader."""
    members = [n.id for n in net.cluster_nodes("c0")]
    view = sc.node_status(net, sc.wait_leader(net, "c0"))["view"]
    ld = members[(view + 1) % 4]
    target = follower(net, "c0", ld)
    assert sc.faulty_leader(net, "c0", [{"action": "equivocate", "targets": [target]}]) == ld
    sc.checked_workload(net, tmp_path / "h.jsonl", "eq-", ops=20, keys=4, concurrency=4)
    sc.assert_logs_identical(net, "c0")
    ev = [e for e in sc.evidence(net, [n.id for n in net.cluster_nodes("c0")]) if e["kind"] == "equivocation"]
    assert ev and all(e["node_id"] == ld for e in ev), ev
    assert len(ev[0]["messages_hex"]) == 2


@pytest.mark.parametrize("rules", [
    [{"action": "mutate", "messages": ["prepare"]}, {"action": "mutate", "messages": ["commit"]}],
    [{"action": "bad_signature", "messages": ["prepare"]}, {"action": "bad_signature", "messages": ["commit"]}],
], ids=["mutate", "bad_signature"])
def test_follower_sends_broken_prepare_and_commit(net, rules):
    """A follower whose Prepares and Commits are mutated (one byte flipped) or carry random
    signatures: the three correct members reject and count them, keep deciding, and every node
    (the faulty one too, which decides from the others' commits) ends with one log."""
    ld = sc.wait_leader(net, "s0")
    bad = follower(net, "s0", ld)
    others = [n.id for n in net.cluster_nodes("s0") if n.id != bad]
    before = _bad_input_count(net, others)
    sc.set_rules(net, {bad: rules})
    # A broken vote that arrives after its height was decided is only `stale` (SPEC 12.4), so keep
    # writing until at least one arrived in time to be checked and rejected.
    for i in range(30):
        client = "ab"[i % 2]
        assert sc.kv(net, client, "put", f"mut-{i % 2}", client, timeout_ms=30000).get("value") == client
        if i >= 1 and _bad_input_count(net, others) > before:
            break
    assert _bad_input_count(net, others) > before
    assert sc.kv(net, "a", "get", "mut-1").get("value") == "b"
    assert sc.kv(net, "b", "get", "mut-0").get("value") == "a"
    sc.assert_logs_identical(net, "s0")


def test_broken_view_change_messages(net):
    """During a view change, one member's ViewData is mutated and the next leader's NewView is
    badly signed: the members reject them, move on to a later view with a correct leader, serve,
    and keep one log."""
    ld = sc.wait_leader(net, "c0")
    members = [n.id for n in net.cluster_nodes("c0")]
    view = sc.node_status(net, ld)["view"]
    nxt = members[(view + 1) % 4]
    spoiler = next(m for m in members if m not in (ld, nxt))
    sc.set_rules(net, {ld: [{"action": "drop", "messages": ["heartbeat"]}],
                       nxt: [{"action": "bad_signature", "messages": ["new_view"]}],
                       spoiler: [{"action": "mutate", "messages": ["view_data"]}]})
    others = [m for m in members if m != nxt]
    before = _bad_input_count(net, others)
    assert sc.kv(net, "b", "put", "vc-key", "v", timeout_ms=40000).get("value") == "v"
    assert sc.wait_for(lambda: _bad_input_count(net, others) > before, 20, "rejections of the bad NewView")
    sc.assert_logs_identical(net, "c0")


def test_leader_censors_one_follower(net):
    """A leader that never sends its proposals to one follower (drop rule with a target): the
    other three decide, and the censored follower still decides every height (it catches up from
    the commits it sees) with a byte-identical log."""
    members = [n.id for n in net.cluster_nodes("s0")]
    view = sc.node_status(net, sc.wait_leader(net, "s0"))["view"]
    ld = members[(view + 1) % 4]
    victim = follower(net, "s0", ld)
    sc.faulty_leader(net, "s0", [{"action": "drop", "messages": ["proposal"], "targets": [victim]}])
    for i in range(3):
        assert sc.kv(net, "ab"[i % 2], "put", f"cs-{i}", str(i), timeout_ms=30000).get("value") == str(i)
    sc.assert_logs_identical(net, "s0")
    assert sc.leader(net, "s0") == ld  # the censoring leader kept its place


def test_tampered_and_withheld_compact_decisions(net, tmp_path):
    """Two shard members serve tampered compact decisions (tamper_compact) and a third answers every
    pull with nothing (withhold_queue): coordinator members reject the tampered ones, accuse the
    server, move to other members, and every operation still completes (linearizable)."""
    s0 = [n.id for n in net.cluster_nodes("s0")]
    # Two tamperers and a withholder leave one honest server, so pullers are sure to meet bad replies
    # (they keep a member only while its replies are good). Serving is not voting: s0 still decides.
    tamperers, withhold = (s0[0], s0[2]), s0[1]
    sc.set_rules(net, {s0[0]: [{"action": "tamper_compact"}], s0[2]: [{"action": "tamper_compact"}],
                       withhold: [{"action": "withhold_queue"}]})
    sc.checked_workload(net, tmp_path / "h.jsonl", "tc-", ops=16, keys=4)
    c0 = [n.id for n in net.cluster_nodes("c0")]
    ev = [e for e in sc.evidence(net, c0) if e["node_id"] in tamperers]
    rejected = sum(sc.rejected(net, i).get("bad_proof", 0) + sc.rejected(net, i).get("bad_qc", 0) for i in c0)
    assert rejected > 0 or any(e["kind"] == "tampered_compact" for e in ev), (rejected, ev)
    assert all(e["node_id"] != withhold for e in sc.evidence(net, c0))
    for c in ("c0", "s0"):
        sc.assert_logs_identical(net, c)


def test_replayed_and_reordered_remote_decisions(net, tmp_path):
    """Shard members that send every queue reply twice (replays) or up to 400 ms late (reordered
    against newer replies): each remote decision is applied exactly once, in order (linearizable
    history, identical logs)."""
    s0 = [n.id for n in net.cluster_nodes("s0")]
    sc.set_rules(net, {s0[2]: [{"action": "duplicate", "messages": ["queue_batch"]}],
                       s0[3]: [{"action": "delay", "messages": ["queue_batch"], "delay_ms": 400,
                                "probability": 0.5, "seed": 3}]})
    sc.checked_workload(net, tmp_path / "h.jsonl", "rp-", ops=16, keys=4)
    for c in ("c0", "s0"):
        sc.assert_logs_identical(net, c)


def test_leader_censors_one_client(net):
    """A leader that never proposes client-a's requests (censor_client) but serves client-b: client-b's
    writes go through in its view, and client-a's write is decided anyway, because the members that
    hold it in their pools start a view change when the censorship timer runs out (SPEC 12.5)."""
    ld = sc.faulty_leader(net, "c0", [{"action": "censor_client", "clients": [sc.CLIENT_IDS["a"]]}])
    view = sc.node_status(net, ld)["view"]
    assert sc.kv(net, "b", "put", "cc-b", "served").get("value") == "served"
    assert sc.node_status(net, ld)["view"] == view, "client-b's write should not need a view change"
    assert sc.kv(net, "a", "put", "cc-a", "censored", timeout_ms=40000).get("value") == "censored"
    new_view = max(s["view"] for s in sc.cluster_status(net, "c0").values() if s)
    assert new_view > view, "client-a's write was decided without replacing the censoring leader"
    assert sc.leader(net, "c0") != ld
    assert sc.kv(net, "b", "get", "cc-a").get("value") == "censored"
    sc.assert_logs_identical(net, "c0")


def test_gapped_queue_replies(net, tmp_path):
    """Three shard members serve their decision queues with a gap (skip_queue_seq): coordinator members
    reject those replies as `out_of_order`, move on to the one correct server, and every operation
    completes exactly once (linearizable history, identical logs)."""
    s0 = [n.id for n in net.cluster_nodes("s0")]
    c0 = [n.id for n in net.cluster_nodes("c0")]
    before = sum(sc.rejected(net, i).get("out_of_order", 0) for i in c0)
    sc.set_rules(net, {i: [{"action": "skip_queue_seq"}] for i in s0[:3]})
    sc.checked_workload(net, tmp_path / "h.jsonl", "gq-", ops=16, keys=4)
    assert sum(sc.rejected(net, i).get("out_of_order", 0) for i in c0) > before
    for c in ("c0", "s0"):
        sc.assert_logs_identical(net, c)
