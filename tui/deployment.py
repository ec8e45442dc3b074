"""Read a deployment directory: its manifest.json and the nodes' log files.

This is the monitor's only adapter to infra's on-disk layout (`<home>/<name>/manifest.json`,
`logs/<node>.log`); it uses nothing but the manifest format of wire_spec/manifest.schema.json.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from tui.errors import LocalError

IMPL_LETTERS = {"impl_a": "A", "impl_b": "B"}


@dataclass(frozen=True)
class NodeSpec:
    id: str
    cluster: str
    role: str
    implementation: str
    region: str
    host: str
    admin_port: int

    @property
    def impl_letter(self) -> str:
        return IMPL_LETTERS.get(self.implementation, self.implementation)


@dataclass(frozen=True)
class ClusterSpec:
    id: str
    role: str
    nodes: tuple[NodeSpec, ...]

    @property
    def n(self) -> int:
        return len(self.nodes)


@dataclass(frozen=True)
class Deployment:
    path: Path
    network_id: str
    testbed: bool
    regions: tuple[str, ...]
    clusters: tuple[ClusterSpec, ...]
    manifest_mtime_ns: int

    @property
    def nodes(self) -> list[NodeSpec]:
        return [node for cluster in self.clusters for node in cluster.nodes]

    @property
    def implementations(self) -> list[str]:
        return sorted({node.implementation for node in self.nodes})

    def cluster(self, cluster_id: str) -> ClusterSpec:
        for cluster in self.clusters:
            if cluster.id == cluster_id:
                return cluster
        raise LocalError(f"no cluster {cluster_id!r} in the manifest")

    def log_path(self, node_id: str) -> Path:
        return self.path / "logs" / f"{node_id}.log"


def manifest_path(deployment_dir: Path) -> Path:
    return Path(deployment_dir) / "manifest.json"


def load_deployment(deployment_dir: Path) -> Deployment:
    """Parse <deployment_dir>/manifest.json; LocalError names what is missing or wrong."""
    path = manifest_path(deployment_dir)
    try:
        mtime = os.stat(path).st_mtime_ns
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise LocalError(f"no manifest at {path}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LocalError(f"cannot read {path}: {exc}") from exc
    try:
        clusters = tuple(
            ClusterSpec(
                id=c["id"],
                role=c["role"],
                nodes=tuple(
                    NodeSpec(
                        id=n["id"],
                        cluster=c["id"],
                        role=c["role"],
                        implementation=n["implementation"],
                        region=n["region"],
                        host=n["host"],
                        admin_port=int(n["ports"]["admin"]),
                    )
                    for n in c["nodes"]
                ),
            )
            for c in doc["clusters"]
        )
        regions = tuple(doc.get("regions") or sorted({n.region for c in clusters for n in c.nodes}))
        return Deployment(
            path=Path(deployment_dir),
            network_id=str(doc["network_id"]),
            testbed=bool(doc.get("testbed", False)),
            regions=regions,
            clusters=clusters,
            manifest_mtime_ns=mtime,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise LocalError(f"invalid manifest {path}: missing or bad field {exc}") from exc


def tail_log(path: Path, lines: int = 20, max_bytes: int = 64 * 1024) -> list[str]:
    """Last `lines` lines of a log file (reads at most max_bytes from its end); [] if absent."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes and text:
        text = text[1:]  # the first line was cut by the seek
    return text[-lines:]


def format_log_line(line: str) -> str:
    """A JSON log line (SPEC section 4) as 'time level event msg extra=..'; other lines as is."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return line
    if not isinstance(rec, dict):
        return line
    ts = str(rec.get("ts", ""))
    ts = ts[11:23] if len(ts) >= 23 else ts
    extra = " ".join(
        f"{k}={v}" for k, v in rec.items() if k not in {"ts", "level", "node", "event", "msg"}
    )
    parts = [ts, str(rec.get("level", "")), str(rec.get("event", "")), str(rec.get("msg", "")), extra]
    return " ".join(p for p in parts if p)
