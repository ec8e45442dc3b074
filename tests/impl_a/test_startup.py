"""Node adapter exit codes (SPEC 4) and manifest semantic validation (SPEC 3)."""

import copy
import json
import os
import subprocess
import sys

import pytest

from impl_a.devnet import make_network
from impl_a.errors import LocalError
from impl_a.manifest import validate

from .procnet import ROOT


@pytest.fixture
def netdir(tmp_path):
    doc = make_network(tmp_path, [("c0", "coordinator"), ("s0", "shard")])
    return tmp_path, doc


def _run(root, nid="c0-n0", manifest=None, keys=None):
    args = [sys.executable, "-m", "impl_a.node", "--manifest", str(manifest or root / "manifest.json"),
            "--node-id", nid, "--keys", str(keys or root / "keys" / nid), "--data", str(root / "data" / nid)]
    return subprocess.run(args, cwd=ROOT, capture_output=True, timeout=30).returncode


def test_unknown_node_and_bad_manifest_exit_2(netdir):
    root, doc = netdir
    assert _run(root, nid="nope") == 2
    bad = copy.deepcopy(doc)
    bad["clusters"][0]["nodes"].pop()
    (root / "bad.json").write_text(json.dumps(bad))
    assert _run(root, manifest=root / "bad.json") == 2


def test_key_file_problems_exit_3(netdir):
    root, _ = netdir
    key = root / "keys" / "c0-n0" / "ed25519.key"
    os.chmod(key, 0o644)
    assert _run(root) == 3
    os.chmod(key, 0o600)
    assert _run(root, keys=root / "keys" / "c0-n1") == 3  # keys of another node


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d["clusters"][1]["nodes"][0].update(id="c0-n0"), "duplicate"),
    (lambda d: d["clusters"][0]["nodes"][0].update(id="s0"), "cluster id"),
    (lambda d: d["shard_map"].update(shards=["c0"]), "shard_map"),
    (lambda d: d["clusters"][1]["nodes"][1].update(ed25519_public=d["clusters"][0]["nodes"][0]["ed25519_public"]),
     "twice"),
    (lambda d: d["clusters"][1]["nodes"][1]["ports"].update(peer=d["clusters"][0]["nodes"][0]["ports"]["peer"]),
     "port"),
    (lambda d: d["clusters"][0]["nodes"][0].update(faults=[{"action": "drop"}]), "testbed"),
    (lambda d: d.update(timeouts_ms={"heartbeat_interval": 500, "heartbeat_timeout": 400}), "heartbeat"),
    (lambda d: d["clusters"][1].update(role="coordinator"), "no shard cluster"),
])
def test_semantic_rules(netdir, mutate, needle):
    _, doc = netdir
    validate(doc)
    bad = copy.deepcopy(doc)
    mutate(bad)
    with pytest.raises(LocalError) as exc:
        validate(bad)
    assert exc.value.exit_code == 2 and needle in str(exc.value)


@pytest.mark.parametrize("mode,ok", [(0o600, True), (0o400, True), (0o640, False), (0o604, False), (0o700, False)])
def test_key_file_modes(tmp_path, mode, ok):
    from impl_a.keys import read_secret

    key = tmp_path / "k.key"
    key.write_text("ab" * 32 + "\n")
    os.chmod(key, mode)
    if ok:
        assert read_secret(key) == bytes.fromhex("ab" * 32)
    else:
        with pytest.raises(LocalError) as exc:
            read_secret(key)
        assert exc.value.exit_code == 3 and "ab" * 32 not in str(exc.value)


@pytest.mark.parametrize("content", ["AB" * 32 + "\n", "ab" * 32, "ab" * 32 + "\n\n", "ab" * 31 + "\n", "zz" * 32 + "\n"])
def test_malformed_key_files(tmp_path, content):
    from impl_a.keys import read_secret

    key = tmp_path / "k.key"
    key.write_text(content)
    os.chmod(key, 0o600)
    with pytest.raises(LocalError) as exc:
        read_secret(key)
    assert exc.value.exit_code == 3


def test_admin_bind_defaults(netdir):
    _, doc = netdir
    d = copy.deepcopy(doc)
    d["clusters"][0]["nodes"][0]["bind"] = "0.0.0.0"
    d["clusters"][0]["nodes"][1]["bind"] = "0.0.0.0"
    d["clusters"][0]["nodes"][1]["admin_bind"] = "127.0.0.2"
    m = validate(d)
    assert m.nodes["c0-n0"].admin_bind == "0.0.0.0" and m.nodes["c0-n1"].admin_bind == "127.0.0.2"
    assert m.nodes["c0-n2"].admin_bind == "127.0.0.1"
