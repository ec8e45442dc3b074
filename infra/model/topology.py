"""The topology of a deployment as its manifest describes it: clusters, nodes, regions.

A frozen value (hashable, comparable), so the monitor can keep the one it polled and tell when the
manifest changed. `infra.model.deployment.Deployment.topology` gives the same value for a deployment
directory, and the monitor reads it with `load_topology(dir)`: one model of a deployment for the CLI
and the monitor. It needs only the manifest format of wire_spec/manifest.schema.json, and accepts a
manifest that is readable even when not fully valid (the monitor shows what it can).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from infra.errors import UsageError
from infra.model.implementations import IMPLEMENTATIONS

IMPL_LETTERS = {i.name: i.letter.upper() for i in IMPLEMENTATIONS.values()}
# one badge colour per implementation, for its letter in the monitor and its name in `status`
# (backgrounds of distinct hues, none of them the red/yellow/green of the health states' text)
IMPL_STYLES = {"impl_a": "bold #000000 on #58d1eb", "impl_b": "bold #000000 on #c792ea",
               "impl_c": "bold #000000 on #9ccc65"}


def impl_style(implementation: str) -> str:
    """Rich style of an implementation's badge ('' for one the registry does not know)."""
    return IMPL_STYLES.get(implementation, "")


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

    @property
    def impl_style(self) -> str:
        return impl_style(self.implementation)


@dataclass(frozen=True)
class ClusterSpec:
    id: str
    role: str
    nodes: tuple[NodeSpec, ...]

    @property
    def n(self) -> int:
        return len(self.nodes)


@dataclass(frozen=True)
class Topology:
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
        raise UsageError(f"no cluster {cluster_id!r} in the manifest")

    def log_path(self, node_id: str) -> Path:
        return self.path / "logs" / f"{node_id}.log"


def manifest_path(deployment_dir: Path) -> Path:
    return Path(deployment_dir) / "manifest.json"


def load_topology(deployment_dir: Path) -> Topology:
    """Parse <deployment_dir>/manifest.json; UsageError names what is missing or wrong."""
    path = manifest_path(deployment_dir)
    try:
        mtime = os.stat(path).st_mtime_ns
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"no manifest at {path}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}", fix=CORRUPT_FIX) from exc
    return topology_of(doc, Path(deployment_dir), mtime)


CORRUPT_FIX = ("restore manifest.json (fault byzantine keeps the previous one as manifest.bak), or stop "
               "and remove the deployment with `heraclius-ops destroy` (it needs no manifest)")


def topology_of(doc: object, deployment_dir: Path, mtime: int = 0) -> Topology:
    """The topology of a parsed manifest document; UsageError names a missing or bad field."""
    path = manifest_path(deployment_dir)
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
        return Topology(
            path=Path(deployment_dir),
            network_id=str(doc["network_id"]),
            testbed=bool(doc.get("testbed", False)),
            regions=regions,
            clusters=clusters,
            manifest_mtime_ns=mtime,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"invalid manifest {path}: missing or bad field {exc}", fix=CORRUPT_FIX) from exc
