"""Docker provider: every node is a container of its implementation's image (infra/docker/), every
region its own Docker bridge network 10.X.<region>.0/24, routed to the others through the host.

Nodes get fixed ports (7000-7002) on their own address 10.X.<region>.<k+1>; the host holds
10.X.<region>.254 on each bridge, so the CLI, the monitor and the client libraries reach nodes as
they do local ones. Keys, manifest, data and logs stay in the deployment directory and are bind
mounted (keys read-only). Latency between regions reuses the namespace testbed's machinery
(infra.testbed.netns + infra.testbed.delayd): packets entering a region's bridge from another region are policy-routed
through a TUN device that delays them. Bridges are named like the testbed's veths for that reason."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import time
from pathlib import Path

import docker
import docker.errors
import docker.types

from infra.errors import UsageError
from infra.model.deployment import CLIENT_IDS, Deployment, deployment_root, home_dir
from infra.model.keys import generate_client_key, generate_node_keys, make_private_dir
from infra.model.manifest import build_manifest, write_manifest
from infra.model.planner import Plan
from infra.providers.base import DeployOptions, Provider
from infra.providers.docker import engine, images
from infra.providers.local import provider as local
from infra.testbed import netns

PORTS = {"peer": 7000, "client": 7001, "admin": 7002}
LABEL = "heraclius.deployment"
MOUNT = "/heraclius"
SECOND_OCTETS = range(150, 200)  # the namespace testbed picks from 200..254


def _quiet(_msg: str) -> None:
    pass


def _layout(root, regions: list[str], client: docker.DockerClient) -> dict:
    """A free 10.X.0.0/16 and names, in the shape infra.testbed.netns uses for its delay and partition rules."""
    tag = hashlib.sha256(str(root).encode()).hexdigest()[:4]
    used = netns._used_second_octets()
    for net in client.networks.list():
        for pool in (net.attrs.get("IPAM") or {}).get("Config") or []:
            parts = str(pool.get("Subnet", "")).split(".")
            if len(parts) == 4 and parts[0] == "10" and parts[1].isdigit():
                used.add(int(parts[1]))
    free = [x for x in SECOND_OCTETS if x not in used]
    if not free:
        raise UsageError("no free 10.X.0.0/16 range for the region networks (150..199 all in use)",
                         fix="destroy old docker deployments (`heraclius-ops list`)")
    regs = {name: {"index": i, "ns": None, "veth": f"hd{tag}r{i}", "network": f"hx-{tag}-{name}"}
            for i, name in enumerate(regions, 1)}
    return {"prefix": f"10.{free[0]}", "tag": tag, "regions": regs, "partitions": [], "tun": f"hd{tag}t",
            "table": 1000 + (int(tag, 16) + 15000) % 30000, "delays": {}, "delayd_pid": None}


def _container_name(dep: Deployment, node_id: str) -> str:
    return f"hx-{dep.state['docker']['layout']['tag']}-{node_id}"


def create(plan: Plan, name: str, home=None, testbed: bool = False, progress=_quiet) -> Deployment:
    """Keys, manifest, images and region networks for `plan`; no container started yet."""
    client = engine.connect()
    root = deployment_root(name, home)
    if root.exists():
        raise UsageError(f"deployment {name!r} already exists in {home_dir(home)}",
                         fix=f"remove it with `heraclius-ops destroy --name {name}`, or pick another --name")
    tags = {impl: images.ensure_node_image(client, impl, progress)
            for impl in sorted({n.implementation for n in plan.nodes})}
    layout = _layout(root, plan.regions, client)
    for sub in ("keys", "data", "logs"):
        make_private_dir(root / sub)
    try:
        hosts, per_region = {}, {}
        for n in plan.nodes:
            k = per_region.get(n.region, 0)
            per_region[n.region] = k + 1
            hosts[n.id] = netns.host(layout, n.region, k)
        fields = {}
        for n in plan.nodes:
            ed, xs = generate_node_keys(root / "keys" / n.id)
            fields[n.id] = {"host": hosts[n.id], "ports": dict(PORTS), "ed25519_public": ed, "x25519_public": xs}
        clients = [{"id": cid, "ed25519_public": generate_client_key(root / "keys" / "clients" / f"{cid}.key")}
                   for cid in CLIENT_IDS.values()]
        write_manifest(root / "manifest.json", build_manifest(plan, f"heraclius-{name}", fields, clients, testbed))
        dep = Deployment(name, root)
        dep.state = {"provider": "docker", "network": "docker", "created": time.time(), "nodes": {},
                     "docker": {"layout": layout, "images": tags, "forward": f"{layout['prefix']}.0.0/16"}}
        dep.save_state()
        _create_networks(client, dep)
        progress(f"created {len(plan.regions)} region networks in {layout['prefix']}.0.0/16")
        for n in plan.nodes:
            dep.state["nodes"][n.id] = {"pid": None, "status": "created", "implementation": n.implementation,
                                        "image": tags[n.implementation], "command": _args(n.id)}
            dep.state["nodes"][n.id]["container"] = _container_name(dep, n.id)
        dep.save_state()
        return dep
    except BaseException:
        _teardown(client, name, root, layout)
        shutil.rmtree(root, ignore_errors=True)
        raise


def _create_networks(client: docker.DockerClient, dep: Deployment) -> None:
    layout = dep.state["docker"]["layout"]
    for r in layout["regions"].values():
        subnet = f"{layout['prefix']}.{r['index']}.0/24"
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
            subnet=subnet, gateway=f"{layout['prefix']}.{r['index']}.254")])
        # no masquerading: a node must see its peers' real addresses
        client.networks.create(r["network"], driver="bridge", ipam=ipam, labels={LABEL: str(dep.root)},
                               options={"com.docker.network.bridge.name": f"{r['veth']}a",
                                        "com.docker.network.bridge.enable_ip_masquerade": "false"})
    if engine.allow_forwarding(dep.state["docker"]["forward"]):
        dep.state["docker"]["forward_rule"] = True


def _args(node_id: str) -> list[str]:
    return ["--manifest", f"{MOUNT}/manifest.json", "--node-id", node_id, "--keys", f"{MOUNT}/keys",
            "--data", f"{MOUNT}/data", "--log", f"{MOUNT}/logs/{node_id}.log"]


def start_node(dep: Deployment, node_id: str, client: docker.DockerClient | None = None) -> str:
    """Create and start the node's container (its data directory is kept across restarts)."""
    client = client or engine.connect()
    n = dep.node(node_id)
    st = dep.state["nodes"][node_id]
    layout = dep.state["docker"]["layout"]
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(st["container"]).remove(force=True)
    make_private_dir(dep.data_dir(node_id))
    api = client.api
    binds = {str(dep.manifest_path): {"bind": f"{MOUNT}/manifest.json", "mode": "ro"},
             str(dep.keys_dir(node_id)): {"bind": f"{MOUNT}/keys", "mode": "ro"},
             str(dep.data_dir(node_id)): {"bind": f"{MOUNT}/data", "mode": "rw"},
             str(dep.root / "logs"): {"bind": f"{MOUNT}/logs", "mode": "rw"}}
    net = layout["regions"][n.region]["network"]
    created = api.create_container(
        st["image"], command=st["command"], name=st["container"], labels={LABEL: str(dep.root), "heraclius.node": node_id},
        host_config=api.create_host_config(binds=binds, init=True),
        networking_config=api.create_networking_config({net: api.create_endpoint_config(ipv4_address=n.host)}))
    api.start(created["Id"])
    dep.set_node_state(node_id, status="running", started=time.time(), container_id=created["Id"][:12])
    return created["Id"]


def container_state(dep: Deployment, node_id: str, client: docker.DockerClient) -> str:
    try:
        return client.containers.get(dep.state["nodes"][node_id]["container"]).status
    except docker.errors.NotFound:
        return "missing"


def container_states(dep: Deployment, client: docker.DockerClient) -> dict[str, str]:
    """Docker's state (running, paused, exited, ...) of every node container, in one engine call."""
    found = {c.labels.get("heraclius.node"): c.status
             for c in client.containers.list(all=True, filters={"label": f"{LABEL}={dep.root}"})}
    return {n.id: found.get(n.id, "missing") for n in dep.nodes}


def node_container(dep: Deployment, node_id: str, client: docker.DockerClient, want: tuple[str, ...]):
    """The node's container if its state is one of `want`, else UsageError saying what to do."""
    dep.node(node_id)
    name = dep.state["nodes"][node_id]["container"]
    try:
        c = client.containers.get(name)
    except docker.errors.NotFound:
        raise UsageError(f"container {name} of node {node_id} does not exist",
                         fix=f"recreate it with `heraclius-ops fault start {node_id} --name {dep.name}`") from None
    if c.status not in want:
        fix = {"paused": f"resume it first: `heraclius-ops fault resume {node_id}`",
               "running": "it is running already"}.get(c.status, f"start it with `heraclius-ops fault start {node_id}`")
        raise UsageError(f"node {node_id} is {c.status} (container {name})", fix=fix)
    return c


def kill_node(dep: Deployment, node_id: str, client: docker.DockerClient | None = None) -> str:
    """`docker kill -s KILL`: the node (and the init in front of it) die without any cleanup; a
    paused container too (the engine thaws it for the kill)."""
    client = client or engine.connect()
    c = node_container(dep, node_id, client, ("running", "paused"))
    c.kill(signal="SIGKILL")
    code = c.wait(timeout=15).get("StatusCode")
    dep.set_node_state(node_id, status="crashed", exit_code=code)
    return f"killed (exit {code})"


def pause_node(dep: Deployment, node_id: str, client: docker.DockerClient | None = None) -> str:
    """`docker pause`: the cgroup freezer stops every process; sockets stay open but nothing answers."""
    client = client or engine.connect()
    node_container(dep, node_id, client, ("running",)).pause()
    dep.set_node_state(node_id, status="paused")
    return "paused (cgroup freezer)"


def unpause_node(dep: Deployment, node_id: str, client: docker.DockerClient | None = None) -> str:
    client = client or engine.connect()
    node_container(dep, node_id, client, ("paused",)).unpause()
    dep.set_node_state(node_id, status="running")
    return "running"


def restart_node(dep: Deployment, node_id: str, client: docker.DockerClient | None = None) -> str:
    """`docker start` of the stopped container (same data directory); recreated if it was removed."""
    client = client or engine.connect()
    state = container_state(dep, node_id, client)
    if state == "missing":
        start_node(dep, node_id, client)
        return "recreated"
    c = node_container(dep, node_id, client, ("exited", "created", "dead"))
    c.start()
    dep.set_node_state(node_id, status="running", started=time.time())
    return "started"


def stop_node(dep: Deployment, node_id: str, grace: float = 5.0, client: docker.DockerClient | None = None) -> str:
    """`docker stop`: SIGTERM, SIGKILL after `grace` s; returns 'stopped (exit N)' or 'not-running'."""
    client = client or engine.connect()
    try:
        c = client.containers.get(dep.state["nodes"][node_id]["container"])
    except docker.errors.NotFound:
        return "not-running"
    if c.status == "paused":  # a frozen process cannot handle SIGTERM
        c.unpause()
    elif c.status != "running":
        dep.set_node_state(node_id, status="stopped")
        return "not-running"
    c.stop(timeout=int(grace))
    code = c.wait(timeout=grace + 10).get("StatusCode")
    dep.set_node_state(node_id, status="stopped", exit_code=code)
    return f"stopped (exit {code})"


def wait_healthy(dep: Deployment, node_ids: list[str], timeout: float, progress=_quiet,
                 client: docker.DockerClient | None = None) -> None:
    client = client or engine.connect()
    local.wait_healthy(
        dep, node_ids, timeout, progress,
        exited=lambda node_id: container_state(dep, node_id, client) in ("exited", "dead", "missing"),
        what="container of",
        exited_fix=lambda node_id: f"`docker logs {dep.state['nodes'][node_id]['container']}`; then "
                                   f"`heraclius-ops destroy --name {dep.name}` and deploy again")


def set_delay(dep: Deployment, a: str, b: str, ms: int) -> dict:
    """One-way latency of `ms` between regions a and b (both directions); 0 removes it."""
    layout = dep.state["docker"]["layout"]
    netns.set_delay(layout, a, b, ms, dep.root / "delays.json", dep.root / "logs" / "delayd.log")
    dep.save_state()
    return {"active": dict(layout["delays"])}


def deploy(plan: Plan, name: str, home=None, testbed: bool = False, health_timeout: float = 60.0,
           progress=_quiet, latency_ms: int = 0) -> Deployment:
    """Create, start every container and wait until all nodes are healthy; on failure remove it all."""
    dep = create(plan, name, home, testbed, progress)
    try:
        client = engine.connect()
        for n in dep.nodes:
            start_node(dep, n.id, client)
            progress(f"started {n.id}")
        if latency_ms:
            for i, a in enumerate(plan.regions):
                for b in plan.regions[i + 1:]:
                    set_delay(dep, a, b, latency_ms)
            progress(f"{latency_ms} ms one-way latency between regions")
        wait_healthy(dep, [n.id for n in dep.nodes], health_timeout, progress, client)
    except BaseException:
        destroy(dep.root, dep.state)
        shutil.rmtree(dep.root, ignore_errors=True)
        raise
    return dep.reload()


def _teardown(client: docker.DockerClient, name: str, root, layout: dict | None, progress=_quiet) -> None:
    for c in client.containers.list(all=True, filters={"label": f"{LABEL}={root}"}):
        c.remove(force=True)
        progress(f"removed container {c.name}")
    if layout:
        netns.heal(layout)
        for pair in list(layout.get("delays", {})):
            for rule in netns._delay_rules(layout, *pair.split("|")):
                netns._ip("rule", "del", *rule, check=False)
        layout["delays"] = {}
        netns.stop_delayd(layout)
        netns._ip("route", "flush", "table", str(layout["table"]), check=False)
        netns._ip("tuntap", "del", "dev", layout["tun"], "mode", "tun", check=False)
        engine.remove_forwarding(f"{layout['prefix']}.0.0/16")
    for net in client.networks.list(filters={"label": f"{LABEL}={root}"}):
        net.remove()
        progress(f"removed network {net.name}")


def destroy(root: Path, state: dict, progress=_quiet) -> list[str]:
    """Remove the containers, networks and delays of the deployment at `root` (found by label, so
    state.json may be lost); returns containers that could not be removed."""
    layout = (state.get("docker") or {}).get("layout")
    client = engine.connect()
    _teardown(client, root.name, root, layout, progress)
    return [c.name for c in client.containers.list(all=True, filters={"label": f"{LABEL}={root}"})]


ALIVE = ("running", "paused")


class DockerProvider(Provider):
    """Nodes as containers of their implementation's image, a bridge network per region."""

    name = "docker"

    def deploy(self, plan: Plan, name: str, home, options: DeployOptions, progress=_quiet) -> Deployment:
        if options.network != "loopback":
            raise UsageError("--network applies to the local provider; docker gives every region its own bridge",
                             fix="drop --network")
        if options.node_modules:
            raise UsageError("--node-module applies to the local provider only")
        return deploy(plan, name, home, options.testbed, options.health_timeout, progress, options.latency_ms)

    def destroy(self, root: Path, state: dict, progress=_quiet) -> list[str]:
        return destroy(root, state, progress)

    def node_states(self, dep: Deployment) -> dict[str, str]:
        try:
            client = engine.connect(timeout=3)
        except UsageError:
            return {n.id: "remote" for n in dep.nodes}
        try:
            states = container_states(dep, client)
        finally:
            client.close()
        return {k: "running" if v == "running" else "paused" if v == "paused" else "down" for k, v in states.items()}

    def region_layout(self, dep: Deployment) -> dict | None:
        return dep.state.get("docker", {}).get("layout")

    def start(self, dep: Deployment, node_id: str, timeout: float = 30.0) -> dict:
        client = engine.connect()
        result = restart_node(dep, node_id, client)
        wait_healthy(dep, [node_id], timeout, client=client)
        return {"node": node_id, "action": "start", "result": result}

    def stop(self, dep: Deployment, node_id: str) -> dict:
        client = engine.connect()
        node_container(dep, node_id, client, ALIVE)
        return {"node": node_id, "action": "stop", "result": stop_node(dep, node_id, client=client)}

    def kill(self, dep: Deployment, node_id: str) -> dict:
        return {"node": node_id, "action": "crash", "result": kill_node(dep, node_id)}

    def pause(self, dep: Deployment, node_id: str) -> dict:
        return {"node": node_id, "action": "pause", "result": pause_node(dep, node_id)}

    def resume(self, dep: Deployment, node_id: str) -> dict:
        return {"node": node_id, "action": "resume", "result": unpause_node(dep, node_id)}

    def is_running(self, dep: Deployment, node_id: str) -> bool:
        return container_state(dep, node_id, engine.connect()) in ALIVE
