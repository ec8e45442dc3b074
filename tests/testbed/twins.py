"""Twins on a local testbed: two processes hold the same node identity and keys, each seen by a
different part of its cluster (Twins, Bano et al. 2020).

Method. Nodes never compare manifests (SPEC 3), so every process can read its own manifest file:
- twin 1 keeps the node's manifest address and data dir; its manifest points the members of side 2
  at closed ports, so it can reach only side 1 (and every other cluster, which also reaches it);
- twin 2 listens on fresh ports with a copy of the data dir; its manifest gives the node those
  ports and points the members of side 1 at closed ports;
- the members of side 2 are restarted with a manifest in which the node's address is twin 2's.
Both twins authenticate with the same keys, so every handshake succeeds (SPEC 13) and neither side
can tell it is talking to a twin. Links between correct members are untouched."""

from __future__ import annotations

import copy
import http.client
import json
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from infra.errors import RemoteError, UsageError
from infra.model.deployment import Deployment
from infra.model.keys import make_private_dir
from infra.model.manifest import validate_manifest, write_manifest
from infra.nodes import process
from infra.nodes.admin import is_healthy
from infra.providers.local import provider as local


def _free_ports(host: str, count: int) -> list[int]:
    held = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((host, 0))
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def _set_manifest_arg(command: list[str], path: Path) -> list[str]:
    cmd = list(command)
    cmd[cmd.index("--manifest") + 1] = str(path)
    return cmd


@dataclass
class Twins:
    """A running pair of twins; `close()` stops twin 2 (twin 1 is an ordinary deployment node)."""

    dep: Deployment
    node_id: str
    side1: list[str]
    side2: list[str]
    twin2_pid: int
    twin2_host: str
    twin2_ports: dict
    twin2_data: Path
    manifests: dict[str, Path]

    @property
    def twin2_admin(self) -> tuple[str, int]:
        return self.twin2_host, self.twin2_ports["admin"]

    def close(self) -> None:
        process.stop(self.twin2_pid, f"{self.twin2_data} ", grace=3.0)


def make_twins(dep: Deployment, node_id: str, side1: list[str], side2: list[str],
               timeout: float = 60.0) -> Twins:
    """Split `node_id` into twins as described above. `side1` + `side2` must be the other members of
    its cluster. Stops and restarts the node and side 2."""
    n = dep.node(node_id)
    members = [m.id for m in dep.cluster_nodes(n.cluster) if m.id != node_id]
    if sorted(side1 + side2) != sorted(members):
        raise UsageError(f"sides {side1} + {side2} must be exactly the other members of {n.cluster}: {members}")
    base = dep.manifest
    root = dep.root / "twins"
    root.mkdir(exist_ok=True)
    twin2_ports = dict(zip(("peer", "client", "admin"), _free_ports(n.host, 3), strict=True))

    def variant(name: str, twin_ports: dict | None, hidden: list[str]) -> Path:
        m = copy.deepcopy(base)
        dead = iter(_free_ports("127.0.0.1", 3 * len(hidden)))
        for c in m["clusters"]:
            for node in c["nodes"]:
                if node["id"] == node_id and twin_ports:
                    node["ports"] = dict(twin_ports)
                if node["id"] in hidden:
                    node["ports"] = {k: next(dead) for k in ("peer", "client", "admin")}
        path = root / f"{name}.json"
        write_manifest(path, validate_manifest(m))
        return path

    manifests = {"twin1": variant("twin1", None, side2), "twin2": variant("twin2", twin2_ports, side1),
                 "side2": variant("side2", twin2_ports, [])}
    local.stop_nodes(dep, [node_id, *side2])
    twin2_data = dep.root / "data" / f"{node_id}-twin2"
    shutil.copytree(dep.data_dir(node_id), twin2_data)
    make_private_dir(twin2_data)
    dep.set_node_state(node_id, command=_set_manifest_arg(n.command, manifests["twin1"]))
    for i in side2:
        dep.set_node_state(i, command=_set_manifest_arg(dep.node(i).command, manifests["side2"]))
    cmd = _set_manifest_arg(n.command, manifests["twin2"])
    cmd[cmd.index("--data") + 1] = str(twin2_data)
    cmd[cmd.index("--log") + 1] = str(dep.root / "logs" / f"{node_id}-twin2.log")
    if cmd[0] != sys.executable:
        raise UsageError("twins need the local provider on the loopback network")
    pid = process.spawn(cmd, dep.root / "logs" / f"{node_id}-twin2.log", cwd=local.REPO_ROOT)
    twins = Twins(dep, node_id, side1, side2, pid, n.host, twin2_ports, twin2_data, manifests)
    try:
        for i in [node_id, *side2]:
            local.start_node(dep, i)
        local.wait_healthy(dep, [node_id, *side2], timeout)
        deadline = time.monotonic() + timeout
        while not is_healthy(*twins.twin2_admin, timeout=0.5):
            if time.monotonic() > deadline or not process.is_alive(pid):
                raise RemoteError(f"twin 2 of {node_id} did not become healthy",
                                  detail=process.tail(dep.root / "logs" / f"{node_id}-twin2.log"))
            time.sleep(0.2)
    except BaseException:
        twins.close()
        raise
    return twins


def restore(twins: Twins, timeout: float = 60.0) -> None:
    """Stop twin 2 and give the node and side 2 the shared manifest again (restarting them)."""
    dep = twins.dep
    twins.close()
    local.stop_nodes(dep, [twins.node_id, *twins.side2])
    for i in [twins.node_id, *twins.side2]:
        dep.set_node_state(i, command=_set_manifest_arg(dep.node(i).command, dep.manifest_path))
        local.start_node(dep, i)
    local.wait_healthy(dep, [twins.node_id, *twins.side2], timeout)


def manifest_for(twins: Twins, side: int) -> Path:
    """A manifest for clients that should reach twin `side` (1 or 2) when they dial the node."""
    return twins.dep.manifest_path if side == 1 else twins.manifests["side2"]


def admin_log(host: str, port: int, upto: int, timeout: float = 5.0) -> list[bytes]:
    """/log/1..upto of the process listening on that admin address (stops at the first 404)."""
    out = []
    for h in range(1, upto + 1):
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", f"/log/{h}")
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status == 404:
            break
        if resp.status != 200:
            raise RemoteError(f"{host}:{port} answered /log/{h} with HTTP {resp.status}")
        out.append(body)
    return out


def admin_status(host: str, port: int, timeout: float = 2.0) -> dict | None:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/status")
        resp = conn.getresponse()
        return json.loads(resp.read()) if resp.status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()
