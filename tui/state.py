"""Everything the monitor knows, updated from each snapshot; the widgets render from this."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from tui import events as ev
from tui.health import ClusterHealth, accused_nodes, cluster_health
from tui.history import History
from tui.loss import LossScenario, loss_scenarios
from tui.snapshot import Snapshot

MAX_EVENTS = 500


@dataclass
class MonitorState:
    stall_after_ms: int = 10_000
    snapshot: Snapshot | None = None
    clusters: dict[str, ClusterHealth] = field(default_factory=dict)
    losses: list[LossScenario] = field(default_factory=list)
    events: deque = field(default_factory=lambda: deque(maxlen=MAX_EVENTS))
    history: History = field(default_factory=History)
    polls: int = 0
    _seen_evidence: set = field(default_factory=set)

    def ingest(self, snap: Snapshot) -> list[ev.Event]:
        """Fold in one poll; returns the new events (also appended to `events`)."""
        prev, prev_health = self.snapshot, self.clusters
        self.history.update(snap)
        health: dict[str, ClusterHealth] = {}
        if snap.deployment is not None:
            accused = accused_nodes(snap)
            for cluster in snap.deployment.clusters:
                health[cluster.id] = cluster_health(
                    snap.deployment, snap, cluster,
                    self.history.still_for_ms(cluster.id, snap.taken_ms), self.stall_after_ms, accused)
            self.losses = loss_scenarios(
                snap.deployment,
                {cid: h.down for cid, h in health.items()},
                {cid: set(h.assessment.faulty) - h.down for cid, h in health.items()},  # up but faulty
            )
            self.clusters = health
        new = ev.diff(prev, prev_health if prev_health else None, snap, health, self._seen_evidence)
        new.sort(key=lambda e: e.time_ms)
        self.events.extend(new)
        self.snapshot = snap
        self.polls += 1
        return new

    @property
    def up_count(self) -> tuple[int, int]:
        rows = [r for h in self.clusters.values() for r in h.rows]
        return sum(1 for r in rows if r.up), len(rows)
