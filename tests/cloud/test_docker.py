"""Docker provider: a clear error without an engine, node images on two different Debian releases
and impl_c's static image FROM scratch,
and one 3-region deployment of real impl_a/impl_b containers (shared by the tests of this module)
with emulated inter-region latency, its network in `status`, and every fault the provider injects."""

from __future__ import annotations

import json
import os
import time

import docker.errors
import pytest

from infra import ops
from infra.cli import main
from infra.errors import UsageError
from infra.nodes.client import kv_get, kv_put
from infra.providers.docker import engine
from infra.providers.docker import provider as dp
from infra.status import collect_status
from infra.testbed import faults

# best TCP connect time (ms) from inside a container to each host's admin port; -1 if it timed out
CONNECT_PROBE = """
import json, socket, sys, time
out = {}
for host in sys.argv[1:]:
    best = 1e9
    for _ in range(5):
        t = time.monotonic()
        try:
            socket.create_connection((host, 7002), timeout=2).close()
        except OSError:
            best = -1
            break
        best = min(best, (time.monotonic() - t) * 1000)
    out[host] = best
print(json.dumps(out))
"""


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
        raise SystemExit(0)
    cap = capsys.readouterr()
    return e.value.code, cap.out, cap.err


def test_unreachable_engine_names_the_fix(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(UsageError) as e:
        engine.connect(timeout=2)
    assert "Docker engine unreachable at unix:///nonexistent/docker.sock" in e.value.message
    assert "dockerd" in e.value.fix and "DOCKER_HOST" in e.value.fix


def test_private_engine_root(monkeypatch, tmp_path):
    """HERACLIUS_DOCKER_ROOT selects a private engine's socket; DOCKER_HOST still wins over it."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("HERACLIUS_DOCKER_ROOT", str(tmp_path / "eng"))
    assert engine.docker_host() == f"unix://{tmp_path / 'eng' / 'docker.sock'}"
    with pytest.raises(UsageError, match=f"unreachable at unix://{tmp_path / 'eng' / 'docker.sock'}"):
        engine.connect(timeout=2)
    monkeypatch.setenv("DOCKER_HOST", "unix:///elsewhere.sock")
    assert engine.private_root() is None and engine.docker_host() == "unix:///elsewhere.sock"


def test_ops_deploy_with_unreachable_engine(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(UsageError, match="Docker engine unreachable"):
        ops.deploy("nodocker", tmp_path, provider="docker")
    assert not (tmp_path / "nodocker").exists()


@pytest.mark.docker_e2e
@pytest.mark.timeout(1200)  # building the images, when this is the first test to need them
def test_images_use_different_debian_releases(docker_client, node_images):
    seen = {}
    for impl, tag in node_images.items():
        if impl not in ("impl_a", "impl_b"):
            continue  # the Python images; impl_c's is FROM scratch (next test)
        out = docker_client.containers.run(tag, entrypoint=["sh", "-c"], network_mode="none", remove=True,
                                           command=["cat /etc/debian_version; python3 -c 'import sys, nacl, lmdb; "
                                                    "print(sys.version_info[:2])'"])
        seen[impl] = out.decode().split()
    assert seen["impl_a"][0].startswith("12.") and seen["impl_a"][1:] == ["(3,", "11)"]
    assert seen["impl_b"][0].startswith("13") and seen["impl_b"][1:] == ["(3,", "13)"]


@pytest.mark.docker_e2e
def test_impl_c_image_is_static_from_scratch(docker_client, node_images):
    """impl_c's image holds only its static programs: no shell, no distribution; the node program
    runs (a usage error, SPEC 4 exit code 2, without arguments)."""
    tag = node_images["impl_c"]
    img = docker_client.images.get(tag)
    assert img.attrs["Config"]["Entrypoint"] == ["/usr/local/bin/heraclius-node"]
    assert img.attrs["Size"] < 80_000_000, img.attrs["Size"]
    c = docker_client.containers.create(tag, command=[], network_mode="none")
    try:
        c.start()
        assert c.wait(timeout=30)["StatusCode"] == 2, c.logs().decode()[-500:]
    finally:
        c.remove(force=True)
    shell = docker_client.containers.create(tag, entrypoint=["sh", "-c", "true"], network_mode="none")
    try:
        with pytest.raises(docker.errors.APIError, match="sh"):  # the engine cannot find a shell to exec
            shell.start()
    finally:
        shell.remove(force=True)


@pytest.mark.docker_e2e
@pytest.mark.timeout(600)
def test_diverse_deployment_with_impl_c_containers(docker_client, node_images, tmp_path):
    """`deploy --provider docker --mix diverse`: every cluster runs impl_a, impl_b and impl_c
    containers (each implementation's image picked from the registry); a value written through
    impl_c's client library is read through impl_a's and impl_b's, and the logs agree."""
    if os.geteuid() != 0:
        pytest.skip("docker deployments route between region networks on the host: root only")
    from infra.testbed.history import check_cluster_logs

    try:
        dep = ops.deploy("dkc", tmp_path, provider="docker", mix="diverse", health_timeout=120)
        images_by_impl = {st["implementation"]: st["image"] for st in dep.state["nodes"].values()}
        assert images_by_impl == {i: node_images[i] for i in ("impl_a", "impl_b", "impl_c")}
        assert kv_put(dep, "dkc-key", "from-c", "c").ok
        for client in ("a", "b"):
            got = kv_get(dep, "dkc-key", client=client)
            assert got.ok and got.doc["value"] == "from-c", got.doc
        for c in dep.clusters:
            deadline = time.monotonic() + 30
            while not (check := check_cluster_logs(dep, c["id"])).ok and time.monotonic() < deadline:
                time.sleep(1)
            assert check.ok, check.summary()
    finally:
        ops.destroy("dkc", tmp_path)


@pytest.fixture(scope="module")
def dk(docker_client, node_images, tmp_path_factory):
    """One testbed deployment for the module: 3 regions, 30 ms one way between them; destroyed at the end."""
    if os.geteuid() != 0:
        pytest.skip("region latency and partitions of docker deployments are host routing rules: root only")
    home = tmp_path_factory.mktemp("dkhome")
    try:
        dep = ops.deploy("dk", home, provider="docker", health_timeout=120, latency_ms=30, testbed=True)
        yield dep
    finally:
        ops.destroy("dk", home)


def _cluster(dep, cid):
    return next(c for c in collect_status(dep) if c.id == cid)


def _status_json(dep, capsys) -> dict:
    code, out, err = run_cli(capsys, "status", "--json", "--name", dep.name, "--home", str(dep.root.parent))
    assert code == {"healthy": 0, "degraded": 3, "at-risk": 3, "stalled": 4}[json.loads(out)["verdict"]], err
    return json.loads(out)


def _healthy_under_writes(dep, key: str, timeout: float = 90.0) -> None:
    """Write `key` once a second until every cluster is healthy. A member that suspected its leader
    alone (paused, cut off, restarted) and caught up by sync ends its suspicion only on a decision it
    commits live (SPEC 12.6 step 7, wire_spec/errata/docker.md D1), so an idle cluster may stay degraded."""
    deadline = time.monotonic() + timeout
    for i in range(10_000):
        put = kv_put(dep, key, f"w{i}", "a" if i % 2 else "b")
        assert put.ok, put.doc
        clusters = collect_status(dep)
        if all(c.verdict == "healthy" for c in clusters) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert all(c.verdict == "healthy" for c in clusters), [
        (s.node.id, s.process, s.status and s.status["view"], s.status and s.status["in_view_change"])
        for c in clusters for s in c.nodes]


def _probe(docker_client, dep, src_id, *hosts) -> dict:
    c = docker_client.containers.get(dep.state["nodes"][src_id]["container"])
    code, out = c.exec_run(["python3", "-c", CONNECT_PROBE, *hosts])
    assert code == 0, out
    return json.loads(out)


def _non_leader(dep, cid):
    c = _cluster(dep, cid)
    return next(s.node.id for s in c.nodes if s.node.id != c.leader)


@pytest.mark.docker_e2e
@pytest.mark.timeout(1200)
def test_deployment_serves_from_containers(dk, docker_client):
    nodes = {n.id: n for n in dk.nodes}
    assert dk.provider == "docker" and {n.implementation for n in nodes.values()} == {"impl_a", "impl_b"}
    for n in nodes.values():
        c = docker_client.containers.get(dk.state["nodes"][n.id]["container"])
        # the tag deploy chose (a rebuild if the sources changed since the fixture), built for this impl
        assert c.status == "running" and c.image.tags[0] == dk.state["nodes"][n.id]["image"]
        assert c.image.labels["heraclius.impl"] == n.implementation
        net = dk.state["docker"]["layout"]["regions"][n.region]["network"]
        assert c.attrs["NetworkSettings"]["Networks"][net]["IPAddress"] == n.host
    put = kv_put(dk, "cloud-key", "from-b", "b")
    assert put.ok, put.doc
    got = kv_get(dk, "cloud-key", "a")
    assert got.ok and got.doc["found"] and got.doc["value"] == "from-b"
    assert all(c.verdict == "healthy" for c in collect_status(dk))


@pytest.mark.docker_e2e
def test_status_prints_the_docker_networks(dk, docker_client, capsys):
    layout = dk.state["docker"]["layout"]
    doc = _status_json(dk, capsys)
    net = doc["network"]
    assert net["mode"] == "docker" and net["partitions"] == []
    assert net["delays_ms"] == {"eu-west|us-east": 30, "ap-south|us-east": 30, "ap-south|eu-west": 30}
    for name, r in layout["regions"].items():
        engine_net = docker_client.networks.get(r["network"])
        subnet = engine_net.attrs["IPAM"]["Config"][0]["Subnet"]
        assert net["regions"][name] == {"docker_network": r["network"], "subnet": subnet, "bridge": f"{r['veth']}a"}
    assert all(n["process"] == "running" and n["up"] for c in doc["clusters"] for n in c["nodes"])
    code, out, _ = run_cli(capsys, "status", "--name", "dk", "--home", str(dk.root.parent))
    assert code in (0, 3) and "loopback" not in out
    assert "network: docker, a bridge network per region routed through the host; partitions: none" in out
    assert "eu-west/us-east 30 ms" in out
    for name, r in layout["regions"].items():
        assert f"region {name}: docker network {r['network']} {layout['prefix']}.{r['index']}.0/24" in out


@pytest.mark.docker_e2e
def test_latency_between_regions_only(dk, docker_client):
    """30 ms one way between every pair of regions, none inside a region; removable per pair."""
    nodes = {n.id: n for n in dk.nodes}
    src = next(n for n in nodes.values() if n.region == "us-east")
    same = next(n for n in nodes.values() if n.region == "us-east" and n.id != src.id)
    far = next(n for n in nodes.values() if n.region == "eu-west")
    other = next(n for n in nodes.values() if n.region == "ap-south")
    before = _probe(docker_client, dk, src.id, same.host, far.host, other.host)
    assert before[far.host] >= 55 and before[other.host] >= 55 and 0 <= before[same.host] < 20, before
    faults.delay(dk, "us-east", "ap-south", 0)
    try:
        after = _probe(docker_client, dk, src.id, same.host, far.host, other.host)
        assert after[far.host] >= 55 and 0 <= after[other.host] < 20, after
    finally:
        faults.delay(dk, "us-east", "ap-south", 30)


@pytest.mark.docker_e2e
@pytest.mark.timeout(240)
def test_crash_then_restart(dk, docker_client, capsys):
    """`fault crash` is docker kill -s KILL: status says down and margin 0, GETs are still served;
    `fault restart` brings the node back with its data and the cluster to healthy."""
    home = str(dk.root.parent)
    assert kv_put(dk, "crash-key", "before", "a").ok
    victim = _non_leader(dk, "c0")
    code, out, err = run_cli(capsys, "fault", "crash", victim, "--name", "dk", "--home", home)
    assert code == 0 and "killed (exit 137)" in out, (out, err)
    assert docker_client.containers.get(dk.state["nodes"][victim]["container"]).status == "exited"
    c0 = next(c for c in _status_json(dk, capsys)["clusters"] if c["id"] == "c0")
    assert (c0["verdict"], c0["faulty"], c0["margin"]) == ("at-risk", [victim], 0)
    assert next(n for n in c0["nodes"] if n["id"] == victim)["process"] == "down"
    got = kv_get(dk, "crash-key", "b")
    assert got.ok and got.doc["value"] == "before", got.doc
    assert kv_put(dk, "crash-key", "while-down", "b").ok
    code, out, err = run_cli(capsys, "fault", "restart", victim, "--name", "dk", "--home", home)
    assert code == 0 and "result=started" in out, (out, err)
    assert kv_get(dk, "crash-key", "a").doc["value"] == "while-down"
    _healthy_under_writes(dk, "crash-key-2")
    # the restarted node caught up from its old data and its peers
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        c0 = _cluster(dk, "c0")
        heights = {s.node.id: s.status["height"] for s in c0.nodes}
        if heights[victim] == max(heights.values()):
            break
        time.sleep(1)
    assert heights[victim] == max(heights.values()) > 0, heights


@pytest.mark.docker_e2e
@pytest.mark.timeout(240)
def test_pause_resume_stop_start(dk, docker_client):
    victim = _non_leader(dk, "s0")
    name = dk.state["nodes"][victim]["container"]
    assert faults.pause(dk, victim)["result"].startswith("paused")
    assert docker_client.containers.get(name).status == "paused"
    s0 = _cluster(dk, "s0")
    assert s0.verdict == "at-risk" and s0.faulty == [victim]
    assert next(s for s in s0.nodes if s.node.id == victim).process == "paused"
    assert kv_put(dk, "pause-key", "frozen-shard-member", "a").ok
    with pytest.raises(UsageError, match=f"node {victim} is paused"):
        faults.pause(dk, victim)
    faults.resume(dk, victim)
    _healthy_under_writes(dk, "pause-key-2")

    assert faults.stop(dk, victim)["result"] == "stopped (exit 0)"  # SIGTERM: a clean stop (SPEC 4)
    assert docker_client.containers.get(name).status == "exited"
    assert _cluster(dk, "s0").faulty == [victim]
    with pytest.raises(UsageError, match=f"node {victim} is exited"):
        faults.crash(dk, victim)
    assert kv_put(dk, "pause-key", "while-stopped", "a").ok
    assert faults.start(dk, victim)["result"] == "started"
    assert kv_get(dk, "pause-key", "b").doc["value"] == "while-stopped"
    _healthy_under_writes(dk, "pause-key-2")

    faults.pause(dk, victim)  # a frozen node can still be crashed, as with SIGKILL after SIGSTOP
    assert faults.crash(dk, victim)["result"] == "killed (exit 137)"
    assert next(s for s in _cluster(dk, "s0").nodes if s.node.id == victim).process == "down"
    assert faults.start(dk, victim)["result"] == "started"
    _healthy_under_writes(dk, "pause-key-3")


@pytest.mark.docker_e2e
@pytest.mark.timeout(240)
def test_partition_then_heal(dk, docker_client, capsys):
    """A region cut off by host routing rules: its nodes are unreachable from other regions (and
    reported as partitioned off), the clusters keep serving, and heal reconnects them."""
    home = str(dk.root.parent)
    nodes = dk.nodes
    # a region holding at most f = 1 node of every cluster, so cutting it keeps every quorum
    region = next(r for r in ("ap-south", "eu-west", "us-east")
                  if all(sum(1 for n in nodes if n.cluster == c and n.region == r) <= 1 for c in ("c0", "s0")))
    inside = [n for n in nodes if n.region == region]
    src = next(n for n in nodes if n.region != region)
    code, out, err = run_cli(capsys, "fault", "partition", region, "--name", "dk", "--home", home)
    assert code == 0, err
    try:
        assert all(v == -1 for v in _probe(docker_client, dk, src.id, *[n.host for n in inside]).values())
        doc = _status_json(dk, capsys)
        assert sorted(sorted(p) for p in doc["network"]["partitions"]) == sorted(
            sorted([region, r]) for r in ("us-east", "eu-west", "ap-south") if r != region)
        for c in doc["clusters"]:
            cut = sorted(n.id for n in inside if n.cluster == c["id"])
            assert c["faulty"] == cut and c["margin"] == 1 - len(cut)
        put = kv_put(dk, "part-key", "minority-cut", "b")
        assert put.ok, put.doc
    finally:
        code, out, err = run_cli(capsys, "fault", "heal", "--name", "dk", "--home", home)
    assert code == 0 and region in out, (out, err)
    assert all(v > 0 for v in _probe(docker_client, dk, src.id, *[n.host for n in inside]).values())
    assert kv_get(dk, "part-key", "a").doc["value"] == "minority-cut"
    _healthy_under_writes(dk, "part-key-2")


@pytest.mark.docker_e2e
@pytest.mark.timeout(180)
def test_byzantine_rule_reaches_the_container(dk):
    """`fault byzantine` rewrites the bind-mounted manifest and restarts the container, which reads it."""
    victim = _non_leader(dk, "s0")
    rule = faults.byzantine_rule("delay", messages=["commit"], delay_ms=50)
    faults.byzantine(dk, victim, [rule])
    s0 = _cluster(dk, "s0")
    node = next(s for s in s0.nodes if s.node.id == victim)
    assert node.status["testbed_faults"] == [rule] and s0.faulty == [victim] and s0.verdict == "at-risk"
    faults.byzantine(dk, victim, [])
    node = next(s for s in _cluster(dk, "s0").nodes if s.node.id == victim)
    assert node.status["testbed_faults"] == []
    _healthy_under_writes(dk, "byz-key")


@pytest.mark.docker_e2e
def test_destroy_removes_everything(dk, docker_client):
    root = dk.root
    assert ops.destroy("dk", root.parent)
    assert not root.exists()
    label = f"{dp.LABEL}={root}"
    assert docker_client.containers.list(all=True, filters={"label": label}) == []
    assert docker_client.networks.list(filters={"label": label}) == []
    assert not ops.destroy("dk", root.parent)
