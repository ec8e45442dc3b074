"""Request bundles and grouped answers on a real 4 + 4 network of impl_b node processes: the client
library's concurrent users share bundles, the nodes answer per leaf, and the values read back are
the ones written."""

import json
import threading

import pytest

from impl_b.client import Client, RequestIds
from impl_b.crypto import Signer, read_key_file
from impl_b.schema import OP_GET, OP_PUT

from .netproc import Network


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    n = Network(tmp_path_factory.mktemp("impl_b_bundles"))
    try:
        n.start_all()
        yield n
    finally:
        n.close()


def _sum(net, name: str) -> int:
    return sum(net.status(n)["counters"][name] for n in net.m.clusters["c0"].members)


def _run_users(client0, users: int, job) -> list:
    """Run job(client, u) in `users` threads whose Clients share one Bundler; returns the results."""
    bundler = client0.new_bundler()
    out: list = [None] * users
    errors: list = []

    def user(u):
        c = Client(client0.m, client0.signer, timeout_ms=20000, seed=u, ids=client0.ids, bundler=bundler)
        try:
            out[u] = job(c, u)
        except Exception as e:  # reported below, with the others
            errors.append(repr(e))

    threads = [threading.Thread(target=user, args=(u,), daemon=True) for u in range(users)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        bundler.close()
    assert not errors and not any(t.is_alive() for t in threads), errors
    return out, bundler


def test_concurrent_users_share_bundles_and_read_back_their_values(net):
    c0 = Client(net.m, Signer(read_key_file(net.key)), timeout_ms=20000, seed=1, ids=RequestIds())
    bundles_before, replies_before, requests_before = (_sum(net, k) for k in
                                                       ("client_bundles", "client_replies", "client_requests"))
    users = 24
    puts, b1 = _run_users(c0, users, lambda c, u: c.put(b"bn-%d" % u, b"value-%d" % u))
    assert all(a.op == "put" and a.value == b"value-%d" % u for u, a in enumerate(puts))
    gets, b2 = _run_users(c0, users, lambda c, u: c.get(b"bn-%d" % ((u + 1) % users)))
    assert [(g.found, g.value) for g in gets] == [(True, b"value-%d" % ((u + 1) % users)) for u in range(users)]
    assert all(g.cluster == "c0" and g.shard_height >= 1 for g in gets)
    sent = {k: b1.sent[k] + b2.sent[k] for k in b1.sent}
    # 48 requests went out in fewer messages than requests, some of them as multi-item bundles.
    assert sent["bundles"] >= 1 and sent["bundles"] + sent["requests"] < 2 * users, sent
    assert sent["bundled_items"] + sent["requests"] == 2 * users
    assert _sum(net, "client_bundles") - bundles_before == sent["bundles"]
    assert _sum(net, "client_requests") - requests_before == 2 * users
    # Grouped answers: fewer ClientReply{answer} messages than requests (one per leaf and connection).
    assert _sum(net, "client_replies") - replies_before < 2 * users
    c0.close()


def test_cli_workload_bundles_and_reads_the_preloaded_values(net, tmp_path):
    code, out = net.cli("workload", "--preload", "--keys", "40", "--concurrency", "16", "--seed", "5",
                        "--key-prefix", "pl-", timeout=120)
    assert code == 0 and json.loads(out)["ok"] == 40, out
    before = _sum(net, "client_bundles")
    hist = tmp_path / "h.jsonl"
    code, out = net.cli("workload", "--ops", "160", "--concurrency", "16", "--keys", "40", "--put-ratio", "0",
                        "--seed", "6", "--key-prefix", "pl-", "--history", str(hist), timeout=120)
    summary = json.loads(out)
    assert code == 0 and summary["ok"] == 160 and summary["failed"] == 0, out
    assert _sum(net, "client_bundles") > before
    lines = [json.loads(x) for x in hist.read_text().splitlines()]
    assert len(lines) == 160
    # Preload wrote key pl-<i> exactly once, with value pre-5-<i + 1>.
    for x in lines:
        i = int(bytes.fromhex(x["key"]).decode()[3:])
        assert x["result"] == "ok" and bytes.fromhex(x["value"]) == b"pre-5-%d" % (i + 1), x
    assert len({x["request_id"] for x in lines}) == 160


def test_single_request_goes_alone_and_kinds_are_kept(net):
    c = Client(net.m, Signer(read_key_file(net.key)), timeout_ms=20000, seed=3, ids=RequestIds())
    b = c.new_bundler()
    c.bundler = b
    try:
        c.pos = b.start
        assert c.put(b"alone", b"1").found in (False, True)
        g = c.execute(OP_GET, b"alone", b"", req=c.make_request(OP_GET, b"alone", b"", sign=False))
        assert g.value == b"1"
        assert b.sent == {"requests": 2, "bundles": 0, "bundled_items": 0}
        assert c.execute(OP_PUT, b"alone", b"2").value == b"2"
    finally:
        b.close()


def test_users_woken_by_one_grouped_answer_share_the_next_bundle(net):
    c0 = Client(net.m, Signer(read_key_file(net.key)), timeout_ms=20000, seed=2, ids=RequestIds())

    def job(c, u):
        c.put(b"wk-%d" % u, b"w%d" % u)
        return [c.get(b"wk-%d" % u).value for _ in range(4)]

    users = 16
    values, b = _run_users(c0, users, job)
    assert values == [[b"w%d" % u] * 4 for u in range(users)]
    messages = b.sent["bundles"] + b.sent["requests"]
    assert b.sent["bundled_items"] + b.sent["requests"] == 5 * users
    # After the first round, the users answered together send together: far fewer messages than requests.
    assert messages <= 5 * users // 3, b.sent
    c0.close()
