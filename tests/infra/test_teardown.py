"""destroy stops every process a deployment started even when its manifest (or state.json) is gone
or corrupt, refuses to delete the directory while a node still runs, and every command turns a
corrupt manifest into exit 2 with a fix. Real processes: the stand-in nodes of tests/infra."""

from __future__ import annotations

import json

import pytest

from infra import ops
from infra.errors import UsageError
from infra.model.deployment import load_deployment
from infra.nodes import process
from infra.providers.local import provider as local
from tests.infra.conftest import FAKE
from tests.infra.test_local import run_cli


def _pids(dep) -> list[int]:
    pids = [n.pid for n in dep.nodes]
    assert len(pids) == 8 and all(process.is_alive(p) for p in pids)
    return pids


def _all_gone(pids) -> bool:
    return not any(process.is_alive(p) for p in pids)


@pytest.mark.parametrize("damage", ["manifest deleted", "manifest corrupt", "manifest and state deleted"])
def test_destroy_stops_every_node_whatever_is_left(fake_deployment, home, capsys, damage):
    pids = _pids(fake_deployment)
    root = fake_deployment.root
    if damage == "manifest corrupt":
        (root / "manifest.json").write_text('{"version": 1, "clusters": [')
    else:
        (root / "manifest.json").unlink()
    if damage == "manifest and state deleted":
        (root / "state.json").unlink()  # the nodes are found by their command lines (--data <root>/data/)
    code, out, err = run_cli(capsys, "destroy", "--name", "fake")
    assert code == 0, err
    assert "destroyed deployment fake" in out and out.count(" stopped") == 8
    assert _all_gone(pids) and not root.exists()


def test_destroy_refuses_to_delete_while_a_node_runs(fake_deployment, home, monkeypatch, capsys):
    pids = _pids(fake_deployment)
    monkeypatch.setattr(local.process, "send", lambda pid, sig: None)  # signals that never arrive
    monkeypatch.setattr(local.process, "stop", lambda pid, marker=None, grace=5.0: "still running")
    monkeypatch.setattr(local.process, "wait_exit", lambda pid, timeout, marker=None: False)
    code, _, err = run_cli(capsys, "destroy", "--name", "fake")
    assert code == 2 and "not removing" in err and "8 node process(es) still run" in err and "fix:" in err
    assert f"pid {pids[0]}" in err
    assert fake_deployment.root.exists() and (fake_deployment.root / "state.json").exists()
    assert not _all_gone(pids)
    monkeypatch.undo()
    assert ops.destroy("fake", home)
    assert _all_gone(pids) and not fake_deployment.root.exists()


COMMANDS = [("status",), ("status", "-o", "json"), ("kv", "get", "k"), ("kv", "put", "k", "v"),
            ("workload", "--ops", "1"), ("logs", "c0-n0"), ("fault", "crash", "c0-n0"), ("fault", "resume", "c0-n0"),
            ("fault", "heal"), ("check-logs",), ("monitor",), ("bench", "--help")]


@pytest.mark.parametrize("content", ["{not json", json.dumps({"version": 1}), "[]"])
def test_corrupt_manifest_is_a_usage_error_with_a_fix(fake_deployment, home, capsys, content):
    pids = _pids(fake_deployment)
    (fake_deployment.root / "manifest.json").write_text(content)
    for args in COMMANDS:
        if "--help" in args:
            continue
        code, out, err = run_cli(capsys, *args, "--name", "fake")
        assert code == 2, (args, out, err)
        assert "manifest.json is corrupt" in err and "fix:" in err and "heraclius-ops destroy --name fake" in err, args
    code, out, _ = run_cli(capsys, "list", "-o", "json")
    (info,) = json.loads(out)["deployments"]
    assert code == 0 and info["name"] == "fake" and info["health"].startswith("unreadable")
    assert not _all_gone(pids)  # nothing was stopped by reading; destroy does it
    assert ops.destroy("fake", home) and _all_gone(pids)


def test_missing_manifest_with_state_says_destroy_works(fake_deployment, home, capsys):
    (fake_deployment.root / "manifest.json").unlink()
    code, _, err = run_cli(capsys, "status", "--name", "fake")
    assert code == 2 and "has no manifest.json" in err and "destroy --name fake" in err


def test_destroy_of_a_half_made_directory(home):
    """A directory with neither manifest nor state (a deploy killed early) is listed by nobody and
    still removed by destroy."""
    root = home / "half"
    (root / "data").mkdir(parents=True)
    assert [i.name for i in ops.inventory(home)] == []
    with pytest.raises(UsageError, match="unknown deployment"):
        load_deployment("half", home)
    assert ops.destroy("half", home) and not root.exists()


def test_destroy_needs_no_state_for_stand_ins_started_by_hand(home):
    """A node process whose pid state.json never recorded (e.g. the tool died after spawning it)."""
    dep = ops.deploy("byhand", home, node_modules=FAKE, health_timeout=60)
    pids = _pids(dep)
    state = json.loads(dep.state_path.read_text())
    for st in state["nodes"].values():
        st["pid"] = None
    dep.state_path.write_text(json.dumps(state))
    assert ops.destroy("byhand", home)
    assert _all_gone(pids)
