"""Docker provider: a clear error without an engine, node images on two different Debian releases,
and a 3-region deployment of real impl_a/impl_b containers with emulated inter-region latency."""

from __future__ import annotations

import json

import pytest

from infra import docker_provider as dp
from infra import ops
from infra.client import kv_get, kv_put
from infra.deployment import load_deployment
from infra.docker import engine
from infra.errors import UsageError
from infra.status import collect_status

RTT_PROBE = """
import socket, sys, time
out = {}
for host in sys.argv[1:]:
    best = 1e9
    for _ in range(5):
        t = time.monotonic()
        socket.create_connection((host, 7002), timeout=5).close()
        best = min(best, (time.monotonic() - t) * 1000)
    out[host] = best
print(__import__("json").dumps(out))
"""


def test_unreachable_engine_names_the_fix(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(UsageError) as e:
        engine.connect(timeout=2)
    assert "Docker engine unreachable at unix:///nonexistent/docker.sock" in e.value.message
    assert "dockerd" in e.value.fix and "DOCKER_HOST" in e.value.fix


def test_ops_deploy_with_unreachable_engine(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(UsageError, match="Docker engine unreachable"):
        ops.deploy("nodocker", tmp_path, provider="docker")
    assert not (tmp_path / "nodocker").exists()


@pytest.mark.docker_e2e
def test_images_use_different_debian_releases(docker_client, node_images):
    seen = {}
    for impl, tag in node_images.items():
        out = docker_client.containers.run(tag, entrypoint=["sh", "-c"], network_mode="none", remove=True,
                                           command=["cat /etc/debian_version; python -c 'import sys; "
                                                    "print(sys.version_info[:2])'"])
        seen[impl] = out.decode().split()
    assert seen["impl_a"][0].startswith("12.") and seen["impl_a"][1:] == ["(3,", "11)"]
    assert seen["impl_b"][0].startswith("13") and seen["impl_b"][1:] == ["(3,", "13)"]


@pytest.mark.docker_e2e
@pytest.mark.timeout(1500)
def test_three_region_deployment(docker_client, node_images, tmp_path, request):
    home = tmp_path / "home"
    request.addfinalizer(lambda: dp.destroy("dk", home))
    dep = ops.deploy("dk", home, provider="docker", health_timeout=120, latency_ms=30)
    assert dep.provider == "docker"
    nodes = {n.id: n for n in dep.nodes}
    assert {n.implementation for n in nodes.values()} == {"impl_a", "impl_b"}
    for n in nodes.values():
        c = docker_client.containers.get(dep.state["nodes"][n.id]["container"])
        # the tag deploy chose (a rebuild if the sources changed since the fixture), built for this impl
        assert c.status == "running" and c.image.tags[0] == dep.state["nodes"][n.id]["image"]
        assert c.image.labels["heraclius.impl"] == n.implementation
        net = dep.state["docker"]["layout"]["regions"][n.region]["network"]
        assert c.attrs["NetworkSettings"]["Networks"][net]["IPAddress"] == n.host
    put = kv_put(dep, "cloud-key", "from-b", "b")
    assert put.ok, put.doc
    got = kv_get(dep, "cloud-key", "a")
    assert got.ok and got.doc["found"] and got.doc["value"] == "from-b"
    assert all(c.verdict == "healthy" for c in collect_status(dep))

    # latency: 30 ms one way between every pair of regions, none inside a region
    src = next(n for n in nodes.values() if n.region == "us-east")
    same = next(n for n in nodes.values() if n.region == "us-east" and n.id != src.id)
    far = next(n for n in nodes.values() if n.region == "eu-west")
    other = next(n for n in nodes.values() if n.region == "ap-south")
    probe = docker_client.containers.get(dep.state["nodes"][src.id]["container"])

    def rtt():
        code, out = probe.exec_run(["python", "-c", RTT_PROBE, same.host, far.host, other.host])
        assert code == 0, out
        return json.loads(out)

    before = rtt()
    assert before[far.host] >= 55 and before[other.host] >= 55 and before[same.host] < 20, before
    dp.set_delay(dep, "us-east", "ap-south", 0)
    after = rtt()
    assert after[far.host] >= 55 and after[other.host] < 20, after

    # a crashed container is one fault: the network still answers
    assert dp.stop_node(dep, far.id, grace=1).startswith("stopped")
    assert kv_put(dep, "cloud-key", "after-stop", "a").ok
    assert kv_get(dep, "cloud-key", "b").doc["value"] == "after-stop"

    root = load_deployment("dk", home).root
    assert ops.destroy("dk", home)
    assert not root.exists()
    label = f"{dp.LABEL}={root}"
    assert docker_client.containers.list(all=True, filters={"label": label}) == []
    assert docker_client.networks.list(filters={"label": label}) == []
