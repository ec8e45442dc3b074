"""Region namespaces and partitions (root only), with stand-in nodes."""

import json
import os
import subprocess
import sys

import pytest

from infra import ops
from infra.errors import UsageError
from infra.status import collect_status
from infra.testbed import faults
from tests.infra.conftest import FAKE

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

PROBE = """
import socket, sys, time
best = 99.0
for _ in range(3):  # the fastest of three connects: robust against a busy machine
    t = time.monotonic()
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1.5).close()
    except OSError as e:
        print(type(e).__name__)
        sys.exit(1)
    best = min(best, time.monotonic() - t)
print("connected", best)
"""


def connect_from(dep, region, node_id):
    """Open a TCP connection from inside `region`'s namespace to `node_id`'s peer port."""
    ns = dep.state["netns"]["regions"][region]["ns"]
    n = dep.node(node_id)
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", PROBE, n.host, str(n.ports["peer"])],
                       capture_output=True, text=True, timeout=60)
    return r.stdout.split()[0]


def connect_seconds(dep, region, node_id):
    ns = dep.state["netns"]["regions"][region]["ns"]
    n = dep.node(node_id)
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", PROBE, n.host, str(n.ports["peer"])],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.startswith("connected"), r.stdout + r.stderr
    return float(r.stdout.split()[1])


@pytest.fixture
def netns_deployment(home, request):
    request.addfinalizer(lambda: ops.destroy("nets", home))
    return ops.deploy("nets", home, node_modules=FAKE, health_timeout=60, network="netns")


def namespaces():
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout


def test_partition_and_heal(netns_deployment, home):
    dep = netns_deployment
    tag = dep.state["netns"]["tag"]
    assert dep.node("c0-n0").host.startswith(dep.state["netns"]["prefix"] + ".1.")
    assert {c.id: c.verdict for c in collect_status(dep)} == {"c0": "healthy", "s0": "healthy"}
    # c0-n1 is in eu-west, c0-n0 in us-east
    assert connect_from(dep, "us-east", "c0-n1") == "connected"
    result = faults.partition(dep, ["us-east"])
    assert sorted(result["cut"]) == [["ap-south", "us-east"], ["eu-west", "us-east"]]
    assert connect_from(dep, "us-east", "c0-n1") == "TimeoutError"   # silently dropped
    assert connect_from(dep, "eu-west", "c0-n2") == "connected"      # eu-west <-> ap-south still fine
    clusters = {c.id: c for c in collect_status(dep)}                  # the operator still sees every node
    assert all(s.up for c in clusters.values() for s in c.nodes)
    assert clusters["s0"].cut_off == {"s0-n2"} and clusters["s0"].verdict == "at-risk"
    assert clusters["c0"].verdict == "stalled"                         # 2 of 4 on each side
    assert faults.heal(dep)["healed"] == result["cut"]
    assert connect_from(dep, "us-east", "c0-n1") == "connected"
    assert {c.id: c.verdict for c in collect_status(dep)} == {"c0": "healthy", "s0": "healthy"}
    faults.crash(dep, "s0-n0")
    faults.restart(dep, "s0-n0")
    assert ops.destroy("nets", home)
    assert f"hx{tag}-" not in namespaces()


def test_region_latency(netns_deployment):
    """A TCP connect costs one round trip: 2 x the one-way delay between the two regions."""
    dep = netns_deployment
    assert connect_seconds(dep, "us-east", "c0-n1") < 0.15           # us-east -> eu-west
    result = faults.delay(dep, "us-east", "eu-west", 150)
    assert result["active"] == {"eu-west|us-east": 150}
    assert 0.29 <= connect_seconds(dep, "us-east", "c0-n1") < 2.0
    assert 0.29 <= connect_seconds(dep, "eu-west", "c0-n0") < 2.0    # both directions
    assert connect_seconds(dep, "us-east", "c0-n2") < 0.15           # ap-south is not delayed
    faults.partition(dep, ["eu-west"])                               # a cut beats a delay
    assert connect_from(dep, "us-east", "c0-n1") == "TimeoutError"
    faults.heal(dep)
    faults.delay(dep, "us-east", "eu-west", 0)
    assert connect_seconds(dep, "us-east", "c0-n1") < 0.15
    with pytest.raises(UsageError, match="two different regions"):
        faults.delay(dep, "us-east", "us-east", 10)


def test_latency_needs_netns(fake_deployment):
    with pytest.raises(UsageError, match="--network netns"):
        faults.delay(fake_deployment, "us-east", "eu-west", 10)


def test_cli_partition_delay_and_status(netns_deployment, capsys):
    from tests.infra.test_local import run_cli

    code, out, _ = run_cli(capsys, "fault", "delay", "us-east", "eu-west", "20", "--name", "nets")
    assert code == 0 and "eu-west/us-east=20" in out
    code, out, _ = run_cli(capsys, "fault", "partition", "ap-south", "--name", "nets")
    assert code == 0 and "ap-south/us-east" in out and "ap-south/eu-west" in out
    from infra.model.deployment import read_partitions  # what the monitor reads
    assert read_partitions(netns_deployment.root) == [["ap-south", "us-east"], ["ap-south", "eu-west"]]
    code, out, _ = run_cli(capsys, "status", "--json", "--name", "nets")
    net = json.loads(out)["network"]
    assert net == {"mode": "netns", "partitions": [["ap-south", "us-east"], ["ap-south", "eu-west"]],
                   "delays_ms": {"eu-west|us-east": 20}}
    code, out, _ = run_cli(capsys, "status", "--name", "nets")
    assert "partitions: ap-south/us-east, ap-south/eu-west; one-way delays: eu-west/us-east 20 ms" in out
    assert "cluster c0: partitioned off: c0-n2" in out
    code, out, _ = run_cli(capsys, "fault", "heal", "--name", "nets")
    assert code == 0 and "healed: ap-south/us-east, ap-south/eu-west" in out
    assert read_partitions(netns_deployment.root) == []
    code, _, err = run_cli(capsys, "fault", "delay", "us-east", "mars", "5", "--name", "nets")
    assert code == 2 and "unknown region mars" in err
