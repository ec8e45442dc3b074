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


def region_layout(dep: Deployment) -> dict | None:
    """The region network layout that partitions and delays act on (infra.netns's shape): a netns
    deployment's, or a docker deployment's region bridges; None for loopback and remote machines."""
    if dep.state.get("netns"):
        return dep.state["netns"]
    return dep.state.get("docker", {}).get("layout")


def _container_states(dep: Deployment) -> dict[str, str] | None:
    """Docker's view of every node container, or None if the engine cannot be asked."""
    if dep.provider != "docker":
        return None
    from infra import docker_provider
    from infra.docker import engine
    from infra.errors import UsageError
    try:
        client = engine.connect(timeout=3)
    except UsageError:
        return None
    try:
        return docker_provider.container_states(dep, client)
    finally:
        client.close()


def _probe(dep: Deployment, n: NodeInfo, timeout: float, container: str | None = None) -> NodeStatus:
    local = dep.provider == "local"
    if local and process.is_paused(n.pid):
        return NodeStatus(n, "paused", error="process paused (SIGSTOP)")
    if local and not process.is_alive(n.pid, node_marker(dep, n.id)):
        return NodeStatus(n, "down", error=f"no process ({n.status})")
    if container == "paused":
        return NodeStatus(n, "paused", error="container paused (docker pause)")
    if container is not None and container != "running":
        return NodeStatus(n, "down", error=f"container {container}")
    try:
        doc, problems = get_status(*n.admin, timeout=timeout, node_id=n.id)
        return NodeStatus(n, "running" if local or container else "remote", doc, warnings=problems)
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
    containers = _container_states(dep) or {}
    with ThreadPoolExecutor(max_workers=min(16, len(nodes))) as pool:
        probes = list(pool.map(lambda n: _probe(dep, n, timeout, containers.get(n.id)), nodes))
    # evidence from any node counts: members of other clusters see a shard's tampered compact decisions
    accused_all = {e["node_id"] for p in probes if p.up for e in p.status["byzantine_evidence"]}
    clusters = []
    for c in dep.clusters:
        members = [p for p in probes if p.node.cluster == c["id"]]
        accused = accused_all & {p.node.id for p in members}
        cut = (region_layout(dep) or {}).get("partitions", [])
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


def network_summary(dep: Deployment) -> dict:
    """What the nodes' network really is (the `network` object of `status --json`): the mode, active
    partitions and one-way delays between regions; for docker also each region's Docker network."""
    layout = region_layout(dep) or {}
    mode = dep.state.get("network") or ("loopback" if dep.provider == "local" else dep.provider)
    doc = {"mode": mode, "partitions": layout.get("partitions", []), "delays_ms": layout.get("delays", {})}
    if mode == "docker":
        doc["regions"] = {name: {"docker_network": r["network"], "subnet": f"{layout['prefix']}.{r['index']}.0/24",
                                 "bridge": f"{r['veth']}a"} for name, r in layout["regions"].items()}
    return doc


def network_lines(doc: dict) -> list[str]:
    """`network_summary` as the lines `heraclius-ops status` prints."""
    cuts = ", ".join("/".join(p) for p in doc["partitions"]) or "none"
    delays = ", ".join(f"{k.replace('|', '/')} {v} ms" for k, v in doc["delays_ms"].items()) or "none"
    faults = f"partitions: {cuts}; one-way delays: {delays}"
    if doc["mode"] == "loopback":
        return ["network: loopback (127.0.<region>.x); no partitions or latency possible"]
    if doc["mode"] == "netns":
        return [f"network: netns, a namespace per region; {faults}"]
    if doc["mode"] == "docker":
        lines = [f"network: docker, a bridge network per region routed through the host; {faults}"]
        lines += [f"  region {name}: docker network {r['docker_network']} {r['subnet']} (bridge {r['bridge']})"
                  for name, r in doc["regions"].items()]
        return lines
    return [f"network: {doc['mode']} (nodes on remote machines; partitions and latency not emulated)"]
