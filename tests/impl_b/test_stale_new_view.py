"""SPEC 12.6 step 5 (errata fix-a2 A1, A3): a NewView of a member's own view, re-sent by a restarted
leader whose heartbeats are lost, is `stale` at a member that already asked for the next view; the
view change goes on and the cluster reaches a later view and decides."""

from .sim import Sim

C0 = ("c0-n0", "c0-n1", "c0-n2", "c0-n3")


def _done(sim, *rids):
    return lambda: all(r in sim.answers for r in rids)


def _stale_new_views(sim, node):
    return [r for r in sim.rejects if r[0] == node and r[1] == "stale" and r[2] == "c0-n1"
            and "new view" in r[3]]


def _into_view_1(sim):
    """c0-n0 (leader of view 0) goes silent: the others move to view 1 (leader c0-n1), then all follow it."""
    sim.tamper["c0-n0"] = lambda to, pm: [] if pm.which() in ("heartbeat", "proposal") else [pm]
    assert sim.run_until(lambda: all(sim.replicas[n].view == 1 and sim.replicas[n].view_active
                                     for n in C0[1:]), 5000)
    sim.tamper.clear()
    rid = sim.put(b"k", b"v1", to=list(C0))
    assert sim.run_until(_done(sim, rid), 5000)
    assert sim.run_until(lambda: all(sim.replicas[n].view == 1 and sim.replicas[n].view_active
                                     and not sim.replicas[n].in_vc for n in C0), 3000)


def test_resent_new_view_of_the_suspected_view_is_stale_and_the_view_change_goes_on():
    sim = Sim(seed=41)
    assert sim.m.clusters["c0"].leader(1) == "c0-n1" and sim.m.clusters["c0"].leader(2) == "c0-n2"
    assert sim.run_until(_done(sim, sim.put(b"k", b"v0")), 5000)
    _into_view_1(sim)
    sim.crash("c0-n3")
    sim.crash("c0-n1")
    n0, n2 = sim.replicas["c0-n0"], sim.replicas["c0-n2"]
    # Heartbeat timeout: n0 and n2 ask for view 2; alone (f + 1 = 2 < 2f + 1 = 3) they cannot move.
    assert sim.run_until(lambda: n0.vc_sent == 2 and n2.vc_sent == 2, 3000)
    assert (n0.view, n2.view) == (1, 1)

    # n1 restarts with its heartbeats dropped; for 1.5 s it does not hear the ViewChanges (so it cannot
    # join yet) while it re-sends the NewView of view 1 on every link that comes up.
    deaf = {"on": True}
    for n in ("c0-n0", "c0-n2"):
        sim.tamper[n] = lambda to, pm: [] if deaf["on"] and to == "c0-n1" and pm.view_change is not None else [pm]
    sim.tamper["c0-n1"] = lambda to, pm: [] if pm.heartbeat is not None else [pm]
    sim.restart("c0-n1")
    n1 = sim.replicas["c0-n1"]
    assert (n1.view, n1.view_active, n1.last_nv is not None) == (1, True, True)
    broken = []

    def watch():
        for n, r in (("c0-n0", n0), ("c0-n2", n2)):
            if r.view < 2 and not (r.in_vc and r.vc_sent >= 2):
                broken.append((sim.now, n, r.view, r.in_vc, r.vc_sent))
        for n in ("c0-n0", "c0-n1", "c0-n2"):
            r = sim.replicas[n]
            # A3: moved to a view and waiting for its NewView, the view_change timer is armed
            if not r.view_active and r.vc_deadline is None:
                broken.append((sim.now, n, "no view_change timer", r.view, r.vc_sent))
        return False

    t_end = sim.now + 1500
    while sim.now < t_end:
        for peer in ("c0-n0", "c0-n2"):
            sim._run("c0-n1", n1.on_link_up(peer, sim.now))
        sim.run_until(watch, 100)
    assert not broken, broken[:3]
    assert (n0.view, n2.view, n1.view) == (1, 1, 1)
    for n in ("c0-n0", "c0-n2"):
        assert len(_stale_new_views(sim, n)) >= 10  # every re-sent NewView counted, none installed

    # n1 now hears the ViewChanges: it joins (f + 1 ask for 2), 2f + 1 move to view 2 (leader n2).
    deaf["on"] = False
    rid = sim.put(b"k", b"v2", to=["c0-n0", "c0-n1", "c0-n2"])
    assert sim.run_until(lambda: watch() or _done(sim, rid)(), 8000)
    assert not broken, broken[:3]
    assert all(sim.replicas[n].view >= 2 and sim.replicas[n].view_active for n in ("c0-n0", "c0-n1", "c0-n2"))
    g = sim.get(b"k", to="c0-n0")
    assert sim.run_until(_done(sim, g), 3000)
    assert sim.answers[g].value == b"v2"
    assert sim.logs_agree("c0")
