"""Local provider, faults, status verdicts and the CLI, with stand-in node processes."""

import json
import os
import socket
import subprocess
import sys

import pytest

from infra import ops
from infra.cli import main
from infra.errors import RemoteError, UsageError
from infra.model.deployment import list_deployments, load_deployment
from infra.model.planner import make_plan
from infra.nodes import process
from infra.providers.local import provider as local
from infra.status import collect_status, status_document
from infra.testbed import faults
from infra.testbed.history import check_cluster_logs
from tests.infra.conftest import FAKE


def verdicts(dep):
    return {c.id: (c.verdict, c.faults_now, c.margin) for c in collect_status(dep)}


def test_deploy_status_and_destroy(fake_deployment, home):
    dep = fake_deployment
    assert list_deployments(home) == ["fake"]
    assert all(local.node_pid_alive(dep, n.id) for n in dep.nodes)
    assert verdicts(dep) == {"c0": ("healthy", 0, 1), "s0": ("healthy", 0, 1)}
    doc = status_document(collect_status(dep))
    assert [n["region"] for n in doc["clusters"][0]["nodes"]] == ["us-east", "eu-west", "ap-south", "us-east"]
    assert all(n["up"] for c in doc["clusters"] for n in c["nodes"])
    pids = [n.pid for n in dep.nodes]
    assert ops.destroy("fake", home) is True
    assert not any(process.is_alive(p) for p in pids)
    assert not dep.root.exists()
    assert ops.destroy("fake", home) is False


def test_crash_pause_restart_verdicts(fake_deployment):
    dep = fake_deployment
    faults.crash(dep, "c0-n1")
    assert verdicts(dep)["c0"] == ("at-risk", 1, 0)
    faults.pause(dep, "c0-n2")
    assert verdicts(dep)["c0"] == ("stalled", 2, -1)
    faults.resume(dep, "c0-n2")
    with pytest.raises(UsageError, match="not running"):
        faults.crash(dep, "c0-n1")
    result = faults.start(dep, "c0-n1")
    assert result["pid"] == dep.reload().node("c0-n1").pid and local.node_pid_alive(dep.reload(), "c0-n1")
    assert verdicts(dep)["c0"] == ("healthy", 0, 1)
    # restart keeps the data dir: the stand-in counts its starts there
    faults.restart(dep, "s0-n3")
    assert (dep.data_dir("s0-n3") / "starts").read_text() == "2"
    faults.stop(dep, "s0-n3")
    assert load_deployment("fake", dep.root.parent).node("s0-n3").status == "stopped"
    assert verdicts(dep)["s0"] == ("at-risk", 1, 0)


def test_byzantine_rewrites_manifest_and_restarts(fake_deployment):
    dep = fake_deployment
    old_pid = dep.node("s0-n1").pid
    rule = faults.byzantine_rule("drop", messages=["prepare"], probability=0.5)
    faults.byzantine(dep, "s0-n1", [rule])
    dep = dep.reload()
    node = next(n for c in dep.manifest["clusters"] for n in c["nodes"] if n["id"] == "s0-n1")
    assert node["faults"] == [{"action": "drop", "messages": ["prepare"], "probability": 0.5}]
    assert dep.node("s0-n1").pid != old_pid and local.node_pid_alive(dep, "s0-n1")
    st = next(s for c in collect_status(dep) for s in c.nodes if s.node.id == "s0-n1")
    assert st.status["testbed_faults"] == [rule]
    faults.byzantine(dep, "s0-n1", [])
    assert "faults" not in next(n for n in dep.reload().manifest["clusters"][1]["nodes"] if n["id"] == "s0-n1")
    with pytest.raises(UsageError, match="unknown Byzantine action"):
        faults.byzantine_rule("explode")


def test_censor_client_rules_name_manifest_clients(fake_deployment):
    dep = fake_deployment
    assert faults.byzantine_rule("censor_client", clients=["a", "client-b"]) == {
        "action": "censor_client", "clients": ["client-a", "client-b"]}
    with pytest.raises(UsageError, match="needs the clients"):
        faults.byzantine_rule("censor_client")
    with pytest.raises(UsageError, match="only applies to censor_client"):
        faults.byzantine_rule("drop", clients=["a"])
    before = dep.manifest_path.read_bytes()
    with pytest.raises(UsageError, match="'client-z', which is not a client id"):
        faults.byzantine(dep, "s0-n1", [faults.byzantine_rule("censor_client", clients=["client-z"])])
    assert dep.manifest_path.read_bytes() == before


def test_byzantine_needs_testbed(home, request):
    request.addfinalizer(lambda: ops.destroy("plain", home))
    dep = local.create(make_plan(3), "plain", home)
    with pytest.raises(UsageError, match="not a testbed"):
        faults.byzantine(dep, "c0-n0", [{"action": "silent"}])


def test_partition_reports_unavailable(fake_deployment):
    with pytest.raises(UsageError, match="--network netns"):
        faults.partition(fake_deployment, ["eu-west"])


def test_cluster_log_check_on_stand_ins(fake_deployment):
    check = check_cluster_logs(fake_deployment, "c0", max_height=3)
    assert check.ok and check.nodes == ["c0-n0", "c0-n1", "c0-n2", "c0-n3"]
    assert check.compared_to <= 3


def test_node_that_never_gets_healthy(home, monkeypatch, request):
    monkeypatch.setenv("FAKE_NODE_MODE", "fail-start")
    request.addfinalizer(lambda: ops.destroy("broken", home))
    with pytest.raises(RemoteError) as e:
        ops.deploy("broken", home, node_modules=FAKE, health_timeout=60)
    assert "exited before becoming healthy" in e.value.message
    assert "disk on fire" in e.value.detail
    assert "heraclius-ops logs" in e.value.fix
    dep = load_deployment("broken", home)
    assert not any(local.node_pid_alive(dep, n.id) for n in dep.nodes)


def test_port_in_use_is_reported(fake_deployment):
    dep = fake_deployment
    faults.stop(dep, "c0-n3")
    n = dep.node("c0-n3")
    squatter = socket.socket()
    try:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the probes left TIME_WAITs
        squatter.bind((n.host, n.ports["admin"]))
        squatter.listen()
        with pytest.raises(UsageError) as e:
            faults.start(dep, "c0-n3")
        assert f"{n.host}:{n.ports['admin']} (admin port of c0-n3) is already in use" in e.value.message
    finally:
        squatter.close()


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        main(list(argv))
        raise SystemExit(0)
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err


def test_cli_errors(home, capsys):
    code, _, err = run_cli(capsys, "status")
    assert code == 2 and "unknown deployment 'default'" in err and "fix: create it" in err
    code, _, err = run_cli(capsys, "deploy", "--nodes-per-cluster", "5")
    assert code == 2 and "not 3f+1" in err and "4 or 7" in err
    code, _, err = run_cli(capsys, "deploy", "--provider", "vmware")
    assert code == 2 and "'vmware' is not one of 'local', 'docker', 'aws'" in err
    code, _, err = run_cli(capsys, "deploy", "--mix", "xyz")
    assert code == 2 and "--mix" in err
    code, out, _ = run_cli(capsys, "destroy")
    assert code == 0 and "nothing to do" in out
    assert not home.exists() or list_deployments(home) == []


def test_cli_deploy_status_fault_destroy(home, capsys, request):
    request.addfinalizer(lambda: ops.destroy("default", home))
    code, out, _ = run_cli(capsys, "deploy", "--testbed", "--node-module", f"impl_a={FAKE['impl_a']}",
                           "--node-module", f"impl_b={FAKE['impl_b']}")
    assert code == 0
    assert "losing us-east stops cluster c0 (2 of 4 nodes there)" in out
    assert "c0-n3" in out and "impl_b" in out and "healthy" in out
    code, out, _ = run_cli(capsys, "fault", "crash", "s0-n0")
    assert code == 0
    code, out, _ = run_cli(capsys, "status", "--json")
    doc = json.loads(out)
    s0 = doc["clusters"][1]
    assert (s0["verdict"], s0["faulty"], s0["margin"]) == ("at-risk", ["s0-n0"], 0)
    assert doc["network"] == {"mode": "loopback", "partitions": [], "delays_ms": {}}
    assert code == 3 and doc["verdict"] == "at-risk"  # status is a health gate: 3 degraded / at-risk
    code, out, _ = run_cli(capsys, "status")
    assert code == 3 and "network: loopback" in out and "s0 (shard): f=1, faults now 1 (s0-n0), margin 0" in out
    code, out, _ = run_cli(capsys, "logs", "c0-n0", "-n", "1")
    assert json.loads(out)["event"] == "ready"
    code, _, err = run_cli(capsys, "fault", "byzantine", "c0-n0", "equivocate", "--targets", "c0-n1")
    assert code == 0
    code, _, err = run_cli(capsys, "fault", "partition", "eu-west")
    assert code == 2 and "--network netns" in err
    code, out, _ = run_cli(capsys, "destroy")
    assert code == 0 and "destroyed deployment default" in out


def test_help_for_every_command(capsys):
    for args in ([], ["deploy"], ["status"], ["kv", "get"], ["kv", "put"], ["workload"], ["fault", "crash"],
                 ["fault", "partition"], ["fault", "delay"], ["fault", "byzantine"], ["logs"], ["destroy"],
                 ["check-history"], ["check-logs"], ["plan"]):
        code, out, _ = run_cli(capsys, *args, "--help")
        assert code == 0 and "Usage: heraclius-ops" in out, args
    r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "heraclius-ops"), "deploy", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "--nodes-per-cluster" in r.stdout


FAKE_CLIENTS = ("--client-module", "a=tests.infra.fake_client", "--client-module", "b=tests.infra.fake_client")


def test_cli_kv_and_workload_plumbing(home, capsys, request, tmp_path, monkeypatch):
    """kv and workload run the client command line with the deployment's key and parse its JSON;
    the workload history goes through the checker, which catches a client that loses writes."""
    request.addfinalizer(lambda: ops.destroy("default", home))
    code, _, _ = run_cli(capsys, "deploy", "--node-module", f"impl_a={FAKE['impl_a']}",
                         "--node-module", f"impl_b={FAKE['impl_b']}", *FAKE_CLIENTS)
    assert code == 0
    code, out, _ = run_cli(capsys, "kv", "put", "k1", "hello", "--client", "b")
    assert code == 0 and json.loads(out)["found"] is False
    code, out, _ = run_cli(capsys, "kv", "get", "k1")
    assert code == 0 and json.loads(out)["value"] == "hello"
    h = tmp_path / "h.jsonl"
    code, out, _ = run_cli(capsys, "workload", "--ops", "60", "--keys", "3", "--key-prefix", "w", "--history", str(h),
                           "--final-reads")
    assert code == 0 and json.loads(out.splitlines()[0])["ok"] == 60 and "final reads: 3/3 ok" in out
    assert "history: 63 ops on 3 keys" in out and "final): OK" in out
    monkeypatch.setenv("FAKE_CLIENT_LOSE", "1")
    code, out, _ = run_cli(capsys, "workload", "--ops", "60", "--keys", "3", "--key-prefix", "w", "--seed", "2", "--history", str(h))
    assert "violation" in out
    code, out, _ = run_cli(capsys, "check-history", str(h))
    assert code == 1 and ("stale_read" in out or "lost_write" in out)
    # final reads see the values before the lost run: the checker names the lost writes
    h2 = tmp_path / "h2.jsonl"
    monkeypatch.setenv("FAKE_CLIENT_LOSE", "1")
    run_cli(capsys, "workload", "--ops", "30", "--keys", "2", "--key-prefix", "z", "--put-ratio", "1",
            "--history", str(h2), "--final-reads")
    code, out, _ = run_cli(capsys, "check-history", str(h2))
    assert code == 1 and "lost_write" in out


def test_deployment_objects_see_changes_made_elsewhere(fake_deployment):
    """The monitor holds a Deployment while the CLI changes state.json and the manifest."""
    watcher = load_deployment("fake", fake_deployment.root.parent)
    old_pid = watcher.node("c0-n2").pid
    faults.byzantine(load_deployment("fake", fake_deployment.root.parent), "c0-n2", [{"action": "silent"}])
    assert watcher.node("c0-n2").pid != old_pid and local.node_pid_alive(watcher, "c0-n2")
    assert watcher.manifest["clusters"][0]["nodes"][2]["faults"] == [{"action": "silent"}]
    c0 = next(c for c in collect_status(watcher) if c.id == "c0")
    assert c0.byzantine == ["c0-n2"] and c0.verdict == "at-risk"


@pytest.mark.parametrize("mode, up", [("old-schema", True), ("garbage-status", False)])
def test_nonconformant_status(home, monkeypatch, request, mode, up):
    """A node whose /status lags behind the schema stays usable (problems listed); one without the
    fields infra needs counts as a fault."""
    monkeypatch.setenv("FAKE_NODE_MODE", mode)
    request.addfinalizer(lambda: ops.destroy("odd", home))
    dep = ops.deploy("odd", home, node_modules=FAKE, health_timeout=60)
    c0 = collect_status(dep)[0]
    assert all(s.up == up for s in c0.nodes)
    if up:
        assert c0.verdict == "healthy"
        assert "'pending' is a required property" in c0.nodes[0].warnings[0]
    else:
        assert c0.verdict == "stalled" and "lacks a valid 'view'" in c0.nodes[0].error


def test_ports_taken_before_first_start_are_replaced(home, request):
    request.addfinalizer(lambda: ops.destroy("race", home))
    dep = local.create(make_plan(3), "race", home, node_modules=FAKE)
    n = dep.node("s0-n1")
    squatter = socket.socket()
    squatter.bind((n.host, n.ports["client"]))
    squatter.listen()
    try:
        dep = local.start_all(dep, timeout=60)
        moved = dep.node("s0-n1")
        assert moved.ports["client"] != n.ports["client"] and local.node_pid_alive(dep, "s0-n1")
        assert dep.node("s0-n0").ports == load_deployment("race", home).node("s0-n0").ports
        assert verdicts(dep)["s0"] == ("healthy", 0, 1)
    finally:
        squatter.close()
