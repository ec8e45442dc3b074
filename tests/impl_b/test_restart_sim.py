"""SPEC 12.8/12.9 on the simulated network: restarts mid view change, view-change storms, and a
leader restarted right after proposing."""

from impl_b import codec
from impl_b.checks import sign_message
from impl_b.codec import encode
from impl_b.crypto import Signer
from impl_b.storage import Store

from .sim import Sim

C0 = ("c0-n0", "c0-n1", "c0-n2", "c0-n3")


def _done(sim, *rids):
    return lambda: all(r in sim.answers for r in rids)


def _drop(kinds):
    return lambda to, pm: [] if pm.which() in kinds else [pm]


def _storm(sim):
    """Nobody hears a leader or a NewView: every view of c0 fails."""
    for n in C0:
        sim.tamper[n] = _drop({"new_view", "heartbeat", "proposal"})


def _views(sim):
    return {n: (sim.replicas[n].view, sim.replicas[n].view_active) for n in C0}


def test_all_members_restarted_in_the_same_pending_view_resume_it():
    sim = Sim(seed=21)
    assert sim.run_until(_done(sim, sim.put(b"a", b"1")), 5000)
    _storm(sim)
    # Wait until every member entered the same view w >= 2 without its NewView, and asks for no more.
    def pending_same_view():
        vs = {(r.view, r.view_active, r.vc_sent) for n, r in sim.replicas.items() if n in C0}
        return len(vs) == 1 and next(iter(vs))[0] >= 2 and next(iter(vs))[1:] == (False, next(iter(vs))[0])
    assert sim.run_until(pending_same_view, 20000)
    w = sim.replicas["c0-n0"].view
    for n in C0:
        sim.crash(n)
    sim.tamper.clear()
    for n in C0:
        sim.restart(n)
    assert _views(sim) == {n: (w, False) for n in C0}
    rid = sim.put(b"a", b"2", to=list(C0))
    # Resumed (ViewChange{w} again, ViewData to the leader of w): view w is installed, not w + 1.
    assert sim.run_until(_done(sim, rid), 3000)
    assert _views(sim) == {n: (w, True) for n in C0}
    assert sim.logs_agree("c0")


def test_members_restarted_at_different_pending_views_converge():
    """The F5 incident: members stopped in views 1493, 1494, 1495, 1495, none holding its NewView."""
    sim = Sim(seed=22)
    assert sim.run_until(_done(sim, sim.put(b"b", b"1")), 5000)
    for n in C0:
        sim.crash(n)
    for n, w in zip(C0, (1493, 1494, 1495, 1495), strict=True):
        sim.stores[n].view = (w, False)
        sim.restart(n)
    assert _views(sim) == {"c0-n0": (1493, False), "c0-n1": (1494, False), "c0-n2": (1495, False),
                           "c0-n3": (1495, False)}
    rid = sim.put(b"b", b"2", to=list(C0))
    assert sim.run_until(_done(sim, rid), 3000)
    assert set(_views(sim).values()) == {(1495, True)}  # n0 and n1 joined the view of the f + 1 others
    g = sim.get(b"b", to="c0-n0")
    assert sim.run_until(_done(sim, g), 3000)
    assert sim.answers[g].value == b"2"
    assert sim.logs_agree("c0")


def test_storm_keeps_escalating_then_all_restart_and_recover():
    sim = Sim(seed=23, timeouts={"view_change": 150})
    assert sim.run_until(_done(sim, sim.put(b"s", b"1")), 5000)
    _storm(sim)
    assert sim.run_until(lambda: min(r.view for n, r in sim.replicas.items() if n in C0) >= 4, 20000)
    v4 = max(sim.replicas[n].view for n in C0)
    # The timer doubles per failed view but is capped at 8 x 150 ms: views keep rising.
    sim.run_until(lambda: False, 8 * 150 * 6)
    assert min(sim.replicas[n].view for n in C0) >= v4 + 3
    assert sum(not sim.replicas[n].view_active for n in C0) >= 3  # only a leader can hold its own NewView
    # Stop the members one by one, mid view change, then restart all of them.
    for n in C0:
        sim.crash(n)
        sim.run_until(lambda: False, 370)
    stored = {n: sim.stores[n].view for n in C0}
    assert all(v >= v4 for v, _active in stored.values()) and sum(not a for _v, a in stored.values()) >= 3
    sim.tamper.clear()
    for n in C0:
        sim.restart(n)
    rid = sim.put(b"s", b"2", to=list(C0))
    assert sim.run_until(_done(sim, rid), 5000)
    assert len({sim.replicas[n].view for n in C0}) == 1 and all(sim.replicas[n].view_active for n in C0)
    assert sim.logs_agree("c0") and sim.logs_agree("s0")


def test_restarted_follower_in_an_active_view_times_out_a_dead_leader():
    sim = Sim(seed=24)
    assert sim.run_until(_done(sim, sim.put(b"h", b"1")), 5000)
    sim.crash("c0-n0")
    sim.crash("c0-n1")
    sim.restart("c0-n1")
    r1 = sim.replicas["c0-n1"]
    assert r1.view == 0 and r1.view_active and not r1.in_vc
    # Its heartbeat timeout (400 ms) restarted: it asks for view 1 with the others and leaves the dead leader.
    assert sim.run_until(lambda: r1.view >= 1 and r1.view_active, 3000)
    rid = sim.put(b"h", b"2", to="c0-n1")
    assert sim.run_until(_done(sim, rid), 3000)


def _leader_restart_after_proposal(sim):
    """c0-n0 (leader of view 0) makes its proposal durable, 'sends' it (nobody receives it) and dies."""
    sent: list = []
    state = {"dead": False}

    def record(to, pm):
        if pm.proposal is not None:
            sent.append(pm.proposal)
            state["dead"] = True
        return [] if state["dead"] else [pm]

    sim.tamper["c0-n0"] = record
    r1 = sim.put(b"p", b"first", to="c0-n0")
    assert sim.run_until(lambda: state["dead"], 2000)
    sim.crash("c0-n0")
    first = sent[0]

    def log_only(to, pm):
        if pm.proposal is not None:
            sent.append(pm.proposal)
        return [pm]

    sim.tamper["c0-n0"] = log_only
    sim.restart("c0-n0")
    return r1, first, sent


def test_leader_restarted_after_proposing_resends_the_same_proposal(tmp_path):
    sim = Sim(seed=25, lmdb_root=str(tmp_path))
    try:
        assert sim.run_until(_done(sim, sim.put(b"p", b"0")), 5000)
        r1, first, sent = _leader_restart_after_proposal(sim)
        r2 = sim.put(b"p", b"second", to="c0-n0")  # only the restarted leader has it
        assert sim.run_until(_done(sim, r1, r2), 5000)
        assert sim.replicas["c0-n1"].view == 0  # no view change was needed
        by_slot: dict = {}
        for p in sent:
            by_slot.setdefault((p.view, p.height), set()).add(encode(p))
        assert all(len(v) == 1 for v in by_slot.values())  # never two different proposals
        assert len(sent) > 3  # the re-sent proposal, then the next height's
        dec = sim.stores["c0-n1"].decisions[first.height - 1]
        assert encode(dec.header) == encode(first.header)
        assert not any(kind == "equivocation" for _n, _a, kind in sim.evidence)
        assert sim.logs_agree("c0")
    finally:
        sim.close()


def test_equivocation_is_recorded_by_a_member_one_height_behind():
    """Both conflicting proposals reach a member that has not decided the previous height yet: they
    used to share one buffer slot (the second replaced the first) and no evidence was recorded."""
    sim = Sim(seed=26)
    assert sim.run_until(_done(sim, sim.put(b"e", b"0")), 5000)
    n3 = sim.replicas["c0-n3"]
    signer = Signer(sim.secrets["c0-n0"]["ed25519"])
    sent = []

    def no_commits_to_n3(to, pm):
        return [] if to == "c0-n3" and pm.commit is not None else [pm]

    def equivocate(to, pm):
        out = no_commits_to_n3(to, pm)
        p = pm.proposal
        if to == "c0-n3" and p is not None and p.height > n3.height + 1 and not sent:
            alt = p.copy(header=p.header.copy(outputs_root=bytes(32)), signature=b"")
            sign_message(signer, sim.m.network_id, alt)
            out.append(codec.PeerMessage(proposal=alt))  # a second signed proposal, same (view, height)
            sent.append(alt)
        return out

    for n in ("c0-n1", "c0-n2"):
        sim.tamper[n] = no_commits_to_n3
    sim.tamper["c0-n0"] = equivocate
    rids = []
    for i in range(6):
        rids.append(sim.put(f"e{i}".encode(), b"x", to="c0-n0"))
        assert sim.run_until(_done(sim, rids[-1]), 5000)
    assert sent  # the leader equivocated while c0-n3 was behind
    assert ("c0-n3", "c0-n0", "equivocation") in sim.evidence
    sim.tamper.clear()
    assert sim.run_until(lambda: n3.height == sim.replicas["c0-n0"].height, 5000)
    assert sim.logs_agree("c0")


def test_leader_restarted_after_its_new_view_proposes_the_selection():
    """The new leader of view 1 holds the NewView (which selects a prepared proposal) but dies before
    its proposal gets out: restarted, it recomputes the selection and proposes exactly that."""
    sim = Sim(seed=27)
    assert sim.run_until(_done(sim, sim.put(b"sel", b"0")), 5000)
    blocked = {"commit"}
    for n in C0:
        sim.tamper[n] = lambda to, pm: [] if pm.which() in blocked else [pm]
    q = sim.put(b"sel", b"1", to=["c0-n0", "c0-n1"])

    def prepared_everywhere():
        certs = [sim.replicas[n].prepared_cert for n in C0]
        return all(c is not None for c in certs) and len({encode(c.proposal.header) for c in certs}) == 1

    assert sim.run_until(prepared_everywhere, 3000)
    prepared = sim.replicas["c0-n2"].prepared_cert.proposal.header
    sim.crash("c0-n0")
    blocked.clear()
    sim.tamper["c0-n1"] = _drop({"proposal"})
    n1 = sim.replicas["c0-n1"]
    assert sim.run_until(lambda: all(sim.replicas[n].view == 1 and sim.replicas[n].view_active
                                     for n in ("c0-n1", "c0-n2", "c0-n3")), 5000)
    assert n1.accepted is not None and encode(n1.accepted.header) == encode(prepared)
    sim.crash("c0-n1")
    sim.stores["c0-n1"].inflight = {}  # as if it died after persisting the NewView, before proposing
    sim.tamper.clear()
    sim.restart("c0-n1")
    assert sim.replicas["c0-n1"].accepted is not None  # the selection, proposed again at once
    assert sim.run_until(_done(sim, q), 3000)
    assert encode(sim.stores["c0-n2"].decisions[prepared.height - 1].header) == encode(prepared)
    assert {sim.replicas[n].view for n in ("c0-n1", "c0-n2", "c0-n3")} == {1}
    assert not [r for r in sim.rejects if r[1] == "invalid_proposal"]
    assert sim.logs_agree("c0")


def test_restart_re_sends_the_higher_view_it_had_asked_for():
    """Stopped in view 5 (leader c0-n1, which stays down) after asking for view 6: restarted, the
    members ask for 6 again at once instead of waiting another view_change period (600 ms)."""
    sim = Sim(seed=28)
    assert sim.run_until(_done(sim, sim.put(b"hi", b"0")), 5000)
    for n in C0:
        sim.crash(n)
    for n in ("c0-n0", "c0-n2", "c0-n3"):
        sim.stores[n].view = (5, False)
        sim.stores[n].asked = 6 if n != "c0-n3" else 5
        sim.restart(n)
    assert sim.replicas["c0-n0"].vc_sent == 6 and sim.replicas["c0-n3"].vc_sent == 5
    rid = sim.put(b"hi", b"1", to=["c0-n0", "c0-n2", "c0-n3"])
    assert sim.run_until(_done(sim, rid), 400)
    assert {sim.replicas[n].view for n in ("c0-n0", "c0-n2", "c0-n3")} == {6}
    assert sim.stores["c0-n3"].asked == 6  # joined (f + 1 asked), durably


def test_asked_view_is_durable_in_lmdb(tmp_path):
    st = Store(str(tmp_path / "d"))
    st.persist_all([{"view": (4, False)}, {"asked": 7}])
    st.close()
    st = Store(str(tmp_path / "d"))
    try:
        view, active, _decisions, _inflight, _nv = st.load()
        assert (view, active, st.asked) == (4, False, 7)
    finally:
        st.close()
