"""The Ansible playbooks of infra/ansible/, run by ansible-runner over real SSH into one network
namespace per region (root only): nodes shipped, keyed, started, healthy, serving, then stopped."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys

import pytest

from infra import netns, process
from infra.aws import ansible
from infra.aws.provider import write_deployment
from infra.aws.sshkey import generate_ssh_key
from infra.client import kv_get, kv_put
from infra.errors import RemoteError
from infra.keys import make_private_dir
from infra.planner import make_plan
from tests.cloud.conftest import stop_process, wait_port

SSHD = "/usr/sbin/sshd"
pytestmark = pytest.mark.ansible_local


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "SSH hosts in network namespaces need root"
    if not os.path.exists(SSHD):
        return "sshd is not installed (apt-get install openssh-server)"
    ok, why = netns.available()
    return None if ok else why


@pytest.fixture
def region_hosts(tmp_path, request):
    """3 region namespaces holding the nodes' addresses, each with an sshd on address .201."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    plan = make_plan(3, 1, 1, 4, "alternate")
    layout = netns.plan_layout(tmp_path, plan.regions)
    addrs, per_region = {}, {}
    for n in plan.nodes:
        k = per_region.get(n.region, 0)
        per_region[n.region] = k + 1
        addrs[n.id] = netns.host(layout, n.region, k)
    ssh_at = {r: netns.host(layout, r, 200) for r in plan.regions}
    sshds: list[subprocess.Popen] = []
    remote = tmp_path / "remote"

    def cleanup():
        for pidfile in remote.glob("*/*/node.pid"):
            try:
                pid = int(pidfile.read_text())
            except ValueError:
                continue
            process.stop(pid, "--node-id", grace=3.0)
        for p in sshds:
            stop_process(p)
        netns.teardown(layout)

    request.addfinalizer(cleanup)
    netns.setup(layout, {r: [a for node, a in addrs.items() if plan.nodes[[x.id for x in plan.nodes].index(node)].region == r]
                         + [ssh_at[r]] for r in plan.regions})
    ssh = tmp_path / "ssh"
    client_pub = generate_ssh_key(ssh / "id_ed25519")
    (ssh / "authorized_keys").write_text(client_pub + "\n")
    generate_ssh_key(ssh / "host_key")
    os.makedirs("/run/sshd", exist_ok=True)
    home = make_private_dir(tmp_path / "root-home")
    for r in plan.regions:
        cfg = ssh / f"sshd_{r}.conf"
        cfg.write_text(f"ListenAddress {ssh_at[r]}\nPort 22\nHostKey {ssh}/host_key\n"
                       f"AuthorizedKeysFile {ssh}/authorized_keys\nPermitRootLogin prohibit-password\n"
                       "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                       f"PidFile {ssh}/sshd_{r}.pid\n"
                       # a bare HOME: root's own shell profile (pyenv rehash here) must not run per command
                       f"SetEnv HOME={home}\n")
        ns = layout["regions"][r]["ns"]
        with open(ssh / f"sshd_{r}.log", "wb") as log:
            sshds.append(subprocess.Popen(["ip", "netns", "exec", ns, SSHD, "-D", "-e", "-f", str(cfg)],
                                          stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL))
    for r in plan.regions:
        assert wait_port(ssh_at[r], 22, 15), f"sshd in {r} did not start: {(ssh / f'sshd_{r}.log').read_text()}"
    return {"plan": plan, "addrs": addrs, "ssh_at": ssh_at, "key": ssh / "id_ed25519", "remote": remote}


def _inventory(hosts, dep, archive, remote, tmp_path):
    """One machine per region (its sshd), running that region's nodes; own directory per machine."""
    machines = {}
    for r in hosts["plan"].regions:
        ids = [n.id for n in hosts["plan"].nodes if n.region == r]
        ansible.node_bundle(dep.root, ids, tmp_path / f"bundle-{r}.tgz")
    for n in hosts["plan"].nodes:
        m = machines.setdefault(n.region, {
            "ansible_host": hosts["ssh_at"][n.region], "ansible_user": "root",
            "ansible_ssh_private_key_file": str(hosts["key"]), "ansible_python_interpreter": "/usr/bin/python3",
            "heraclius_dir": str(remote / n.region), "heraclius_bundle": str(tmp_path / f"bundle-{n.region}.tgz"),
            "heraclius_nodes_here": []})
        m["heraclius_nodes_here"].append({"id": n.id, "implementation": n.implementation,
                                          "bind": hosts["addrs"][n.id], "admin_port": 7002})
    return ansible.inventory(machines, {"deployment_dir": str(dep.root), "heraclius_runtime": "process",
                                        "heraclius_python": sys.executable, "source_archive": str(archive),
                                        "heraclius_health_retries": 60})


@pytest.mark.timeout(280)
def test_playbook_deploys_serving_network(region_hosts, tmp_path):
    plan = region_hosts["plan"]
    addrs = region_hosts["addrs"]
    dep = write_deployment(plan, "ans", tmp_path / "home", {i: {"host": a, "bind": a} for i, a in addrs.items()},
                           provider="ansible-test")
    archive = ansible.source_archive(tmp_path / "src.tar.gz", ["impl_a", "impl_b"])
    remote = region_hosts["remote"]
    inv = _inventory(region_hosts, dep, archive, remote, tmp_path)

    result = ansible.run_playbook("site.yml", inv, tmp_path / "run1", timeout=150)
    pids = {p: p.read_text() for p in remote.glob("*/*/node.pid")}
    assert result.ok, result.failures
    assert set(result.stats["ok"]) == set(plan.regions)
    assert not result.stats.get("failures") and not result.stats.get("dark")
    for n in plan.nodes:
        assert "Wait for /health" in result.ok_tasks[n.region]
        d = remote / n.region / n.id
        for key in ("ed25519.key", "x25519.key"):
            assert stat.S_IMODE((d / "keys" / key).stat().st_mode) == 0o600
            assert (d / "keys" / key).read_bytes() == (dep.keys_dir(n.id) / key).read_bytes()
        assert stat.S_IMODE((d / "keys").stat().st_mode) == 0o700
        assert hashlib.sha256((d / "manifest.json").read_bytes()).digest() == \
            hashlib.sha256(dep.manifest_path.read_bytes()).digest()
        # the node runs inside its region's namespace, started through that region's sshd
        pid = int((d / "node.pid").read_text())
        ns = os.readlink(f"/proc/{pid}/ns/net")
        assert ns != os.readlink("/proc/self/ns/net")

    put = kv_put(dep, "ans-key", "via-ansible", "a")
    assert put.ok, put.doc
    got = kv_get(dep, "ans-key", "b")
    assert got.ok and got.doc["value"] == "via-ansible"

    stopped = ansible.run_playbook("stop.yml", inv, tmp_path / "run2", timeout=60)
    assert stopped.ok, stopped.failures
    assert not list(remote.glob("*/*/node.pid"))
    assert not any(process.is_alive(int(v), "--node-id") for v in pids.values())
    shutil.rmtree(dep.root)


def test_unreachable_host_is_reported(tmp_path):
    if shutil.which("ssh") is None:
        pytest.skip("ssh client not installed")
    inv = ansible.inventory({"m1": {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "root",
                                    "heraclius_nodes_here": [{"id": "c0-n0", "implementation": "impl_a",
                                                              "bind": "127.0.0.1", "admin_port": 7002}]}},
                            {"deployment_dir": str(tmp_path), "heraclius_runtime": "process"})
    result = ansible.run_playbook("site.yml", inv, tmp_path / "run", timeout=60)
    assert not result.ok
    with pytest.raises(RemoteError) as e:
        ansible.require_ok(result, "the node playbook", tmp_path / "run")
    assert "m1" in (e.value.detail or "")
