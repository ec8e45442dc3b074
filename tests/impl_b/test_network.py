"""Real processes, real sockets: a coordinator + shard network of two 4-node impl_b clusters."""

import json
import os

import jsonschema
import pytest

from impl_b.client import Client, ClientFailure, RequestIds
from impl_b.crypto import Signer, read_key_file

from .netproc import ROOT, Network


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    n = Network(tmp_path_factory.mktemp("impl_b_net"))
    try:
        n.start_all()
        yield n
    finally:
        n.close()


@pytest.fixture
def client(net):
    # A fresh client per test: the CLI shares the key, and request ids are time based.
    c = Client(net.m, Signer(read_key_file(net.key)), timeout_ms=20000, seed=1, ids=RequestIds())
    yield c
    c.close()


ACKED: dict[bytes, bytes] = {}


def _put(client, k: bytes, v: bytes):
    ans = client.put(k, v)
    ACKED[k] = v
    return ans


def test_put_get_through_client_library(net, client):
    a = _put(client, b"alpha", b"one")
    assert a.found is False and a.shard == "s0" and a.height >= 1
    g = client.get(b"alpha")
    assert g.found is True and g.value == b"one"
    g2 = client.get(b"missing-key")
    assert g2.found is False and g2.value is None


def test_cli_get_put_and_workload_with_history(net, tmp_path):
    code, out = net.cli("put", "cli-key", "cli-value")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["op"] == "put" and doc["value"] == "cli-value" and doc["cluster"] == "c0"
    ACKED[b"cli-key"] = b"cli-value"
    code, out = net.cli("get", "cli-key")
    assert code == 0 and json.loads(out)["value"] == "cli-value"
    code, out = net.cli("--hex", "get", b"cli-key".hex())
    assert code == 0 and json.loads(out)["value"] == b"cli-value".hex()
    hist = tmp_path / "history.jsonl"
    code, out = net.cli("workload", "--ops", "60", "--concurrency", "4", "--keys", "5", "--seed", "3",
                        "--key-prefix", "w", "--history", str(hist))
    summary = json.loads(out)
    assert code == 0 and summary["ops"] == 60 and summary["ok"] == 60 and summary["failed"] == 0
    lines = [json.loads(x) for x in hist.read_text().splitlines()]
    assert len(lines) == 60 and all(x["result"] == "ok" for x in lines)
    # Every GET returns the value of some PUT of that key (or nothing): no invented values.
    puts = {(x["key"], x["value"]) for x in lines if x["op"] == "put"}
    for x in lines:
        if x["op"] == "get" and x["value"] is not None:
            assert (x["key"], x["value"]) in puts


def test_cli_workload_preload_and_payments(net, tmp_path):
    code, out = net.cli("workload", "--preload", "--keys", "6", "--key-bytes", "8", "--key-prefix", "acct",
                        "--concurrency", "3")
    assert code == 0 and json.loads(out)["ops"] == 6
    hist, samples = tmp_path / "h.jsonl", tmp_path / "s.jsonl"
    code, out = net.cli("workload", "--ops", "24", "--pattern", "payments", "--keys", "6", "--key-bytes", "8",
                        "--key-prefix", "acct", "--concurrency", "3", "--history", str(hist), "--samples", str(samples))
    assert code == 0 and json.loads(out)["ok"] == 24
    ops = [json.loads(x) for x in hist.read_text().splitlines()]
    assert [o["op"] for o in ops[:0]] == [] and len(ops) == 24 and all(len(o["key"]) == 16 for o in ops)
    by_process: dict = {}
    for o in ops:
        by_process.setdefault(o["process"], []).append(o["op"])
    for seq in by_process.values():
        assert seq == ["get", "get", "put", "put"] * (len(seq) // 4)
    assert all(o["value"] is not None for o in ops)  # every account was preloaded
    lines = [json.loads(x) for x in samples.read_text().splitlines()]
    assert sum(x["ok"] for x in lines) == 24


def test_admin_endpoints(net):
    with open(os.path.join(ROOT, "wire_spec", "status.schema.json")) as fh:
        schema = json.load(fh)
    for node in net.m.nodes:
        st = net.status(node)
        jsonschema.validate(st, schema)
        assert st["node_id"] == node and st["implementation"] == "impl_b"
    code, body = net.admin("c0-n1", "/metrics")
    text = body.decode()
    assert code == 200
    for name in ("heraclius_height", "heraclius_view", "heraclius_decisions_total", "heraclius_peer_up"):
        assert f'{name}{{node="c0-n1",cluster="c0"' in text
    logs = {net.admin(n, "/log/1") for n in net.m.clusters["c0"].members}
    assert len(logs) == 1 and next(iter(logs))[0] == 200
    assert net.admin("c0-n1", "/log/999999")[0] == 404


def test_survives_kill9_of_both_leaders(net, client):
    leaders = [net.status(m[0])["leader"] for m in (net.m.clusters["c0"].members, net.m.clusters["s0"].members)]
    for ld in leaders:
        net.kill9(ld)
    for i in range(5):
        _put(client, f"after-crash-{i}".encode(), f"v{i}".encode())
    assert client.get(b"alpha").value == b"one"
    alive = [n for n in net.m.clusters["c0"].members if n not in leaders]
    assert net.status(alive[0])["view"] >= 1
    for ld in leaders:
        net.start(ld)
    net.wait_healthy(leaders)
    for ld in leaders:
        cl = net.m.nodes[ld].cluster
        other = next(n for n in net.m.clusters[cl].members if n != ld)
        assert net.wait_until(lambda ld=ld, other=other: net.status(ld)["height"] >= net.status(other)["height"]
                              and net.status(ld)["view"] == net.status(other)["view"], 30)


def test_no_acknowledged_write_lost_after_kill9_of_every_node(net, client):
    for i in range(5):
        _put(client, f"durable-{i}".encode(), f"d{i}".encode())
    heights = {n: net.status(n)["height"] for n in net.m.nodes}
    for n in list(net.m.nodes):
        net.kill9(n)
    for n in net.m.nodes:
        net.start(n)
    net.wait_healthy(list(net.m.nodes))
    for n in net.m.nodes:
        assert net.status(n)["height"] >= heights[n] - 0  # nothing decided is lost
    client.close()
    for k, v in ACKED.items():
        assert client.get(k).value == v, k


def test_clear_error_when_no_member_can_answer(net):
    for n in net.m.clusters["c0"].members:
        net.kill9(n)
    c = Client(net.m, Signer(read_key_file(net.key)), timeout_ms=4000, seed=4, ids=RequestIds())
    try:
        with pytest.raises(ClientFailure) as e:
            c.get(b"alpha")
    finally:
        c.close()
    msg = str(e.value)
    assert "cluster c0" in msg and str(e.value.request_id) in msg
    assert set(e.value.failures) == set(net.m.clusters["c0"].members)
