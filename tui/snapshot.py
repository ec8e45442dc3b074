"""What one poll of a deployment returns: per-node samples, plus the deployment as read then."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infra.model.topology import Topology as Deployment
from tui.metrics_text import Sample


@dataclass(frozen=True)
class NodeSample:
    """One node's answer to a poll. `error` is set when it could not be reached or answered
    unusably; `violation` when it answered usably but not as SPEC 15 says (it is then still up)."""

    node_id: str
    status: dict[str, Any] | None = None
    metrics: tuple[Sample, ...] = ()
    error: str | None = None
    violation: str | None = None

    @property
    def up(self) -> bool:
        return self.error is None and self.status is not None


@dataclass(frozen=True)
class Snapshot:
    taken_ms: int
    deployment: Deployment | None
    samples: dict[str, NodeSample] = field(default_factory=dict)
    error: str | None = None
    elapsed_ms: int = 0
    log_node: str | None = None
    log_tail: tuple[str, ...] = ()
    partitions: tuple[tuple[str, str], ...] = ()  # region pairs cut by `fault partition` (state.json)

    def sample(self, node_id: str) -> NodeSample:
        return self.samples.get(node_id) or NodeSample(node_id, error="not polled")
