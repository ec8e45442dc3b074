"""CLI conventions: status as a health gate, -o table|json|value, kv get of a missing key, logs -f,
list with provider/age/health, fault resume of a running node, region-loss warnings and the
--require-region-tolerance guard. Stand-in nodes and clients of tests/infra."""

from __future__ import annotations

import json
import threading
import time

import pytest

from infra import ops
from infra.cli.inspect import follow
from infra.testbed import faults
from tests.infra.conftest import FAKE
from tests.infra.test_local import FAKE_CLIENTS, run_cli

STAND_INS = [f"--node-module=impl_a={FAKE['impl_a']}", f"--node-module=impl_b={FAKE['impl_b']}"]


@pytest.fixture
def cli_deployment(home, capsys, request):
    request.addfinalizer(lambda: ops.destroy("default", home))
    code, _, err = run_cli(capsys, "deploy", "--testbed", *STAND_INS, *FAKE_CLIENTS)
    assert code == 0, err
    from infra.model.deployment import load_deployment
    return load_deployment("default", home)


def test_status_exit_codes_are_a_health_gate(cli_deployment, capsys):
    code, out, _ = run_cli(capsys, "status", "-o", "value")
    assert (code, out) == (0, "healthy\n")
    faults.crash(cli_deployment, "c0-n1")
    code, out, _ = run_cli(capsys, "status", "-o", "value")
    assert (code, out) == (3, "at-risk\n")
    faults.crash(cli_deployment, "c0-n2")
    code, out, _ = run_cli(capsys, "status")
    assert code == 4 and "stalled" in out
    code, out, _ = run_cli(capsys, "status", "-o", "json")
    doc = json.loads(out)
    assert code == 4 and doc["verdict"] == "stalled"
    c0 = doc["clusters"][0]
    assert (c0["verdict"], c0["faulty"], c0["why"].split(";")[0]) == ("stalled", ["c0-n1", "c0-n2"], "2 of 4 up, quorum needs 3")
    code, _, err = run_cli(capsys, "status", "--name", "nope")
    assert code == 2 and "fix:" in err


def test_kv_outputs_and_missing_key(cli_deployment, capsys):
    code, out, _ = run_cli(capsys, "kv", "put", "k1", "hello")
    assert code == 0 and json.loads(out)["op"] == "put"  # json stays the default for kv
    code, out, err = run_cli(capsys, "kv", "get", "k1", "-o", "value")
    assert (code, out) == (0, "hello\n")
    code, out, _ = run_cli(capsys, "kv", "get", "k1", "-o", "table")
    assert code == 0 and "hello" in out and "found" in out
    code, out, err = run_cli(capsys, "kv", "get", "absent", "-o", "value")
    assert code == 1 and out == "" and "key 'absent' not found" in err
    code, out, err = run_cli(capsys, "kv", "get", "absent")
    assert code == 1 and json.loads(out)["found"] is False and "not found" in err


def test_list_shows_provider_age_and_health(cli_deployment, capsys):
    code, out, _ = run_cli(capsys, "list", "-o", "json")
    (d,) = json.loads(out)["deployments"]
    assert code == 0 and (d["name"], d["provider"], d["nodes"], d["health"]) == ("default", "local", 8, "healthy")
    assert 0 <= d["age_s"] < 600
    code, out, _ = run_cli(capsys, "list")
    assert code == 0 and "default" in out and "local" in out and "healthy" in out
    code, out, _ = run_cli(capsys, "list", "-o", "value")
    assert (code, out) == (0, "default\n")
    faults.pause(cli_deployment, "s0-n0")
    code, out, _ = run_cli(capsys, "list", "-o", "json")
    assert json.loads(out)["deployments"][0]["health"] == "at-risk"


def test_resume_of_a_running_node_says_so(cli_deployment, capsys):
    code, _, err = run_cli(capsys, "fault", "resume", "c0-n0")
    assert code == 2 and "not paused" in err and "fix:" in err
    assert run_cli(capsys, "fault", "pause", "c0-n0")[0] == 0
    code, _, err = run_cli(capsys, "fault", "pause", "c0-n0")
    assert code == 2 and "already paused" in err
    code, out, _ = run_cli(capsys, "fault", "resume", "c0-n0")
    assert code == 0 and "resume c0-n0" in out
    code, _, err = run_cli(capsys, "fault", "resume", "c0-n0")
    assert code == 2 and "not paused" in err


def test_logs_follow_prints_new_lines(tmp_path, capsys):
    log = tmp_path / "n.log"
    log.write_text("one\ntwo\n")
    done = threading.Event()

    def writer():
        time.sleep(0.3)
        with open(log, "a") as f:
            f.write("three\nfour\n")
        time.sleep(0.5)
        done.set()

    threading.Thread(target=writer, daemon=True).start()
    follow(log, 1, poll_s=0.05, stop=done.is_set)
    assert capsys.readouterr().out == "two\nthree\nfour\n"


def test_logs_follow_on_the_cli(cli_deployment, capsys, monkeypatch):
    calls = []

    def fake_follow(path, lines):
        calls.append((path, lines))

    monkeypatch.setattr("infra.cli.inspect.follow", fake_follow)
    code, _, _ = run_cli(capsys, "logs", "c0-n0", "-f", "-n", "5")
    assert code == 0 and calls == [(cli_deployment.log_path("c0-n0"), 5)]


def test_plan_outputs_and_region_tolerance(capsys):
    code, out, err = run_cli(capsys, "plan")
    assert code == 0 and "warning: losing us-east stops cluster c0" in err and "cannot survive the loss" in err
    code, out, err = run_cli(capsys, "plan", "-o", "json")
    doc = json.loads(out)
    assert code == 0 and doc["region_tolerant"] is False and len(doc["nodes"]) == 8
    code, out, _ = run_cli(capsys, "plan", "-o", "value")
    assert code == 0 and out.splitlines()[0] == "c0-n0\timpl_a\tus-east"
    code, out, err = run_cli(capsys, "plan", "--regions", "3", "--require-region-tolerance")
    assert code == 2 and "cannot survive the loss of one region" in err and "--regions 4" in err
    code, out, err = run_cli(capsys, "plan", "--regions", "4", "--require-region-tolerance", "-o", "json")
    assert code == 0 and json.loads(out)["region_tolerant"] is True and "warning" not in err


def test_deploy_guard_refuses_before_anything_starts(home, capsys):
    code, _, err = run_cli(capsys, "deploy", "--require-region-tolerance", *STAND_INS)
    assert code == 2 and "cannot survive the loss of one region" in err
    assert not (home / "default").exists()
