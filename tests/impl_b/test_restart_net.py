"""SPEC 12.9 on real processes: members killed in the middle of a view change resume that view change
after restart (ViewChange{w} again, ViewData to the leader of w) instead of abandoning it."""

from impl_b.client import Client
from impl_b.crypto import Signer, read_key_file

from .netproc import Network

C0 = ("c0-n0", "c0-n1", "c0-n2", "c0-n3")


def test_members_killed_mid_view_change_resume_it_after_restart(tmp_path):
    # c0-n0 leads view 0 but its heartbeats never arrive: the others ask for view 1, whose leader
    # c0-n1 is down, so view 1 is entered and waits for a NewView (the long timer keeps it there).
    faults = {"c0-n0": [{"action": "drop", "messages": ["heartbeat", "proposal"]}]}
    net = Network(tmp_path / "rs", faults=faults, timeouts={"view_change": 8000})
    try:
        net.start_fresh([n for n in net.m.nodes if n != "c0-n1"])

        def pending_view_1():
            sts = [net.status(n) for n in C0 if n != "c0-n1"]
            return all(st["view"] == 1 and st["in_view_change"] for st in sts)

        assert net.wait_until(pending_view_1, 30)
        for n in ("c0-n0", "c0-n2", "c0-n3"):
            net.kill9(n)
        for n in C0:
            net.start(n)
        net.wait_healthy(list(C0))
        c = Client(net.m, Signer(read_key_file(net.key)), timeout_ms=30000, seed=4)
        try:
            assert c.put(b"resumed", b"1").value == b"1"
            assert c.get(b"resumed").value == b"1"
        finally:
            c.close()
        # View 1 was completed (its leader c0-n1 collected the resumed ViewData), not skipped; a member
        # that restarted after the NewView was sent gets it on its next ViewData or link.
        def settled():
            return {(st["view"], st["in_view_change"]) for st in map(net.status, C0)}

        assert net.wait_until(lambda: settled() == {(1, False)}, 20), settled()
    finally:
        net.close()
