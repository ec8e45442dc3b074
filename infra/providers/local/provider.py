"""Local provider: every node is a real process on this machine, each region on its own loopback
range (127.0.<region+1>.<k+1>), ports from a free-port search, data and logs in the deployment dir."""

from __future__ import annotations

import errno
import json
import random
import shutil
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

from infra.errors import RemoteError, UsageError
from infra.model import implementations
from infra.model.deployment import CLIENT_IDS, Deployment, deployment_root, home_dir
from infra.model.keys import generate_client_key, generate_node_keys, make_private_dir
from infra.model.manifest import build_manifest, validate_manifest, write_manifest
from infra.model.planner import Plan
from infra.model.resources import PACKAGE_ROOT
from infra.nodes import process
from infra.nodes.admin import is_healthy
from infra.providers.base import DeployOptions, Provider
from infra.testbed import netns

REPO_ROOT = PACKAGE_ROOT  # nodes run from here: `python -m <package>` finds the packages beside infra
Progress = Callable[[str], None]
NETWORKS = ("loopback", "netns")


def _quiet(_msg: str) -> None:
    pass


def region_host(region_index: int, k: int) -> str:
    if region_index > 253 or k > 253:
        raise UsageError("too many regions or nodes per region for the 127.0.<region>.<node> scheme")
    return f"127.0.{region_index + 1}.{k + 1}"


LISTEN_PORTS = 12000  # how many ports just below the ephemeral range nodes may listen on


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _listen_port_range() -> range:
    """Ports for nodes to listen on: outside the kernel's ephemeral range, so that while a node is
    stopped its port cannot be taken as the local port of some outgoing connection (of other nodes,
    clients or tests), which would make the restarted node fail to bind."""
    low, high = _ephemeral_range()
    if low >= 1024 + LISTEN_PORTS:
        return range(low - LISTEN_PORTS, low)
    return range(high + 1, 65536)


def allocate_ports(hosts: dict[str, str]) -> dict[str, dict[str, int]]:
    """Three free ports per node on its own host, outside the ephemeral range. All probe sockets stay
    open until every port is chosen, so no two nodes get the same port."""
    held: list[socket.socket] = []
    out: dict[str, dict[str, int]] = {}
    candidates = list(_listen_port_range())
    random.SystemRandom().shuffle(candidates)
    pick = iter(candidates)
    try:
        for node_id, host in hosts.items():
            ports = {}
            for kind in ("peer", "client", "admin"):
                for port in pick:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    try:
                        s.bind((host, port))
                    except OSError as e:
                        s.close()
                        if e.errno == errno.EADDRINUSE:
                            continue
                        raise UsageError(f"cannot bind {host} for node {node_id}: {e.strerror}",
                                         fix="the local provider needs the 127.0.0.0/8 loopback range (Linux)") from None
                    held.append(s)
                    ports[kind] = port
                    break
                else:
                    raise UsageError(f"no free port left for node {node_id} on {host}",
                                     fix="destroy unused deployments (heraclius-ops list)")
            out[node_id] = ports
    finally:
        for s in held:
            s.close()
    return out


def port_in_use(host: str, port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like a listening node; ignores TIME_WAIT
    try:
        s.bind((host, port))
        return False
    except OSError as e:
        return e.errno == errno.EADDRINUSE
    finally:
        s.close()


def check_ports_free(dep: Deployment, node_id: str) -> None:
    if dep.state.get("netns"):
        return  # the node's address exists only inside its region namespace
    n = dep.node(node_id)
    for kind, port in n.ports.items():
        if port_in_use(n.host, port):
            raise UsageError(
                f"port {n.host}:{port} ({kind} port of {node_id}) is already in use by another process",
                fix=f"find it with `ss -ltnp 'sport = :{port}'` and stop it, or `heraclius-ops destroy "
                    f"--name {dep.name}` and deploy again to get fresh ports")


def node_command(dep: Deployment, node_id: str, implementation: str, module: str | None = None) -> list[str]:
    """SPEC 4: the implementation's node command (or a stand-in module) with the adapter arguments."""
    return [*implementations.get(implementation).command("node", module),
            "--manifest", str(dep.manifest_path), "--node-id", node_id,
            "--keys", str(dep.keys_dir(node_id)), "--data", str(dep.data_dir(node_id)),
            "--log", str(dep.log_path(node_id))]


def node_marker(dep: Deployment, node_id: str) -> str:
    """A string only this node's command line contains (its data dir, then the next argument's space)."""
    return f"{dep.data_dir(node_id)} "


def node_pid_alive(dep: Deployment, node_id: str) -> bool:
    return process.is_alive(dep.node(node_id).pid, node_marker(dep, node_id))


def start_node(dep: Deployment, node_id: str) -> int:
    """Start one node with the command line recorded in state.json (same data dir as before)."""
    n = dep.node(node_id)
    if node_pid_alive(dep, node_id):
        raise UsageError(f"node {node_id} is already running (pid {n.pid})",
                         fix=f"stop it first: heraclius-ops fault stop {node_id}")
    check_ports_free(dep, node_id)
    make_private_dir(dep.data_dir(node_id))
    pid = process.spawn(n.command, dep.log_path(node_id), cwd=REPO_ROOT)
    dep.set_node_state(node_id, pid=pid, status="running", started=time.time())
    return pid


def stop_node(dep: Deployment, node_id: str, grace: float = 5.0) -> str:
    """SIGTERM, SIGKILL after `grace` s. Returns 'stopped', 'killed' or 'not-running'."""
    n = dep.node(node_id)
    result = process.stop(n.pid, node_marker(dep, node_id), grace)
    dep.set_node_state(node_id, status="stopped")
    return result


def stop_nodes(dep: Deployment, node_ids: list[str], grace: float = 5.0) -> dict[str, str]:
    """Stop several nodes at once: SIGTERM to all, one shared grace period, then SIGKILL."""
    running = {i: dep.node(i).pid for i in node_ids if node_pid_alive(dep, i)}
    for pid in running.values():
        process.send(pid, signal.SIGCONT)
        process.send(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    result = {i: "not-running" for i in node_ids}
    for node_id, pid in running.items():
        marker = node_marker(dep, node_id)
        if process.wait_exit(pid, max(0.0, deadline - time.monotonic()), marker):
            result[node_id] = "stopped"
        else:
            result[node_id] = process.stop(pid, marker, grace=0.0)
    for node_id in node_ids:
        dep.set_node_state(node_id, status="stopped")
    return result


def wait_healthy(dep: Deployment, node_ids: list[str], timeout: float = 30.0, progress: Progress = _quiet,
                 exited: Callable[[str], bool] | None = None, what: str = "node",
                 exited_fix: Callable[[str], str] | None = None) -> None:
    """Poll /health until every node answers 'ok'. On a dead node or the deadline, raise RemoteError
    with that node's log tail. Providers other than local pass how to tell that a node has exited
    (`exited`), what a node runs in (`what`, e.g. "container of") and the fix for an exited one."""
    exited = exited or (lambda node_id: not node_pid_alive(dep, node_id))
    exited_fix = exited_fix or (lambda node_id: f"read the log (heraclius-ops logs {node_id} --name {dep.name}), then "
                                                f"`heraclius-ops destroy --name {dep.name}` and deploy again")
    waiting = list(node_ids)
    deadline = time.monotonic() + timeout
    while waiting:
        for node_id in list(waiting):
            n = dep.node(node_id)
            if is_healthy(*n.admin, timeout=0.5):
                waiting.remove(node_id)
                progress(f"{node_id} healthy")
            elif exited(node_id):
                dep.set_node_state(node_id, status="exited")
                code = process.exit_code(n.pid)
                how = f" (pid {n.pid}, exit code {code})" if code is not None else f" (pid {n.pid})"
                raise RemoteError(f"{what} {node_id} ({n.implementation}) exited before becoming healthy{how}",
                                  detail=f"last lines of {dep.log_path(node_id)}:\n" + process.tail(dep.log_path(node_id)),
                                  fix=exited_fix(node_id))
        if waiting and time.monotonic() > deadline:
            node_id = waiting[0]
            raise RemoteError(f"node {node_id} did not answer /health within {timeout:.0f} s "
                              f"({len(waiting)} node(s) not healthy: {', '.join(waiting)})",
                              detail=f"last lines of {dep.log_path(node_id)}:\n" + process.tail(dep.log_path(node_id)),
                              fix=f"read the log (heraclius-ops logs {node_id} --name {dep.name}); "
                                  f"`heraclius-ops destroy --name {dep.name}` stops the rest")
        if waiting:
            time.sleep(0.2)


NETNS_PORTS = {"peer": 7000, "client": 7001, "admin": 7002}


def create(plan: Plan, name: str, home=None, testbed: bool = False,
           node_modules: dict[str, str] | None = None, progress: Progress = _quiet,
           network: str = "loopback") -> Deployment:
    """Write keys, manifest and state for `plan` (no process started yet). network: 'loopback'
    (127.0.<region>.<k>, free ports) or 'netns' (a namespace per region, see infra.testbed.netns)."""
    if network not in NETWORKS:
        raise UsageError(f"unknown --network {network!r}", fix="use loopback or netns")
    root = deployment_root(name, home)
    if root.exists():
        raise UsageError(f"deployment {name!r} already exists in {home_dir(home)}",
                         fix=f"use it as is, remove it with `heraclius-ops destroy --name {name}`, or pick another --name")
    make_private_dir(root / "keys")
    for sub in ("data", "logs"):
        make_private_dir(root / sub)
    layout = None
    try:
        layout = netns.plan_layout(root, plan.regions) if network == "netns" else None
        per_region: dict[str, int] = {}
        hosts = {}
        for n in plan.nodes:
            k = per_region.get(n.region, 0)
            per_region[n.region] = k + 1
            hosts[n.id] = netns.host(layout, n.region, k) if layout else region_host(plan.regions.index(n.region), k)
        # a namespace holds only this deployment's addresses, so fixed ports cannot clash there
        ports = {i: dict(NETNS_PORTS) for i in hosts} if layout else allocate_ports(hosts)
        fields = {}
        for n in plan.nodes:
            ed, xs = generate_node_keys(root / "keys" / n.id)
            fields[n.id] = {"host": hosts[n.id], "ports": ports[n.id], "ed25519_public": ed, "x25519_public": xs}
        progress(f"generated keys for {len(plan.nodes)} nodes")
        clients = [{"id": cid, "ed25519_public": generate_client_key(root / "keys" / "clients" / f"{cid}.key")}
                   for cid in CLIENT_IDS.values()]
        network_id = f"heraclius-{name}"
        write_manifest(root / "manifest.json", build_manifest(plan, network_id, fields, clients, testbed))
        progress("wrote manifest.json")
        dep = Deployment(name, root)
        modules = node_modules or {}
        dep.state = {"provider": "local", "network": network, "created": time.time(), "nodes": {}}
        if layout:
            by_region: dict[str, list[str]] = {}
            for n in plan.nodes:
                by_region.setdefault(n.region, []).append(hosts[n.id])
            netns.setup(layout, by_region)
            dep.state["netns"] = layout
            progress(f"created {len(layout['regions'])} region namespaces in {layout['prefix']}.0.0/16")
        for n in plan.nodes:
            cmd = node_command(dep, n.id, n.implementation, modules.get(n.implementation))
            dep.state["nodes"][n.id] = {"pid": None, "status": "created", "implementation": n.implementation,
                                        "command": netns.wrap(layout, n.region, cmd) if layout else cmd}
        dep.save_state()
        return dep
    except BaseException:
        if layout and any(layout["regions"]):
            netns.teardown(layout)
        shutil.rmtree(root, ignore_errors=True)
        raise


def reclaim_ports(dep: Deployment, progress: Progress = _quiet) -> None:
    """Before a fresh deployment's first start: give new free ports to nodes whose ports another
    process took since they were chosen (the machine is shared), and rewrite the manifest."""
    if dep.state.get("netns"):
        return
    taken = [n for n in dep.nodes if any(port_in_use(n.host, p) for p in n.ports.values())]
    if not taken:
        return
    fresh = allocate_ports({n.id: n.host for n in taken})
    manifest = json.loads(dep.manifest_path.read_text())
    for c in manifest["clusters"]:
        for node in c["nodes"]:
            if node["id"] in fresh:
                node["ports"] = fresh[node["id"]]
    write_manifest(dep.manifest_path, validate_manifest(manifest))
    progress(f"ports taken meanwhile by other processes; new ports for {', '.join(n.id for n in taken)}")


def start_all(dep: Deployment, timeout: float = 30.0, progress: Progress = _quiet) -> Deployment:
    """Start every node and wait until all are healthy; on failure stop what was started."""
    ids = [n.id for n in dep.nodes]
    if all(dep.node(i).pid is None for i in ids):
        reclaim_ports(dep, progress)
    try:
        for node_id in ids:
            start_node(dep, node_id)
            progress(f"started {node_id}")
        wait_healthy(dep, ids, timeout, progress)
    except BaseException:
        stop_nodes(dep, ids, grace=2.0)
        raise
    return dep.reload()


def _pid_marker(root: Path) -> str:
    """What the command line of every node process of the deployment at `root` contains."""
    return f"--data {root / 'data'}/"


def _scan_processes(root: Path) -> dict[int, str]:
    """pid -> command line of every process whose command line names a data dir under `root`
    (nodes started by any tool, in any network namespace: /proc sees them all)."""
    marker = _pid_marker(root)
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and process.is_alive(int(entry.name)):
            found[int(entry.name)] = cmdline.strip()
    return found


def stop_all(root: Path, state: dict, progress: Progress = _quiet, grace: float = 5.0) -> list[str]:
    """Stop every node process of the deployment at `root`: the pids in state.json (checked against
    their data dir marker) and any other process whose command line names one of its data dirs.
    Works without the manifest. Returns the processes still alive afterwards."""
    targets: dict[int, str] = {}
    for node_id, st in (state.get("nodes") or {}).items():
        pid = st.get("pid") if isinstance(st, dict) else None
        if isinstance(pid, int) and process.is_alive(pid, f"{root / 'data' / node_id} "):
            targets[pid] = node_id
    for pid, cmdline in _scan_processes(root).items():
        if pid not in targets:
            node = cmdline.split("--node-id ", 1)[1].split(" ", 1)[0] if "--node-id " in cmdline else f"pid {pid}"
            targets[pid] = node
    marker = _pid_marker(root)
    for pid in targets:
        process.send(pid, signal.SIGCONT)
        process.send(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for pid, node_id in targets.items():
        if process.wait_exit(pid, max(0.0, deadline - time.monotonic()), marker):
            progress(f"{node_id} stopped")
        else:
            progress(f"{node_id} {process.stop(pid, marker, grace=0.0)}")
    return [f"{targets.get(pid, 'node')} (pid {pid})" for pid in sorted(_scan_processes(root))]


class LocalProvider(Provider):
    """Nodes as processes on this machine (loopback ranges or a network namespace per region)."""

    name = "local"

    def deploy(self, plan: Plan, name: str, home, options: DeployOptions, progress: Progress = _quiet) -> Deployment:
        progress(f"planned {len(plan.clusters)} clusters, {len(plan.nodes)} nodes in {len(plan.regions)} regions")
        if options.latency_ms and options.network != "netns":
            raise UsageError("--latency-ms needs --network netns (or --provider docker)")
        for impl in sorted({n.implementation for n in plan.nodes} - set(options.node_modules)):
            implementations.ensure_built(implementations.get(impl))
        dep = create(plan, name, home, options.testbed, options.node_modules, progress, options.network)
        try:
            if options.latency_ms:
                layout = dep.state["netns"]
                for i, a in enumerate(plan.regions):
                    for b in plan.regions[i + 1:]:
                        netns.set_delay(layout, a, b, options.latency_ms, dep.root / "delays.json",
                                        dep.log_path("delayd"))
                dep.save_state()
                progress(f"{options.latency_ms} ms one-way latency between regions")
            if options.client_modules:
                dep.state["client_modules"] = dict(options.client_modules)
                dep.save_state()
        except BaseException:
            self.destroy(dep.root, dep.state)
            shutil.rmtree(dep.root, ignore_errors=True)
            raise
        # a node that fails to start leaves the directory (nodes stopped) so its log can be read
        return start_all(dep, options.health_timeout, progress)

    def destroy(self, root: Path, state: dict, progress: Progress = _quiet) -> list[str]:
        still = stop_all(root, state, progress)
        if state.get("netns") and not still:
            netns.teardown(state["netns"])
            progress("removed the region namespaces")
        return still

    def node_states(self, dep: Deployment) -> dict[str, str]:
        out = {}
        for n in dep.nodes:
            if process.is_paused(n.pid) and node_pid_alive(dep, n.id):
                out[n.id] = "paused"
            elif node_pid_alive(dep, n.id):
                out[n.id] = "running"
            else:
                out[n.id] = "down"
        return out

    def region_layout(self, dep: Deployment) -> dict | None:
        return dep.state.get("netns")

    def _running_pid(self, dep: Deployment, node_id: str) -> int:
        n = dep.node(node_id)
        if not node_pid_alive(dep, node_id):
            raise UsageError(f"node {node_id} is not running (state: {n.status})",
                             fix=f"start it with `heraclius-ops fault start {node_id}`")
        assert n.pid is not None
        return n.pid

    def start(self, dep: Deployment, node_id: str, timeout: float = 30.0) -> dict:
        pid = start_node(dep, node_id)
        wait_healthy(dep, [node_id], timeout)
        return {"node": node_id, "action": "start", "pid": pid}

    def stop(self, dep: Deployment, node_id: str) -> dict:
        self._running_pid(dep, node_id)
        return {"node": node_id, "action": "stop", "result": stop_node(dep, node_id)}

    def kill(self, dep: Deployment, node_id: str) -> dict:
        pid = self._running_pid(dep, node_id)
        process.send(pid, signal.SIGKILL)
        process.wait_exit(pid, 5.0, node_marker(dep, node_id))
        dep.set_node_state(node_id, status="crashed")
        return {"node": node_id, "action": "crash", "pid": pid}

    def pause(self, dep: Deployment, node_id: str) -> dict:
        pid = self._running_pid(dep, node_id)
        if process.is_paused(pid):
            raise UsageError(f"node {node_id} is already paused (pid {pid})",
                             fix=f"resume it with `heraclius-ops fault resume {node_id}`")
        process.send(pid, signal.SIGSTOP)
        dep.set_node_state(node_id, status="paused")
        return {"node": node_id, "action": "pause", "pid": pid}

    def resume(self, dep: Deployment, node_id: str) -> dict:
        pid = self._running_pid(dep, node_id)
        if not process.is_paused(pid):
            raise UsageError(f"node {node_id} is not paused: it is running (pid {pid}); nothing to resume",
                             fix=f"pause it first with `heraclius-ops fault pause {node_id}`")
        process.send(pid, signal.SIGCONT)
        dep.set_node_state(node_id, status="running")
        return {"node": node_id, "action": "resume", "pid": pid}
