"""Node adapter contract (SPEC 4): exit codes for bad manifests, keys and locked data, clean stop."""

import json
import os
import subprocess
import sys

from .netproc import ROOT, Network


def _run(net, node, *extra, keys=None, data=None, manifest=None, timeout=30):
    args = [sys.executable, "-m", "impl_b.node", "--manifest", manifest or net.path, "--node-id", node,
            "--keys", keys or os.path.join(net.root, "keys", node),
            "--data", data or os.path.join(net.root, "data", node), *extra]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_exit_codes(tmp_path):
    net = Network(tmp_path / "net")
    try:
        assert _run(net, "nobody").returncode == 2
        (tmp_path / "file").write_text("x")
        assert _run(net, "c0-n0", data=str(tmp_path / "file" / "sub")).returncode == 4
        bad = json.loads(json.dumps(net.doc))
        bad["clusters"][1]["nodes"][0]["id"] = "c0-n0"
        bad_path = tmp_path / "bad.json"
        bad_path.write_text(json.dumps(bad))
        r = _run(net, "c0-n0", manifest=str(bad_path))
        assert r.returncode == 2 and "duplicate id" in r.stderr
        faulty = json.loads(json.dumps(net.doc))
        faulty["testbed"] = False
        faulty["clusters"][0]["nodes"][0]["faults"] = [{"action": "drop"}]
        (tmp_path / "faulty.json").write_text(json.dumps(faulty))
        assert _run(net, "c0-n0", manifest=str(tmp_path / "faulty.json")).returncode == 2
        key = os.path.join(net.root, "keys", "c0-n0", "ed25519.key")
        os.chmod(key, 0o640)
        assert _run(net, "c0-n0").returncode == 3
        os.chmod(key, 0o600)
        r = _run(net, "c0-n0", keys=os.path.join(net.root, "keys", "c0-n1"))
        assert r.returncode == 3 and "differs" in r.stderr
        with open(key) as fh:
            secret = fh.read().strip()
        assert secret not in r.stderr and secret not in r.stdout
        net.start("c0-n0")
        net.wait_healthy(["c0-n0"])
        assert _run(net, "c0-n0").returncode == 4  # data directory locked by the running node
        assert net.stop("c0-n0") == 0  # SIGTERM: clean stop
        with open(os.path.join(net.root, "c0-n0.log")) as fh:
            log = fh.read()
        assert secret not in log
        events = [json.loads(line)["event"] for line in log.splitlines()]
        assert "ready" in events and "stopped" in events
    finally:
        net.close()
