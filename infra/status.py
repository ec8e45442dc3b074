"""Network status: read /status from every node and judge each cluster's fault tolerance.

Verdicts per cluster (n = 3f + 1, faults now = nodes down, paused, answering badly or accused in
Byzantine evidence, margin = f - faults now):
  healthy   no fault, no view change in progress
  degraded  some fault or view change, margin still > 0
  at-risk   margin 0: one more fault stops the cluster
  stalled   fewer than 2f + 1 nodes usable: no progress possible
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from infra import process
from infra.admin import get_status
from infra.deployment import Deployment, NodeInfo
from infra.errors import RemoteError
from infra.local import node_marker


@dataclass
class NodeStatus:
    node: NodeInfo
    process: str  # running / paused / down / remote
    status: dict | None = None
    error: str | None = None

    @property
    def up(self) -> bool:
        return self.status is not None


@dataclass
class ClusterStatus:
    id: str
    role: str
    nodes: list[NodeStatus]
    accused: set[str] = field(default_factory=set)

    @property
    def n(self) -> int:
        return len(self.nodes)

    @property
    def f(self) -> int:
        return (self.n - 1) // 3

    @property
    def faulty(self) -> list[str]:
        return sorted({s.node.id for s in self.nodes if not s.up} | (self.accused & {s.node.id for s in self.nodes}))

    @property
    def faults_now(self) -> int:
        return len(self.faulty)

    @property
    def margin(self) -> int:
        return self.f - self.faults_now

    @property
    def height(self) -> int:
        return max((s.status["height"] for s in self.nodes if s.up), default=0)

    @property
    def leader(self) -> str | None:
        views = [(s.status["view"], s.status["leader"]) for s in self.nodes if s.up]
        return max(views)[1] if views else None

    @property
    def verdict(self) -> str:
        if self.n - self.faults_now < 2 * self.f + 1:
            return "stalled"
        if self.margin == 0:
            return "at-risk"
        if self.faults_now or any(s.status["in_view_change"] for s in self.nodes if s.up):
            return "degraded"
        return "healthy"


def _probe(dep: Deployment, n: NodeInfo, timeout: float) -> NodeStatus:
    local = dep.provider == "local"
    if local and process.is_paused(n.pid):
        return NodeStatus(n, "paused", error="process paused (SIGSTOP)")
    if local and not process.is_alive(n.pid, node_marker(dep, n.id)):
        return NodeStatus(n, "down", error=f"no process ({n.status})")
    try:
        return NodeStatus(n, "running" if local else "remote", get_status(*n.admin, timeout=timeout, node_id=n.id))
    except RemoteError as e:
        return NodeStatus(n, "running", error=e.message)
    except OSError as e:
        return NodeStatus(n, "running", error=f"/status unreachable: {e}")


def collect_status(dep: Deployment, timeout: float = 2.0) -> list[ClusterStatus]:
    """Probe every node in parallel (each with `timeout`), grouped by cluster in manifest order."""
    nodes = dep.nodes
    with ThreadPoolExecutor(max_workers=min(16, len(nodes))) as pool:
        probes = list(pool.map(lambda n: _probe(dep, n, timeout), nodes))
    clusters = []
    for c in dep.clusters:
        members = [p for p in probes if p.node.cluster == c["id"]]
        accused = {e["node_id"] for p in members if p.up for e in p.status["byzantine_evidence"]}
        clusters.append(ClusterStatus(c["id"], c["role"], members, accused))
    return clusters


def status_document(clusters: list[ClusterStatus]) -> dict:
    """JSON-ready summary (what `heraclius-ops status --json` prints)."""
    out = []
    for c in clusters:
        nodes = []
        for s in c.nodes:
            st = s.status or {}
            nodes.append({"id": s.node.id, "implementation": s.node.implementation, "region": s.node.region,
                          "address": f"{s.node.host}:{s.node.ports['peer']}", "up": s.up, "process": s.process,
                          "view": st.get("view"), "leader": st.get("leader"), "height": st.get("height"),
                          "in_view_change": st.get("in_view_change"), "error": s.error})
        out.append({"id": c.id, "role": c.role, "n": c.n, "f": c.f, "faults_now": c.faults_now,
                    "faulty": c.faulty, "margin": c.margin, "verdict": c.verdict, "height": c.height,
                    "leader": c.leader, "nodes": nodes})
    return {"clusters": out}
