"""Testbed fault profile (SPEC 16) on real processes: one faulty node per cluster, service continues,
the faults are visible in /status, and Byzantine behaviour is counted and kept as evidence."""

import time

import pytest

from .procnet import ProcNet

PAIR = [("c0", "coordinator"), ("s0", "shard")]


def _run(tmp_path, faults):
    net = ProcNet(tmp_path, PAIR, testbed=True, faults=faults)
    net.start_all()
    return net


@pytest.fixture
def tamper_net(tmp_path):
    net = _run(tmp_path, {"s0-n1": [{"action": "tamper_compact"}],
                          "c0-n2": [{"action": "bad_signature", "messages": ["prepare", "commit"]},
                                    {"action": "delay", "delay_ms": 50, "probability": 0.5, "seed": 3}]})
    try:
        yield net
    finally:
        net.close()


def test_tamper_compact_and_bad_signatures(tamper_net):
    net = tamper_net
    for i in range(4):
        assert net.op("put", f"t{i}", f"v{i}")["found"] is False
    assert net.op("get", "t2")["value"] == "v2"

    def statuses():
        return [net.status(n) for n in ("c0-n0", "c0-n1", "c0-n2", "c0-n3")]

    def tamper_seen(sts):
        return any(e["node_id"] == "s0-n1" and e["kind"] == "tampered_compact"
                   for st in sts for e in st["byzantine_evidence"])

    # Pullers rotate through s0 only after empty (long-poll timeout) or invalid replies, so whether one
    # of them is at s0-n1 while it has something to serve depends on timing: idle for longer than
    # queue_long_poll (so every puller moves on to the next member), write, and repeat until one is.
    for i in range(24):
        if tamper_seen(statuses()):
            break
        time.sleep(0.2 + 0.15 * (i % 4))
        assert net.op("put", f"more{i}", "x")["found"] is False
    sts = statuses()
    assert tamper_seen(sts)
    assert sum(st["rejected"].get("bad_proof", 0) for st in sts) >= 1
    assert sum(net.status(n)["rejected"].get("bad_signature", 0) for n in ("c0-n0", "c0-n1", "c0-n3")) >= 1
    assert net.status("c0-n2")["testbed_faults"] and not net.status("c0-n0")["testbed_faults"]


@pytest.fixture
def silent_net(tmp_path):
    net = _run(tmp_path, {"c0-n0": [{"action": "equivocate", "targets": ["c0-n1"]}],
                          "s0-n0": [{"action": "withhold_queue"}, {"action": "mutate", "messages": ["heartbeat"]}],
                          })
    try:
        yield net
    finally:
        net.close()


def test_equivocating_leader_and_withholding_shard_leader(silent_net):
    net = silent_net
    rc, out = net.client("workload", "--ops", "30", "--concurrency", "6", "--keys", "4", "--seed", "5")
    assert rc == 0 and out[0]["ok"] == 30, out
    assert net.op("put", "final", "x")["found"] is False
    heights = [net.status(n)["height"] for n in ("c0-n1", "c0-n2", "c0-n3")]
    h = min(heights)
    logs = {net.admin(n, f"/log/{h}")[1] for n in ("c0-n1", "c0-n2", "c0-n3")}
    assert len(logs) == 1
    assert net.status("s0-n0")["testbed_faults"][0]["action"] == "withhold_queue"
