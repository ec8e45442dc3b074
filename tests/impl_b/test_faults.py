"""Testbed fault profile (SPEC 16) on real processes: Byzantine nodes are detected, service goes on."""

import threading
import time

import pytest

from impl_b.client import Client
from impl_b.crypto import Signer, read_key_file

from .netproc import Network

FAULTS = {
    "s0-n1": [{"action": "tamper_compact"}],
    "s0-n2": [{"action": "withhold_queue"}],
    "c0-n2": [{"action": "mutate", "messages": ["prepare", "commit"]}],
    "c0-n1": [{"action": "false_client_response"}],
    "c0-n3": [{"action": "delay", "delay_ms": 30, "messages": ["heartbeat"]},
              {"action": "drop", "messages": ["forward"], "probability": 0.5, "seed": 7}],
}


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    n = Network(tmp_path_factory.mktemp("impl_b_faults"), faults=FAULTS)
    try:
        n.start_all()
        yield n
    finally:
        n.close()


def test_byzantine_queue_servers_and_mutating_member(net):
    c = Client(net.m, Signer(read_key_file(net.key)), timeout_ms=30000, seed=2)
    try:
        for i in range(12):
            c.put(f"f{i}".encode(), f"v{i}".encode())
        for i in range(12):
            assert c.get(f"f{i}".encode()).value == f"v{i}".encode()
    finally:
        c.close()
    assert net.status("s0-n1")["testbed_faults"] == FAULTS["s0-n1"]
    # A client that asks the lying member first rejects its answer and gets a valid one elsewhere.
    liar = Client(net.m, Signer(read_key_file(net.key)), timeout_ms=30000, seed=5)
    try:
        liar.pos = net.m.clusters["c0"].members.index("c0-n1")
        ans = liar.get(b"f3")
        assert ans.value == b"v3" and ans.node != "c0-n1" and liar.rejected_answers >= 1
    finally:
        liar.close()
    def tampered():
        sts = {n: net.status(n) for n in net.m.clusters["c0"].members}
        evidence = [e for s in sts.values() for e in s["byzantine_evidence"]]
        return sts, any(e["node_id"] == "s0-n1" and e["kind"] == "tampered_compact" for e in evidence)

    # Pullers stay with a member while its replies are valid and rotate after an empty one (a long
    # poll that timed out): pause longer than queue_long_poll between puts until one has met s0-n1.
    extra = Client(net.m, Signer(read_key_file(net.key)), timeout_ms=30000, seed=6)
    try:
        for i in range(40):
            sts, seen = tampered()
            if seen:
                break
            time.sleep(net.m.timeouts["queue_long_poll"] * 1.5 / 1000)
            extra.put(f"more{i}".encode(), b"m")
    finally:
        extra.close()
    assert seen
    rejected = {}
    for s in sts.values():
        for k, v in s["rejected"].items():
            rejected[k] = rejected.get(k, 0) + v
    assert rejected.get("bad_proof", 0) >= 1  # the tampered leaf fails its inclusion proof
    # c0-n2's mutated votes are rejected (bad signature or undecodable) by the correct members.
    assert any(k in rejected for k in ("bad_signature", "non_canonical", "malformed"))
    heights = {n: s["height"] for n, s in sts.items()}
    assert min(heights.values()) > 0
    logs = {net.admin(n, "/log/1")[1] for n in net.m.clusters["c0"].members}
    assert len(logs) == 1


def _concurrent_puts(net, round_no: int, users: int = 4, each: int = 3) -> list:
    errors = []

    def user(u):
        cu = Client(net.m, Signer(read_key_file(net.key)), timeout_ms=30000, seed=10 + u)
        try:
            for i in range(each):
                cu.put(f"r{round_no}-u{u}-{i}".encode(), b"x")
        except Exception as e:  # collected and asserted by the caller
            errors.append(e)
        finally:
            cu.close()

    ts = [threading.Thread(target=user, args=(u,)) for u in range(users)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    return errors


def test_equivocating_leader_and_silent_node(tmp_path):
    faults = {"c0-n0": [{"action": "equivocate", "targets": ["c0-n3"]}], "s0-n3": [{"action": "silent"}]}
    # batch_wait lets concurrent requests share a batch even on an idle machine (the fault needs two inputs)
    n = Network(tmp_path / "eq", faults=faults, timeouts={"batch_wait": 50})
    try:
        n.start_all()

        def evidence():
            return [e for e in n.status("c0-n3")["byzantine_evidence"]
                    if e["kind"] == "equivocation" and e["node_id"] == "c0-n0"]

        # The fault needs a batch of two or more inputs; concurrent rounds produce one soon.
        for round_no in range(20):
            assert not _concurrent_puts(n, round_no)
            if evidence():
                break
        found = evidence()
        assert found and len(found[0]["messages_hex"]) == 2
        c = Client(n.m, Signer(read_key_file(n.key)), timeout_ms=30000, seed=3)
        try:
            assert c.get(b"r0-u3-2").value == b"x"
        finally:
            c.close()
        # One suspicious member cannot force a view change (f + 1 are needed); it keeps up by catch-up.
        assert n.wait_until(lambda: n.status("c0-n3")["height"] >= n.status("c0-n1")["height"], 20)
        assert len({n.admin(m, "/log/2")[1] for m in n.m.clusters["c0"].members}) == 1
    finally:
        n.close()
