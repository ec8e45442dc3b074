"""Restart rules (SPEC 12.8, 12.9) in the seeded simulation: view-change storms, whole-cluster restarts
in the middle of a view change, and a leader killed right after it proposed."""

from impl_a import heraclius_pb2 as pb
from impl_a.codec import decode
from impl_a.verify import header_hash

from .simnet import SimNet

NET2 = (("c0", "coordinator"), ("s0", "shard"))
C0 = ("c0-n0", "c0-n1", "c0-n2", "c0-n3")


def _drop_new_views(net, members=C0):
    """No NewView of c0 is delivered: every view change of c0 fails and the views climb."""
    def mut(dst, msg, data):
        return None if msg.WhichOneof("body") == "new_view" else data
    for nid in members:
        net.mutators[nid] = mut


def _logs_agree(net, cluster):
    logs = [net.log_bytes(n) for n in net.nodes if n.startswith(cluster)]
    shortest = min(len(x) for x in logs)
    return shortest > 0 and all(x[:shortest] == logs[0][:shortest] for x in logs)


def _put(net, key, via):
    req = net.request(pb.OP_KIND_PUT, key, b"value-" + key)
    for nid in via:
        net.submit(req, nid)
    return req


def _run_until_answered(net, req, via, limit_ms, step=100):
    waited = 0
    while waited < limit_ms:
        net.run(step)
        waited += step
        if net.answer(req, via) is not None:
            return waited
    return None


def test_storm_of_failed_views_then_recovery(tmp_path):
    net = SimNet(tmp_path, clusters=NET2, seed=21)
    first = _put(net, b"a", ("c0-n1",))
    assert _run_until_answered(net, first, "c0-n1", 2000) is not None
    _drop_new_views(net)
    net.crash("c0-n0")  # the leader of view 0: its followers start the storm
    net.run(600)
    net.restart("c0-n0")
    net.run(12000)
    views = {n: net.nodes[n].replica.view for n in C0}
    assert min(views.values()) >= 5, views  # many consecutive failed views
    assert sum(net.nodes[n].replica.awaiting_new_view for n in C0) >= 3  # only a new leader sees its NewView
    net.mutators.clear()
    second = _put(net, b"b", ("c0-n1", "c0-n2", "c0-n3"))
    # Timers are capped at 8 x view_change (4 s here): recovery is bounded by about two of them.
    assert _run_until_answered(net, second, "c0-n2", 10000) is not None
    assert _logs_agree(net, "c0")
    heights = {net.nodes[n].replica.height for n in C0}
    net.run(1000)
    assert len({net.nodes[n].replica.view for n in C0}) == 1
    assert len(heights) <= 2


def test_all_members_restarted_mid_view_change_at_different_views(tmp_path):
    net = SimNet(tmp_path, clusters=NET2, seed=22)
    first = _put(net, b"a", ("c0-n1",))
    assert _run_until_answered(net, first, "c0-n1", 2000) is not None
    _drop_new_views(net)
    net.crash("c0-n0")
    net.run(600)
    net.restart("c0-n0")
    stopped = {}
    # Stop the members one after the other while the storm goes on, so they stop in different views.
    for nid, pause in zip(C0, (2500, 1700, 2300, 1900), strict=True):
        net.run(pause)
        r = net.nodes[nid].replica
        for _ in range(3000):  # not while it is the one member that installed its own NewView
            if r.awaiting_new_view:
                break
            net.run(1)
        assert r.awaiting_new_view
        stopped[nid] = (r.view, r.installed_nv is not None and r.installed_nv.view == r.view)
        net.crash(nid)
    assert len({v for v, _ in stopped.values()}) >= 2, stopped
    assert not any(has_nv for _, has_nv in stopped.values()), stopped
    net.mutators.clear()
    net.run(50)
    for nid in reversed(C0):  # every member comes back, in an order unrelated to the views
        net.restart(nid)
        r = net.nodes[nid].replica
        assert r.view == stopped[nid][0] and r.in_vc and r.awaiting_new_view  # still in that view change
        net.run(37)
    second = _put(net, b"b", ("c0-n1", "c0-n2", "c0-n3"))
    assert _run_until_answered(net, second, "c0-n3", 8000) is not None
    assert _logs_agree(net, "c0")
    net.run(500)
    views = {net.nodes[n].replica.view for n in C0}
    assert len(views) == 1 and min(views) >= max(v for v, _ in stopped.values())
    assert not any(net.nodes[n].replica.in_vc for n in C0)


def test_member_restarted_in_view_change_rejoins_the_installed_view(tmp_path):
    """The others installed the view meanwhile: the restarted member asks for and gets that NewView."""
    net = SimNet(tmp_path, clusters=NET2, seed=23)
    first = _put(net, b"a", ("c0-n1",))
    assert _run_until_answered(net, first, "c0-n1", 2000) is not None
    # The leader of view 1 (n1) never gets its NewView through to n3.
    net.mutators["c0-n1"] = lambda dst, msg, data: (
        None if dst == "c0-n3" and msg.WhichOneof("body") == "new_view" else data)
    net.crash("c0-n0")
    net.run(1200)
    r3 = net.nodes["c0-n3"].replica
    assert r3.view == 1 and r3.awaiting_new_view
    assert net.nodes["c0-n1"].replica.view == 1 and not net.nodes["c0-n1"].replica.in_vc
    net.crash("c0-n3")
    net.mutators.clear()
    net.restart("c0-n3")
    r3 = net.nodes["c0-n3"].replica
    assert r3.view == 1 and r3.in_vc  # restarted still in the view change to 1 ...
    net.run(600)  # answers with the installing NewView are rate-limited to one per 500 ms (12.6)
    assert r3.view == 1 and not r3.in_vc  # ... which it leaves as soon as it gets the NewView
    net.restart("c0-n0")
    second = _put(net, b"b", ("c0-n3",))
    assert _run_until_answered(net, second, "c0-n3", 3000) is not None
    assert all(net.nodes[n].replica.view == 1 for n in C0)
    assert _logs_agree(net, "c0")


def test_leader_killed_after_proposing_resends_the_same_proposal(tmp_path):
    net = SimNet(tmp_path, clusters=NET2, seed=24)
    warm = _put(net, b"w", ("c0-n1",))
    assert _run_until_answered(net, warm, "c0-n1", 2000) is not None
    sent: dict[tuple[int, int], set[bytes]] = {}
    hold = {"on": True}

    def record(dst, msg, data):
        if msg.WhichOneof("body") == "proposal":
            p = msg.proposal
            sent.setdefault((p.view, p.height), set()).add(header_hash(p.header))
            if hold["on"]:
                return None  # the proposal is signed and durable, but dies with the leader
        return data
    net.mutators["c0-n0"] = record
    a = _put(net, b"a", ("c0-n0",))  # only the leader holds it
    h = net.nodes["c0-n0"].replica.height + 1
    for _ in range(50):
        net.run(1)
        if (0, h) in sent:
            break
    assert (0, h) in sent
    durable = decode(pb.Proposal, net.nodes["c0-n0"].store.meta("accepted"))
    assert (durable.view, durable.height) == (0, h) and {header_hash(durable.header)} == sent[(0, h)]
    net.crash("c0-n0")  # kill -9: the proposal never left the node
    hold["on"] = False
    net.restart("c0-n0")
    b = _put(net, b"b", ("c0-n0",))
    net.submit(a, "c0-n0")  # the client retries a on the same node
    assert _run_until_answered(net, a, "c0-n1", 800) is not None
    assert _run_until_answered(net, b, "c0-n1", 800) is not None
    assert all(len(digests) == 1 for digests in sent.values()), sent
    assert all(net.nodes[n].replica.view == 0 for n in C0)  # no view change was needed
    assert not any(ev[1] == "equivocation" for n in C0 for ev in net.nodes[n].evidence)
    assert _logs_agree(net, "c0")
