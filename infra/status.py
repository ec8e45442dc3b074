"""Network status: read /status from every node and judge each cluster's fault tolerance.

Verdicts per cluster (n = 3f + 1, faults now = nodes down, paused, answering badly, accused in
Byzantine evidence, running testbed fault rules, or cut off by a partition; margin = f - faults now):
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
    warnings: list[str] = field(default_factory=list)  # status.schema.json violations

    @property
    def up(self) -> bool:
        return self.status is not None


@dataclass
class ClusterStatus:
    id: str
    role: str
    nodes: list[NodeStatus]
    accused: set[str] = field(default_factory=set)
    cut_off: set[str] = field(default_factory=set)  # on the minority side of a partition

    @property
    def n(self) -> int:
        return len(self.nodes)

    @property
    def f(self) -> int:
        return (self.n - 1) // 3

    @property
    def faulty(self) -> list[str]:
        ids = {s.node.id for s in self.nodes}
        return sorted({s.node.id for s in self.nodes if not s.up} | (self.accused & ids) | self.cut_off
                      | set(self.byzantine))

    @property
    def byzantine(self) -> list[str]:
        """Nodes running SPEC 16 testbed fault rules: faulty by construction."""
        return [s.node.id for s in self.nodes if s.up and s.status["testbed_faults"]]

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
        doc, problems = get_status(*n.admin, timeout=timeout, node_id=n.id)
        return NodeStatus(n, "running" if local else "remote", doc, warnings=problems)
    except RemoteError as e:
        return NodeStatus(n, "running", error=e.message)
    except OSError as e:
        return NodeStatus(n, "running", error=f"/status unreachable: {e}")


def region_components(regions: list[str], cut: list[list[str]]) -> list[set[str]]:
    """Groups of regions that can still reach each other, given the cut region pairs."""
    cut_pairs = {frozenset(p) for p in cut}
    comps: list[set[str]] = []
    for r in regions:
        joined = [c for c in comps if any(frozenset((r, o)) not in cut_pairs for o in c)]
        merged = {r}.union(*joined) if joined else {r}
        comps = [c for c in comps if c not in joined] + [merged]
    return comps


def cut_off_nodes(nodes: list[NodeInfo], regions: list[str], cut: list[list[str]]) -> set[str]:
    """Nodes outside the region group that holds most of the cluster's nodes."""
    if not cut:
        return set()
    comps = region_components(regions, cut)
    main = max(comps, key=lambda c: sum(1 for n in nodes if n.region in c))
    return {n.id for n in nodes if n.region not in main}


def collect_status(dep: Deployment, timeout: float = 2.0) -> list[ClusterStatus]:
    """Probe every node in parallel (each with `timeout`), grouped by cluster in manifest order."""
    nodes = dep.nodes
    with ThreadPoolExecutor(max_workers=min(16, len(nodes))) as pool:
        probes = list(pool.map(lambda n: _probe(dep, n, timeout), nodes))
    # evidence from any node counts: members of other clusters see a shard's tampered compact decisions
    accused_all = {e["node_id"] for p in probes if p.up for e in p.status["byzantine_evidence"]}
    clusters = []
    for c in dep.clusters:
        members = [p for p in probes if p.node.cluster == c["id"]]
        accused = accused_all & {p.node.id for p in members}
        cut = dep.state.get("netns", {}).get("partitions", [])
        regions = dep.manifest.get("regions") or sorted({p.node.region for p in members})
        cut_off = cut_off_nodes([p.node for p in members], regions, cut)
        clusters.append(ClusterStatus(c["id"], c["role"], members, accused, cut_off))
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
                          "in_view_change": st.get("in_view_change"), "error": s.error,
                          "schema_problems": s.warnings})
        out.append({"id": c.id, "role": c.role, "n": c.n, "f": c.f, "faults_now": c.faults_now,
                    "faulty": c.faulty, "margin": c.margin, "verdict": c.verdict, "height": c.height,
                    "leader": c.leader, "nodes": nodes})
    return {"clusters": out}
