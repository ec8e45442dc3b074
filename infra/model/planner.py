"""Placement planner: spreads each cluster's nodes over regions and implementations, and reports
what losing a whole region or a whole implementation does to each cluster."""

from __future__ import annotations

from dataclasses import dataclass, field

from infra.errors import UsageError
from infra.model.implementations import IMPLEMENTATIONS as KNOWN

REGION_NAMES = ["us-east", "eu-west", "ap-south", "sa-east", "us-west", "eu-central", "ap-east", "af-south"]
IMPLEMENTATIONS = {i.letter: i.name for i in KNOWN.values()}


@dataclass(frozen=True)
class NodePlan:
    id: str
    cluster: str
    role: str
    index: int
    implementation: str
    region: str


@dataclass
class ClusterPlan:
    id: str
    role: str
    nodes: list[NodePlan] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.nodes)

    @property
    def f(self) -> int:
        return (self.n - 1) // 3


@dataclass
class Plan:
    regions: list[str]
    clusters: list[ClusterPlan]
    timeouts_ms: dict[str, int] = field(default_factory=dict)  # overrides of the manifest defaults

    @property
    def nodes(self) -> list[NodePlan]:
        return [n for c in self.clusters for n in c.nodes]


@dataclass
class ClusterImpact:
    cluster: str
    lost: int
    n: int
    f: int

    @property
    def margin_after(self) -> int:
        return self.f - self.lost

    @property
    def verdict(self) -> str:
        if self.lost == 0:
            return "unaffected"
        return "stops" if self.lost > self.f else "degraded"


@dataclass
class LossReport:
    kind: str  # "region" or "implementation"
    name: str
    impacts: list[ClusterImpact]

    def clusters(self, verdict: str) -> list[ClusterImpact]:
        return [i for i in self.impacts if i.verdict == verdict]

    def line(self) -> str:
        """e.g. 'losing eu-west stops clusters c0, s1 (2 of 4 nodes there); degrades s0 (1 of 4 nodes
        there, margin 0 left)'."""
        parts = []
        for verdict in ("stops", "degraded"):
            groups: dict[tuple[int, int, int], list[str]] = {}
            for i in self.clusters(verdict):
                groups.setdefault((i.lost, i.n, i.margin_after), []).append(i.cluster)
            for (lost, n, margin), ids in sorted(groups.items(), key=lambda kv: kv[1]):
                word = "stops" if verdict == "stops" else "degrades"
                noun = "clusters" if len(ids) > 1 else "cluster"
                tail = "" if verdict == "stops" else f", margin {margin} left"
                parts.append(f"{word} {noun} {', '.join(ids)} ({lost} of {n} nodes there{tail})")
        return f"losing {self.name} " + ("; ".join(parts) if parts else "affects no cluster")

    def byzantine_line(self) -> str:
        """What a whole implementation turning Byzantine does (equivocating, or one deterministic wrong
        result on all its nodes): with k <= f of a cluster's nodes it is tolerated; with f < k < 2f+1
        the cluster may fork (two quorums meet only in its nodes) and a shared wrong result stalls it;
        with k >= 2f+1 it decides alone."""
        worst = {"decides alone": [], "may fork": [], "tolerated": []}
        for i in self.impacts:
            if i.lost == 0:
                continue
            q = 2 * i.f + 1
            key = "tolerated" if i.lost <= i.f else ("decides alone" if i.lost >= q else "may fork")
            worst[key].append(f"{i.cluster} ({i.lost} of {i.n})")
        parts = [f"{k} in {', '.join(v)}" for k, v in worst.items() if v]
        return f"{self.name} turning Byzantine: " + ("; ".join(parts) if parts else "affects no cluster")

    def survives(self) -> bool:
        return all(i.lost <= i.f for i in self.impacts)


def check_cluster_size(n: int) -> int:
    """Return f for a valid cluster size n = 3f + 1 (f >= 1), else raise a UsageError."""
    if n < 4 or (n - 1) % 3:
        below = n - (n - 1) % 3
        hint = f"{below} or {below + 3}" if below >= 4 else "4"
        raise UsageError(f"--nodes-per-cluster {n} is not 3f+1 for some f >= 1",
                         fix=f"use 4, 7, 10, ... (nearest: --nodes-per-cluster {hint})")
    return (n - 1) // 3


def parse_mix(mix: str, n: int) -> list[str]:
    """Implementation of each member index. 'alternate' (default): a, b, a, b, ...; 'diverse': every
    known implementation in turn (a, b, c, a, ...: at most ceil(n / 3) nodes of one implementation);
    'a' / 'b' / 'c': all one implementation; or an explicit pattern like 'aabc' (cycled if shorter than n)."""
    mix = (mix or "alternate").strip().lower()
    letters = "".join(IMPLEMENTATIONS)
    if mix in ("alternate", "mixed", "ab"):
        pattern = "ab"
    elif mix == "diverse":
        pattern = letters
    elif mix and all(c in IMPLEMENTATIONS for c in mix):
        pattern = mix
    else:
        raise UsageError(f"--mix {mix!r} is not understood",
                         fix=f"use 'alternate', 'diverse', one of {', '.join(letters)}, or a pattern like 'aabc'")
    if len(pattern) > n:
        raise UsageError(f"--mix pattern {mix!r} is longer than the cluster size {n}")
    return [IMPLEMENTATIONS[pattern[i % len(pattern)]] for i in range(n)]


def region_names(regions: int | list[str]) -> list[str]:
    if isinstance(regions, int):
        if not 1 <= regions <= len(REGION_NAMES):
            raise UsageError(f"--regions {regions} is out of range", fix=f"use 1 to {len(REGION_NAMES)}")
        return REGION_NAMES[:regions]
    return list(regions)


def make_plan(regions: int | list[str] = 3, coordinators: int = 1, shards: int = 1,
              nodes_per_cluster: int = 4, mix: str = "alternate") -> Plan:
    """Place nodes: cluster k's member i goes to region (i + k) mod R, so regions get as equal a share
    as possible and the clusters' extra nodes land in different regions."""
    names = region_names(regions)
    check_cluster_size(nodes_per_cluster)
    if coordinators < 1 or shards < 1:
        raise UsageError("a network needs at least one coordinator and one shard cluster",
                         fix="use --coordinators 1 --shards 1 or more")
    impls = parse_mix(mix, nodes_per_cluster)
    specs = [(f"c{i}", "coordinator") for i in range(coordinators)] + [(f"s{i}", "shard") for i in range(shards)]
    clusters = []
    for k, (cid, role) in enumerate(specs):
        c = ClusterPlan(cid, role)
        for i in range(nodes_per_cluster):
            c.nodes.append(NodePlan(f"{cid}-n{i}", cid, role, i, impls[i], names[(i + k) % len(names)]))
        clusters.append(c)
    return Plan(names, clusters)


def loss_reports(plan: Plan) -> list[LossReport]:
    """One report per region and per implementation used in the plan."""
    reports = []
    impls = sorted({n.implementation for n in plan.nodes})
    for kind, names, attr in (("region", plan.regions, "region"), ("implementation", impls, "implementation")):
        for name in names:
            impacts = [
                ClusterImpact(c.id, sum(1 for n in c.nodes if getattr(n, attr) == name), c.n, c.f)
                for c in plan.clusters
            ]
            reports.append(LossReport(kind, name, impacts))
    return reports


def plan_from_manifest(m: dict) -> Plan:
    """The placement a manifest describes, for loss reports on an existing deployment."""
    clusters = []
    for c in m["clusters"]:
        cp = ClusterPlan(c["id"], c["role"])
        for i, n in enumerate(c["nodes"]):
            cp.nodes.append(NodePlan(n["id"], c["id"], c["role"], i, n["implementation"], n["region"]))
        clusters.append(cp)
    regions = list(m.get("regions") or dict.fromkeys(n.region for c in clusters for n in c.nodes))
    return Plan(regions, clusters)


def region_tolerance_problems(plan: Plan) -> list[str]:
    """Why the placement cannot survive the loss of any one region (empty when it can): a cluster with
    more than f of its nodes in one region stops when that region goes. 3f+1 nodes need at least
    ceil((3f+1)/f) regions for that (4 regions for 4-node clusters); the default `--regions 3` puts 2
    nodes of every 4-node cluster in one region."""
    out = []
    for r in loss_reports(plan):
        if r.kind == "region" and not r.survives():
            out.append(f"{r.line()}: the placement cannot survive the loss of region {r.name}")
    return out
