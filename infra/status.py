"""Network status: read /status from every node and judge each cluster with the one verdict rule
(infra.model.verdict: healthy, degraded, at-risk, stalled; the monitor applies the same).

faults now = nodes down, paused, answering badly, accused in Byzantine evidence, running testbed
fault rules, or cut off by a partition; margin = f - faults now. The provider says what runs (a
local process, a container, a remote machine) before /status is asked.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from infra import providers
from infra.errors import RemoteError
from infra.model.deployment import Deployment, NodeInfo
from infra.model.verdict import Assessment, Verdict, assess, cut_off_nodes
from infra.nodes.admin import get_status


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
    def byzantine(self) -> list[str]:
        """Nodes running SPEC 16 testbed fault rules: faulty by construction."""
        return [s.node.id for s in self.nodes if s.up and s.status["testbed_faults"]]

    @property
    def assessment(self) -> Assessment:
        ids = {s.node.id for s in self.nodes}
        return assess(self.n, down=[s.node.id for s in self.nodes if not s.up], byzantine=self.accused & ids,
                      testbed_rules=self.byzantine, cut_off=self.cut_off & ids,
                      in_view_change=any(s.status["in_view_change"] for s in self.nodes if s.up))

    @property
    def faulty(self) -> list[str]:
        return list(self.assessment.faulty)

    @property
    def faults_now(self) -> int:
        return self.assessment.faults

    @property
    def margin(self) -> int:
        return self.assessment.margin

    @property
    def height(self) -> int:
        return max((s.status["height"] for s in self.nodes if s.up), default=0)

    @property
    def leader(self) -> str | None:
        views = [(s.status["view"], s.status["leader"]) for s in self.nodes if s.up]
        return max(views)[1] if views else None

    @property
    def verdict(self) -> str:
        return self.assessment.verdict.word

    @property
    def why(self) -> str:
        return self.assessment.why


def region_layout(dep: Deployment) -> dict | None:
    """The region network layout that partitions and delays act on (infra.testbed.netns's shape)."""
    return providers.for_deployment(dep).region_layout(dep)


def _probe(dep: Deployment, n: NodeInfo, timeout: float, state: str) -> NodeStatus:
    if state == "paused":
        return NodeStatus(n, "paused", error=f"paused ({n.status})")
    if state == "down":
        return NodeStatus(n, "down", error=f"not running ({n.status})")
    try:
        doc, problems = get_status(*n.admin, timeout=timeout, node_id=n.id)
        return NodeStatus(n, state, doc, warnings=problems)
    except RemoteError as e:
        return NodeStatus(n, state, error=e.message)
    except OSError as e:
        return NodeStatus(n, state, error=f"/status unreachable: {e}")


def collect_status(dep: Deployment, timeout: float = 2.0) -> list[ClusterStatus]:
    """Probe every node in parallel (each with `timeout`), grouped by cluster in manifest order."""
    nodes = dep.nodes
    states = providers.for_deployment(dep).node_states(dep)
    with ThreadPoolExecutor(max_workers=min(16, len(nodes))) as pool:
        probes = list(pool.map(lambda n: _probe(dep, n, timeout, states.get(n.id, "remote")), nodes))
    # evidence from any node counts: members of other clusters see a shard's tampered compact decisions
    accused_all = {e["node_id"] for p in probes if p.up for e in p.status["byzantine_evidence"]}
    clusters = []
    for c in dep.clusters:
        members = [p for p in probes if p.node.cluster == c["id"]]
        accused = accused_all & {p.node.id for p in members}
        cut = (region_layout(dep) or {}).get("partitions", [])
        regions = dep.manifest.get("regions") or sorted({p.node.region for p in members})
        cut_off = cut_off_nodes({p.node.id: p.node.region for p in members}, regions, cut)
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
                    "leader": c.leader, "why": c.why, "nodes": nodes})
    return {"clusters": out, "verdict": worst_verdict(clusters)}


SEVERITY = [Verdict.HEALTHY, Verdict.DEGRADED, Verdict.AT_RISK, Verdict.STALLED]
EXIT_CODES = {Verdict.HEALTHY: 0, Verdict.DEGRADED: 3, Verdict.AT_RISK: 3, Verdict.STALLED: 4}


def worst_verdict(clusters: list[ClusterStatus]) -> str:
    """The verdict of the worst cluster (healthy when there is none)."""
    worst = max((Verdict.of(c.verdict) for c in clusters), key=SEVERITY.index, default=Verdict.HEALTHY)
    return worst.word


def exit_code(clusters: list[ClusterStatus]) -> int:
    """`heraclius-ops status` as a health gate: 0 healthy, 3 degraded or at-risk, 4 stalled."""
    return EXIT_CODES[Verdict.of(worst_verdict(clusters))]


def network_summary(dep: Deployment) -> dict:
    """What the nodes' network really is (the `network` object of `status --json`): the mode, active
    partitions and one-way delays between regions; for docker also each region's Docker network."""
    layout = region_layout(dep) or {}
    mode = dep.state.get("network") or dep.provider  # every provider records its network mode
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
