"""A follower that asked for v + 1 gets the NewView of v again (re-sent by the leader of v, SPEC 12.9)
while that leader sends no heartbeats: it stays in the view change, escalates, and the cluster moves
to a later view and decides (SPEC 12.6 steps 2, 6, 7)."""

from impl_a import heraclius_pb2 as pb

from .simnet import SimNet, SimNode

NET2 = (("c0", "coordinator"), ("s0", "shard"))
C0 = ("c0-n0", "c0-n1", "c0-n2", "c0-n3")


def _put(net, key, via):
    req = net.request(pb.OP_KIND_PUT, key, b"value-" + key)
    for nid in via:
        net.submit(req, nid)
    return req


def _run_until(net, cond, limit_ms, step=50):
    waited = 0
    while waited < limit_ms:
        net.run(step)
        waited += step
        if cond():
            return True
    return False


def _no_heartbeats(dst, msg, data):
    return None if msg.WhichOneof("body") == "heartbeat" else data


def _into_view_1(net):
    """n0 (leader of view 0) crashes; n1 leads view 1; n0 comes back into view 1."""
    first = _put(net, b"a", ("c0-n1", "c0-n2"))
    assert _run_until(net, lambda: net.answer(first, "c0-n1") is not None, 2000)
    net.crash("c0-n0")
    assert _run_until(net, lambda: all(net.nodes[n].replica.view == 1 and not net.nodes[n].replica.in_vc
                                       for n in ("c0-n1", "c0-n2", "c0-n3")), 3000)
    net.restart("c0-n0")
    second = _put(net, b"b", ("c0-n0", "c0-n2"))
    assert _run_until(net, lambda: net.answer(second, "c0-n0") is not None, 3000)
    assert all(net.nodes[n].replica.view == 1 and not net.nodes[n].replica.in_vc for n in C0)


def test_resent_new_view_of_own_view_does_not_end_the_view_change(tmp_path):
    net = SimNet(tmp_path, clusters=NET2, seed=31)
    _into_view_1(net)
    nv1 = net.nodes["c0-n1"].replica.installed_nv
    assert nv1 is not None and nv1.view == 1
    net.crash("c0-n3")
    net.crash("c0-n1")  # the leader of view 1 stops: n0 and n2 time out and ask for view 2
    followers = [net.nodes[n].replica for n in ("c0-n0", "c0-n2")]
    assert _run_until(net, lambda: all(r.vc_requested == 2 for r in followers), 1000, step=5)
    assert all(r.view == 1 and r.in_vc for r in followers)
    # n1 restarts with its heartbeats dropped. Its own links come up first: it re-sends the NewView of
    # view 1 at once, while the followers' links to it (and so their ViewChange{2}) come up later.
    net.mutators["c0-n1"] = _no_heartbeats
    net.blocked |= {("c0-n0", "c0-n1"), ("c0-n2", "c0-n1")}
    net.nodes["c0-n1"] = SimNode(net, "c0-n1")
    net._drain(net.nodes["c0-n1"])
    seen = {nid: len(net.nodes[nid].events) for nid in ("c0-n0", "c0-n2")}
    for nid in ("c0-n0", "c0-n2"):
        net._post("c0-n1", nid, pb.PeerMessage(new_view=nv1))
    net.run(20)
    for nid in ("c0-n0", "c0-n2"):
        r = net.nodes[nid].replica
        # The NewView of its own view changes nothing: still asking to leave view 1, timer armed.
        assert r.view == 1 and r.in_vc and r.vc_requested >= 2 and r.vc_deadline is not None, nid
        assert ("stale", "c0-n1", "new view 1") in net.nodes[nid].rejects
        assert not any(e[0] == "new_view" for e in net.nodes[nid].events[seen[nid]:])
    net.run(1500)  # no heartbeat, no NewView for view 2: the view change timer escalates
    assert all(r.vc_requested >= 3 and r.in_vc for r in followers), [r.vc_requested for r in followers]
    net.blocked.clear()
    for nid in ("c0-n0", "c0-n2"):
        net.nodes[nid].replica.on_link_up("c0-n1")
        net._drain(net.nodes[nid])
    third = _put(net, b"c", ("c0-n0", "c0-n1", "c0-n2"))
    assert _run_until(net, lambda: all(net.answer(third, n) is not None for n in ("c0-n0", "c0-n1", "c0-n2")),
                      15000)
    views = {net.nodes[n].replica.view for n in ("c0-n0", "c0-n1", "c0-n2")}
    assert len(views) == 1 and min(views) >= 2, views
    logs = [net.log_bytes(n) for n in ("c0-n0", "c0-n1", "c0-n2")]
    assert logs[0] == logs[1] == logs[2]


def test_a_state_with_no_timer_armed_is_reported_and_repaired(tmp_path):
    """Invariant checked on every tick: in a view change the view_change timer runs, and an active
    view never keeps an earlier ask (it would make the heartbeat timeout unable to ask for view + 1)."""
    net = SimNet(tmp_path, clusters=NET2, seed=32)
    net.run(200)
    r = net.nodes["c0-n2"].replica
    assert r.view == 0 and not r.in_vc
    r.vc_requested = 1  # the state the resent-NewView bug left behind: active in 0, "asking" for 1
    r.tick(net.now)
    broken = [a for a in r.actions if a[0] == "event" and a[1] == "invariant_violated"]
    assert len(broken) == 1 and "asking for view 1" in broken[0][2]["detail"]
    assert r.vc_requested == 0
    r.actions.clear()
    net.mutators["c0-n0"] = _no_heartbeats
    net.run(600)  # heartbeat timeout: the repaired member can ask for view 1 again
    assert r.vc_requested >= 1 and ("view_change", {"from_view": 0, "to_view": 1, "why": "heartbeat timeout"}) \
        in net.nodes["c0-n2"].events
    r.in_vc, r.vc_deadline = True, None  # a view change without its timer
    r.tick(net.now)
    broken = [a for a in r.actions if a[0] == "event" and a[1] == "invariant_violated"]
    assert len(broken) == 1 and r.vc_deadline is not None and r.vc_deadline > net.now
    r.actions.clear()
    r.tick(net.now)
    assert not [a for a in r.actions if a[0] == "event" and a[1] == "invariant_violated"]
