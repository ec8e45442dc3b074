"""The Ansible playbooks of infra/ansible/, run by ansible-runner over real SSH into one network
namespace per region (root only): nodes shipped, keyed, started, healthy, serving, then stopped."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
import subprocess
import sys

import pytest

from infra.errors import RemoteError
from infra.model.keys import make_private_dir
from infra.model.planner import make_plan
from infra.nodes import process
from infra.nodes.client import kv_get, kv_put
from infra.providers.aws import ansible
from infra.providers.aws.provider import write_deployment
from infra.providers.aws.sshkey import generate_ssh_key
from infra.providers.docker import engine
from infra.testbed import netns
from tests.cloud.conftest import free_port, stop_process, wait_port

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


def _free_loopback_prefix() -> str:
    """A 127.X prefix whose node addresses have ports 7000-7002 free (fixed ports, as on cloud hosts)."""
    for x in range(173, 254):
        try:
            for r in (1, 2, 3):
                for port in (7000, 7001, 7002):
                    with socket.socket() as s:
                        s.bind((f"127.{x}.{r}.1", port))
            return f"127.{x}"
        except OSError:
            continue
    pytest.skip("no free 127.X range for fixed node ports")


@pytest.mark.docker_e2e
@pytest.mark.timeout(1200)  # 280 s for the test, the rest for building the images if it is the first to need them
def test_playbook_docker_runtime(docker_client, node_images, tmp_path, request):
    """The cloud path of the role: node containers with host networking on a machine reached over SSH
    (here this machine, through an sshd on 127.0.0.1; its engine already has the images, so the
    shipping tasks find them present)."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    plan = make_plan(3, 1, 1, 4, "alternate")
    prefix = _free_loopback_prefix()
    addrs, per_region = {}, {}
    for n in plan.nodes:
        k = per_region.get(n.region, 0)
        per_region[n.region] = k + 1
        addrs[n.id] = f"{prefix}.{plan.regions.index(n.region) + 1}.{k + 1}"
    container_prefix = f"hxt{os.getpid()}-"

    def cleanup():
        for c in docker_client.containers.list(all=True, filters={"name": container_prefix}):
            c.remove(force=True)

    request.addfinalizer(cleanup)
    ssh = tmp_path / "ssh"
    (ssh / "authorized_keys").parent.mkdir(parents=True)
    (ssh / "authorized_keys").write_text(generate_ssh_key(ssh / "id_ed25519") + "\n")
    generate_ssh_key(ssh / "host_key")
    os.makedirs("/run/sshd", exist_ok=True)
    home = make_private_dir(tmp_path / "root-home")
    port = free_port()
    cfg = ssh / "sshd.conf"
    cfg.write_text(f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {ssh}/host_key\n"
                   f"AuthorizedKeysFile {ssh}/authorized_keys\nPermitRootLogin prohibit-password\n"
                   "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                   f"PidFile {ssh}/sshd.pid\nSetEnv HOME={home} DOCKER_HOST={engine.docker_host()}\n")
    with open(ssh / "sshd.log", "wb") as log:
        sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=log,
                                stdin=subprocess.DEVNULL)
    request.addfinalizer(lambda: stop_process(sshd))
    assert wait_port("127.0.0.1", port, 15)

    dep = write_deployment(plan, "ansdk", tmp_path / "home", {i: {"host": a, "bind": a} for i, a in addrs.items()},
                           provider="ansible-test")
    nodes = [{"id": n.id, "implementation": n.implementation, "bind": addrs[n.id], "admin_port": 7002,
              "image": node_images[n.implementation], "image_archive": str(tmp_path / f"{n.implementation}.tar")}
             for n in plan.nodes]
    inv = ansible.inventory({"machine": {
        "ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": "root",
        "ansible_ssh_private_key_file": str(ssh / "id_ed25519"), "ansible_python_interpreter": "/usr/bin/python3",
        "heraclius_bundle": str(ansible.node_bundle(dep.root, [n.id for n in plan.nodes], tmp_path / "b.tgz")),
        "heraclius_nodes_here": nodes}},
        {"deployment_dir": str(dep.root), "heraclius_runtime": "docker", "heraclius_install_docker": False,
         "heraclius_dir": str(tmp_path / "remote"), "heraclius_container_prefix": container_prefix,
         "heraclius_health_retries": 60})
    result = ansible.run_playbook("site.yml", inv, tmp_path / "run1", timeout=200)
    assert result.ok, result.failures
    for n in plan.nodes:
        c = docker_client.containers.get(f"{container_prefix}{n.id}")
        assert c.status == "running" and c.attrs["HostConfig"]["NetworkMode"] == "host"
        assert c.image.labels["heraclius.impl"] == n.implementation
        mounts = {m["Destination"]: m for m in c.attrs["Mounts"]}
        assert mounts["/heraclius/keys"]["RW"] is False
    put = kv_put(dep, "dk-key", "via-docker-role", "b")
    assert put.ok, put.doc
    assert kv_get(dep, "dk-key", "a").doc["value"] == "via-docker-role"
    stopped = ansible.run_playbook("stop.yml", inv, tmp_path / "run2", timeout=60)
    assert stopped.ok, stopped.failures
    assert docker_client.containers.list(all=True, filters={"name": container_prefix}) == []
