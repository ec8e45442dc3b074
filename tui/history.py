"""Progress and rates across polls: when each cluster last advanced, decisions per second,
client answers and errors per second, kept as short series for sparklines."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from tui.health import counter
from tui.snapshot import Snapshot

SERIES_LEN = 60


@dataclass
class ClusterProgress:
    height: int
    advanced_ms: int


@dataclass
class History:
    progress: dict[str, ClusterProgress] = field(default_factory=dict)
    decision_rate: dict[str, deque] = field(default_factory=dict)
    ops_rate: deque = field(default_factory=lambda: deque(maxlen=SERIES_LEN))
    error_rate: deque = field(default_factory=lambda: deque(maxlen=SERIES_LEN))
    _prev: Snapshot | None = None

    def still_for_ms(self, cluster_id: str, now_ms: int) -> int:
        p = self.progress.get(cluster_id)
        return max(0, now_ms - p.advanced_ms) if p else 0

    def update(self, snap: Snapshot) -> None:
        """Record a snapshot: heights that advanced, then rates since the previous snapshot."""
        if snap.deployment is None:
            return
        now = snap.taken_ms
        for cluster in snap.deployment.clusters:
            ups = [snap.sample(n.id) for n in cluster.nodes if snap.sample(n.id).up]
            height = max((int(s.status["height"]) for s in ups), default=0)
            last_decision = max((int(s.status.get("last_decision_ms", 0)) for s in ups), default=0)
            p = self.progress.get(cluster.id)
            if p is None:
                start = min(now, last_decision) if last_decision else now
                self.progress[cluster.id] = ClusterProgress(height, start)
            elif height > p.height:
                self.progress[cluster.id] = ClusterProgress(height, now)
        prev = self._prev
        if prev is not None and prev.deployment is not None and now > prev.taken_ms:
            dt = (now - prev.taken_ms) / 1000
            for cluster in snap.deployment.clusters:
                old = max((int(prev.sample(n.id).status["height"]) for n in cluster.nodes
                           if prev.sample(n.id).up), default=0)
                new = max((int(snap.sample(n.id).status["height"]) for n in cluster.nodes
                           if snap.sample(n.id).up), default=0)
                series = self.decision_rate.setdefault(cluster.id, deque(maxlen=SERIES_LEN))
                series.append(max(0, new - old) / dt)
            replies = errors = 0
            for node in snap.deployment.nodes:
                if node.role != "coordinator":
                    continue
                a, b = prev.sample(node.id), snap.sample(node.id)
                if a.up and b.up:  # a restarted node's counters start again from 0: clip at 0
                    replies += max(0, counter(b, "client_replies") - counter(a, "client_replies"))
                    errors += max(0, counter(b, "client_errors") - counter(a, "client_errors"))
            self.ops_rate.append(replies / dt)
            self.error_rate.append(errors / dt)
        self._prev = snap

    def rate(self, cluster_id: str) -> float:
        series = self.decision_rate.get(cluster_id)
        return series[-1] if series else 0.0

    @property
    def ops_per_s(self) -> float:
        return self.ops_rate[-1] if self.ops_rate else 0.0

    @property
    def errors_per_s(self) -> float:
        return self.error_rate[-1] if self.error_rate else 0.0
