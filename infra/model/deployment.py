"""Deployment directories: the on-disk layout every tool (CLI, monitor, tests) shares.

    <home>/<name>/manifest.json
    <home>/<name>/keys/<node-id>/{ed25519.key,x25519.key}   (files 0600, dirs 0700)
    <home>/<name>/keys/clients/<client>.key
    <home>/<name>/data/<node-id>/
    <home>/<name>/logs/<node-id>.log
    <home>/<name>/state.json    provider, per node: pid, command, implementation, status

home = the `home` argument, else $HERACLIUS_HOME, else `./deployments` if it exists and holds
deployments (the old default; `home_notice` says so), else `<user data dir>/heraclius/deployments`
(platformdirs: ~/.local/share/heraclius/deployments on Linux). API for other tools:

    dep = load_deployment("default")          # raises UsageError if unknown
    dep.manifest, dep.nodes, dep.node("c0-n1").admin_url, dep.log_path("c0-n1")
    list_deployments()                        # names under home
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from infra.errors import UsageError
from infra.model import topology
from infra.model.manifest import manifest_problems

DEFAULT_NAME = "default"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
CLIENT_IDS = {"a": "client-a", "b": "client-b", "c": "client-c"}


LEGACY_HOME = "deployments"


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("heraclius", appauthor=False)) / "deployments"


def _holds_deployments(path: Path) -> bool:
    try:
        return path.is_dir() and any((p / "manifest.json").exists() or (p / "state.json").exists()
                                     for p in path.iterdir())
    except OSError:
        return False


def home_dir(home: str | Path | None = None) -> Path:
    if home:
        return Path(home).resolve()
    if os.environ.get("HERACLIUS_HOME"):
        return Path(os.environ["HERACLIUS_HOME"]).resolve()
    legacy = Path(LEGACY_HOME).resolve()
    if _holds_deployments(legacy):
        return legacy
    return default_home()


def home_notice(home: str | Path | None = None) -> str | None:
    """A line for the operator when the old default home (./deployments) is in use."""
    if home or os.environ.get("HERACLIUS_HOME"):
        return None
    legacy = Path(LEGACY_HOME).resolve()
    if home_dir() == legacy:
        return (f"note: using deployments in {legacy} (the old default home, found in the current directory); "
                f"the default is now {default_home()}: move them there or set HERACLIUS_HOME")
    return None


def read_partitions(root: Path) -> list[list[str]]:
    """The region pairs cut by `fault partition` (state.json `partitions`, written by infra.testbed.faults
    whatever the provider), for readers that only have the directory (the monitor)."""
    cut = read_state(root)[0].get("partitions") or []
    return [list(p) for p in cut if isinstance(p, list) and len(p) == 2]


def read_state(root: Path) -> tuple[dict, str | None]:
    """state.json of the deployment at `root` and, when it is missing or corrupt, why ({} then)."""
    path = root / "state.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return {}, f"{path} is missing"
    except (OSError, ValueError) as e:
        return {}, f"{path} is unreadable ({e})"
    if not isinstance(doc, dict):
        return {}, f"{path} is not a JSON object"
    return doc, None


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise UsageError(f"deployment name {name!r} is not valid",
                         fix="use 1-40 characters of a-z, 0-9 and '-', starting with a letter or digit")
    return name


@dataclass(frozen=True)
class NodeInfo:
    """One node as the manifest and state.json describe it."""

    id: str
    cluster: str
    role: str
    index: int
    implementation: str
    region: str
    host: str
    ports: dict
    pid: int | None
    status: str
    command: list[str]

    @property
    def admin(self) -> tuple[str, int]:
        return self.host, self.ports["admin"]

    @property
    def admin_url(self) -> str:
        return f"http://{self.host}:{self.ports['admin']}"


class Deployment:
    """A deployment directory with its manifest and state. Mutate state via `set_node_state`."""

    def __init__(self, name: str, root: Path):
        self.name = name
        self.root = root
        self._seen: dict[Path, int] = {}
        self._manifest: dict = {}
        self._state: dict = {}
        self.refresh()

    def refresh(self) -> None:
        """Re-read manifest.json / state.json if another process (CLI, monitor) changed them. A
        manifest that is not valid JSON or breaks the schema is a UsageError with a fix (exit 2)."""
        for path, attr in ((self.manifest_path, "_manifest"), (self.state_path, "_state")):
            try:
                mtime = path.stat().st_mtime_ns
            except FileNotFoundError:
                continue
            if self._seen.get(path) != mtime:
                setattr(self, attr, self._read(path))
                self._seen[path] = mtime

    def _read(self, path: Path) -> dict:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            doc, problems = None, [f"not JSON ({e})"]
        else:
            problems = [] if path == self.state_path and isinstance(doc, dict) else (
                ["not a JSON object"] if not isinstance(doc, dict) else manifest_problems(doc))
        if problems:
            what = "state" if path == self.state_path else "manifest"
            raise UsageError(f"deployment {self.name!r}: {path} is corrupt: {problems[0]}",
                             fix=f"restore the {what} (fault byzantine keeps the previous manifest as "
                                 f"manifest.bak), or stop every node and remove the deployment with "
                                 f"`heraclius-ops destroy --name {self.name}` (destroy needs no manifest)")
        return doc

    @property
    def topology(self) -> topology.Topology:
        """The manifest as the frozen value the monitor polls (infra.model.topology)."""
        return topology.topology_of(self.manifest, self.root, self._seen.get(self.manifest_path, 0))

    @property
    def manifest(self) -> dict:
        self.refresh()
        return self._manifest

    @property
    def state(self) -> dict:
        self.refresh()
        return self._state

    @state.setter
    def state(self, value: dict) -> None:
        self._state = value

    # paths
    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    @property
    def state_path(self) -> Path:
        return self.root / "state.json"

    def keys_dir(self, node_id: str) -> Path:
        return self.root / "keys" / node_id

    def client_key(self, client: str) -> Path:
        return self.root / "keys" / "clients" / f"{client}.key"

    def data_dir(self, node_id: str) -> Path:
        return self.root / "data" / node_id

    def log_path(self, node_id: str) -> Path:
        return self.root / "logs" / f"{node_id}.log"

    # contents
    @property
    def provider(self) -> str:
        return self.state.get("provider", "local")

    @property
    def testbed(self) -> bool:
        return bool(self.manifest.get("testbed", False))

    @property
    def clusters(self) -> list[dict]:
        return self.manifest["clusters"]

    @property
    def nodes(self) -> list[NodeInfo]:
        out = []
        for c in self.manifest["clusters"]:
            for i, n in enumerate(c["nodes"]):
                st = self.state.get("nodes", {}).get(n["id"], {})
                out.append(NodeInfo(n["id"], c["id"], c["role"], i, n["implementation"], n["region"],
                                    n["host"], n["ports"], st.get("pid"),
                                    st.get("status", "unknown"), st.get("command", [])))
        return out

    def node(self, node_id: str) -> NodeInfo:
        for n in self.nodes:
            if n.id == node_id:
                return n
        known = ", ".join(n.id for n in self.nodes)
        raise UsageError(f"no node {node_id!r} in deployment {self.name!r}", fix=f"use one of: {known}")

    def cluster_nodes(self, cluster_id: str) -> list[NodeInfo]:
        nodes = [n for n in self.nodes if n.cluster == cluster_id]
        if not nodes:
            raise UsageError(f"no cluster {cluster_id!r} in deployment {self.name!r}")
        return nodes

    def set_node_state(self, node_id: str, **fields) -> None:
        self.state.setdefault("nodes", {}).setdefault(node_id, {}).update(fields)
        self.save_state()

    def save_state(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=2) + "\n")
        tmp.replace(self.state_path)
        self._seen[self.state_path] = self.state_path.stat().st_mtime_ns

    def reload(self) -> Deployment:
        return Deployment(self.name, self.root)


def deployment_root(name: str = DEFAULT_NAME, home: str | Path | None = None) -> Path:
    return home_dir(home) / check_name(name)


def load_deployment(name: str = DEFAULT_NAME, home: str | Path | None = None) -> Deployment:
    root = deployment_root(name, home)
    if not (root / "manifest.json").exists():
        if (root / "state.json").exists():
            raise UsageError(f"deployment {name!r} in {home_dir(home)} has no manifest.json",
                             fix=f"restore {root / 'manifest.json'}, or stop its nodes and remove it with "
                                 f"`heraclius-ops destroy --name {name}` (destroy needs no manifest)")
        existing = list_deployments(home)
        hint = f" (existing: {', '.join(existing)})" if existing else ""
        raise UsageError(f"unknown deployment {name!r} in {home_dir(home)}{hint}",
                         fix=f"create it with `heraclius-ops deploy --name {name}`, or pass --name/--home "
                             "(or set HERACLIUS_HOME) to pick another")
    return Deployment(name, root)


def list_deployments(home: str | Path | None = None) -> list[str]:
    h = home_dir(home)
    if not h.is_dir():
        return []
    return sorted(p.name for p in h.iterdir() if (p / "manifest.json").exists() or (p / "state.json").exists())
