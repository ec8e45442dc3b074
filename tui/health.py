"""Turn one snapshot into per-cluster health: node rows, faults, pending work, verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.model.topology import ClusterSpec, NodeSpec
from infra.model.topology import Topology as Deployment
from infra.model.verdict import Assessment, assess, cut_off_nodes
from tui import metrics_text
from tui.snapshot import NodeSample, Snapshot

# /metrics name -> /status counters key, for the counters the monitor uses.
COUNTERS = {
    "decisions": "heraclius_decisions_total",
    "view_changes": "heraclius_view_changes_total",
    "client_requests": "heraclius_client_requests_total",
    "client_replies": "heraclius_client_replies_total",
    "client_errors": "heraclius_client_errors_total",
}


def counter(sample: NodeSample, key: str) -> int:
    """A node counter from /metrics when served, else from /status counters; 0 when unknown."""
    if sample.metrics:
        value = metrics_text.total(sample.metrics, COUNTERS[key])
        if value is not None:
            return int(value)
    if sample.status:
        return int(sample.status.get("counters", {}).get(key, 0))
    return 0


def rejected(sample: NodeSample) -> dict[str, int]:
    if sample.metrics:
        by = metrics_text.by_label(sample.metrics, "heraclius_rejected_total", "reason")
        if by:
            return {k: int(v) for k, v in by.items()}
    if sample.status:
        return {k: int(v) for k, v in sample.status.get("rejected", {}).items()}
    return {}


@dataclass(frozen=True)
class NodeRow:
    spec: NodeSpec
    up: bool
    error: str | None
    accused: bool
    leader: bool
    view: int | None
    height: int | None
    decision_age_ms: int | None
    links_up: int  # outbound links to members of its own cluster
    links_total: int
    xlinks_up: int  # outbound links to nodes of other clusters (queue pulls)
    xlinks_total: int
    in_view_change: bool
    status: dict[str, Any] | None
    violation: str | None = None


@dataclass(frozen=True)
class ClusterHealth:
    spec: ClusterSpec
    rows: tuple[NodeRow, ...]
    assessment: Assessment
    height: int
    view: int
    leader: str
    pending: tuple[str, ...]
    rejected: dict[str, int]
    view_changes: int

    @property
    def down(self) -> set[str]:
        return {r.spec.id for r in self.rows if not r.up}

    @property
    def accused(self) -> set[str]:
        return {r.spec.id for r in self.rows if r.accused}


def accused_nodes(snapshot: Snapshot) -> set[str]:
    """Nodes named in any Byzantine evidence record served by any node."""
    out: set[str] = set()
    for sample in snapshot.samples.values():
        if sample.up:
            out.update(str(ev.get("node_id")) for ev in sample.status.get("byzantine_evidence", []))
    return out


def node_row(spec: NodeSpec, sample: NodeSample, now_ms: int, accused: set[str]) -> NodeRow:
    if not sample.up:
        return NodeRow(spec, False, sample.error, spec.id in accused, False, None, None, None, 0, 0, 0, 0,
                       False, None)
    st = sample.status
    last = int(st.get("last_decision_ms", 0))
    own = [p for p in st.get("peers", []) if p.get("cluster_id", spec.cluster) == spec.cluster]
    other = [p for p in st.get("peers", []) if p.get("cluster_id", spec.cluster) != spec.cluster]
    return NodeRow(
        spec=spec, up=True, error=None, accused=spec.id in accused,
        leader=st.get("leader") == spec.id, view=int(st.get("view", 0)), height=int(st.get("height", 0)),
        decision_age_ms=max(0, now_ms - last) if last else None,
        links_up=sum(1 for p in own if p.get("connected")), links_total=len(own),
        xlinks_up=sum(1 for p in other if p.get("connected")), xlinks_total=len(other),
        in_view_change=bool(st.get("in_view_change")), status=st, violation=sample.violation,
    )


def queue_backlog(deployment: Deployment, snapshot: Snapshot, cluster: ClusterSpec) -> list[str]:
    """Other-role clusters that have emitted more leaves for `cluster` than it has taken in."""
    def best(c: ClusterSpec, field: str, key: str) -> int:
        vals = [int(snapshot.sample(n.id).status.get("queues", {}).get(field, {}).get(key, 1))
                for n in c.nodes if snapshot.sample(n.id).up]
        return max(vals, default=1)

    out = []
    for other in deployment.clusters:
        if other.role == cluster.role:
            continue
        waiting = best(other, "next_out", cluster.id) - best(cluster, "next_in", other.id)
        if waiting > 0:
            out.append(f"{waiting} queued from {other.id}")
    return out


def pools(rows: list[NodeRow]) -> list[str]:
    """Work waiting in the members' pools (SPEC 15 `pending`), largest over the up members."""
    out = []
    for key, word in (("requests", "requests"), ("remote", "remote")):
        size = max((int(r.status.get("pending", {}).get(key, 0)) for r in rows if r.status), default=0)
        if size > 0:
            out.append(f"{size} {word} pooled")
    return out


def cluster_health(deployment: Deployment, snapshot: Snapshot, cluster: ClusterSpec,
                   still_for_ms: int, stall_after_ms: int, accused: set[str]) -> ClusterHealth:
    rows = tuple(node_row(n, snapshot.sample(n.id), snapshot.taken_ms, accused) for n in cluster.nodes)
    up_rows = [r for r in rows if r.up]
    pending = pools(up_rows) + queue_backlog(deployment, snapshot, cluster)
    if any(r.in_view_change for r in up_rows):
        pending.append("a view change")
    cut_off = cut_off_nodes({n.id: n.region for n in cluster.nodes}, deployment.regions, snapshot.partitions)
    result = assess(
        cluster.n,
        down=[r.spec.id for r in rows if not r.up],
        byzantine=[r.spec.id for r in rows if r.accused],
        testbed_rules=[r.spec.id for r in up_rows if r.status and r.status.get("testbed_faults")],
        cut_off=cut_off,
        in_view_change=any(r.in_view_change for r in up_rows),
        pending_work=pending, still_for_ms=still_for_ms, stall_after_ms=stall_after_ms,
    )
    top = max(up_rows, key=lambda r: (r.view or 0, r.height or 0), default=None)
    totals: dict[str, int] = {}
    for n in cluster.nodes:
        for reason, count in rejected(snapshot.sample(n.id)).items():
            if count > 0:  # /metrics exports every reason, zeros included
                totals[reason] = totals.get(reason, 0) + count
    return ClusterHealth(
        spec=cluster, rows=rows, assessment=result,
        height=max((r.height or 0 for r in up_rows), default=0),
        view=top.view if top and top.view is not None else 0,
        leader=str(top.status.get("leader", "")) if top and top.status else "",
        pending=tuple(pending), rejected=totals,
        view_changes=max((counter(snapshot.sample(n.id), "view_changes") for n in cluster.nodes
                          if snapshot.sample(n.id).up), default=0),
    )
