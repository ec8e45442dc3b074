"""Real processes and sockets: GET/PUT, crash of any node incl. leaders, kill -9 of all, admin port."""

import contextlib
import json
import os
import subprocess
import sys
import time

import jsonschema
import pytest

from .procnet import ROOT, ProcNet

PAIR = [("c0", "coordinator"), ("s0", "shard")]


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """One network for the whole module (process start-up is the expensive part on a busy machine);
    every test leaves all eight nodes running again."""
    n = ProcNet(tmp_path_factory.mktemp("procnet"), PAIR)
    try:
        n.start_all()
        yield n
    finally:
        n.close()


def _restart(net, *nids):
    for nid in nids:
        net.start(nid)
    for nid in nids:
        net.wait_ready(nid)


def _leaders(net):
    return {net.status(c + "-n1")["leader"] for c in ("c0", "s0")}


def _put(net, k, v):
    return net.op("put", k, v)


def _get(net, k):
    return net.op("get", k)


def test_get_put_and_admin(net):
    rc, out = net.client("put", "alpha", "one")  # the SPEC 4.1 command line
    assert rc == 0, out
    r = out[0]
    assert r["op"] == "put" and r["found"] is False and r["cluster"] == "c0" and r["shard"] == "s0"
    r = _put(net, "alpha", "two")
    assert r["found"] is True
    rc, out = net.client("get", "alpha")
    g = out[0]
    assert rc == 0 and g["op"] == "get" and g["key"] == "alpha" and g["found"] is True and g["value"] == "two"
    assert g["shard_height"] > r["shard_height"] and g["height"] > r["height"]
    missing = _get(net, "missing")
    assert missing["found"] is False and missing["value"] is None
    schema = json.loads((ROOT / "wire_spec" / "status.schema.json").read_text())
    for nid in ("c0-n0", "s0-n3"):
        st = net.status(nid)
        jsonschema.validate(st, schema)
        assert st["height"] >= 1 and st["implementation"] == "impl_a"
    code, body = net.admin("c0-n1", "/metrics")
    assert code == 200 and b'heraclius_height{node="c0-n1",cluster="c0"}' in body
    h = min(net.status(n)["height"] for n in ("c0-n0", "c0-n1", "c0-n2", "c0-n3"))
    logs = {net.admin(n, f"/log/{h}")[1] for n in ("c0-n0", "c0-n1", "c0-n2", "c0-n3")}
    assert len(logs) == 1 and logs.pop()
    assert net.admin("c0-n0", f"/log/{h + 100}")[0] == 404
    rc, out = net.client("workload", "--ops", "40", "--concurrency", "4", "--keys", "5")
    assert rc == 0 and out[0]["ok"] == 40 and out[0]["failed"] == 0


def test_survives_leader_crash_in_each_cluster(net):
    _put(net, "before", "x")
    leaders = _leaders(net)
    views = {c: net.status(c + "-n1")["view"] for c in ("c0", "s0")}
    for nid in leaders:
        net.kill9(nid)
    r = _put(net, "after", "y")
    assert r["found"] is False
    assert _get(net, "before")["value"] == "x"
    alive = [n for n in net.nodes if n not in leaders]
    for c in ("c0", "s0"):
        member = next(n for n in alive if n.startswith(c))
        assert net.status(member)["view"] > views[c]
    _restart(net, *leaders)
    _put(net, "later", "z")
    end = time.monotonic() + 60
    target = max(net.status(n)["height"] for n in alive if n.startswith("c0"))
    while time.monotonic() < end and min(net.status(n)["height"] for n in leaders if n.startswith("c0")) < target:
        time.sleep(0.3)
    assert min(net.status(n)["height"] for n in leaders if n.startswith("c0")) >= target
    # The restarted old leaders learn the current view from its leader (SPEC 12.6 step 6).
    end = time.monotonic() + 30
    current = {c: net.status(next(n for n in alive if n.startswith(c)))["view"] for c in ("c0", "s0")}
    while time.monotonic() < end and any(net.status(n)["view"] != current[n[:2]] for n in leaders):
        time.sleep(0.3)
    for nid in leaders:
        st = net.status(nid)
        assert st["view"] == current[nid[:2]] and st["leader"] != nid and not st["in_view_change"]


def test_survives_follower_crash(net):
    followers = [next(n for n in net.nodes if n.startswith(c) and n not in _leaders(net)) for c in ("c0", "s0")]
    for nid in followers:
        net.kill9(nid)
    assert _put(net, "f", "1")["found"] is False
    assert _get(net, "f")["value"] == "1"
    _restart(net, *followers)


def test_no_acknowledged_write_lost_after_kill9_of_all(net):
    acked = {}
    for i in range(6):
        _put(net, f"durable{i}", f"v{i}")
        acked[f"durable{i}"] = f"v{i}"
    for nid in list(net.procs):
        net.kill9(nid)
    net.start_all()
    for k, v in acked.items():
        assert _get(net, k)["value"] == v


def test_kill9_of_all_during_writes_loses_no_acknowledged_write(net):
    hist = net.root / "crash_history.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    wl = subprocess.Popen([sys.executable, "-m", "impl_a.client", "--manifest", str(net.manifest), "--key",
                           str(net.root / "clients" / "client0.key"), "--timeout-ms", "4000", "workload",
                           "--ops", "400", "--concurrency", "4", "--keys", "1000000", "--put-ratio", "1",
                           "--duration-s", "4", "--key-prefix", "crash", "--history", str(hist)],
                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not hist.exists() or len(hist.read_text().splitlines()) < 5):
            time.sleep(0.05)
        for nid in list(net.procs):  # mid-workload, at no particular instant
            net.kill9(nid)
        wl.wait(timeout=60)
    finally:
        if wl.poll() is None:
            wl.kill()
            wl.wait(timeout=10)
    acked = [json.loads(x) for x in hist.read_text().splitlines()]
    acked = [x for x in acked if x["result"] == "ok"]
    assert len(acked) >= 5
    net.start_all()
    got = net.get_many([bytes.fromhex(x["key"]) for x in acked])
    assert all(got[bytes.fromhex(x["key"])] == bytes.fromhex(x["value"]) for x in acked)


def test_sigterm_is_clean_and_lock_is_exclusive(net):
    assert net.stop("c0-n3") == 0
    net.start("c0-n3")
    net.wait_ready("c0-n3")
    p = subprocess.run([sys.executable, "-m", "impl_a.node", "--manifest", str(net.manifest), "--node-id", "c0-n3",
                        "--keys", str(net.root / "keys" / "c0-n3"), "--data", str(net.root / "data" / "c0-n3")],
                       cwd=ROOT, capture_output=True, timeout=30)
    assert p.returncode == 4


def test_garbage_on_ports_is_counted_not_fatal(net):
    import socket

    for port_name in ("peer", "client"):
        port = net.nodes["c0-n1"]["ports"][port_name]
        for junk in (b"\x00\x00", b"\x00\x05hello", b"\xff" * 3000, b"\x00\x20" + bytes(32)):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(junk)
                s.settimeout(1)
                with contextlib.suppress(TimeoutError, ConnectionError):
                    s.recv(100)
    assert _put(net, "still", "alive")["found"] is False
    st = net.status("c0-n1")
    assert sum(st["rejected"].get(r, 0) for r in ("handshake_failed", "malformed")) >= 2
    assert net.procs["c0-n1"].poll() is None
