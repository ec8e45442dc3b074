"""censor_client and skip_queue_seq (SPEC 16) on real processes: the service goes on, the censored
client is served after the leader is replaced, and /status reports the rules exactly as written."""

from collections import Counter

import pytest

from .procnet import ProcNet

PAIR = [("c0", "coordinator"), ("s0", "shard")]
CENSOR = [{"action": "censor_client", "clients": ["client0"], "seed": 4}]
SKIP = [{"action": "skip_queue_seq", "messages": [], "probability": 1}]


@pytest.fixture
def fault_net(tmp_path):
    # Two censoring members: the leader of view 0 or of view 1 (a slow start may skip view 0) censors.
    net = ProcNet(tmp_path, PAIR, testbed=True, faults={"c0-n0": CENSOR, "c0-n1": CENSOR, "s0-n0": SKIP})
    try:
        net.start_all()
        yield net
    finally:
        net.close()


def test_censoring_leader_and_gapped_queue_server(fault_net):
    net = fault_net
    assert net.status("c0-n0")["testbed_faults"] == CENSOR
    assert net.status("s0-n0")["testbed_faults"] == SKIP
    assert net.status("c0-n2")["testbed_faults"] == []
    first = net.status("c0-n2")["leader"]
    # client0 is the only client: a censoring leader proposes nothing it sends, so c0 must replace it.
    assert net.op("put", "censored", "yes")["found"] is False
    leaders = [net.status(n)["leader"] for n in ("c0-n0", "c0-n1", "c0-n2", "c0-n3")]
    (leader, votes), = Counter(leaders).most_common(1)
    assert votes >= 3 and leader in ("c0-n2", "c0-n3"), (first, leaders)
    rc, out = net.client("workload", "--ops", "24", "--concurrency", "4", "--keys", "4", "--seed", "9")
    assert rc == 0 and out[0]["ok"] == 24, out
    assert net.op("get", "censored")["value"] == "yes"
    for nid in ("c0-n1", "c0-n2", "c0-n3"):
        assert not net.status(nid)["byzantine_evidence"]
