"""What losing a whole region or a whole implementation would do to each cluster.

Computed from the manifest on top of the faults seen now (nodes down or accused), with the same
verdict rules as the live view (infra.model.verdict).
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.model.topology import Topology as Deployment
from infra.model.verdict import Assessment, assess


@dataclass(frozen=True)
class LossScenario:
    label: str  # a region name or an implementation name
    impacts: dict[str, Assessment]  # cluster id -> verdict after the loss


def loss_scenarios(deployment: Deployment, down: dict[str, set[str]],
                   accused: dict[str, set[str]]) -> list[LossScenario]:
    groups: list[tuple[str, set[str]]] = []
    for region in deployment.regions:
        groups.append((region, {n.id for n in deployment.nodes if n.region == region}))
    impls = deployment.implementations
    if len(impls) > 1:
        for impl in impls:
            groups.append((impl, {n.id for n in deployment.nodes if n.implementation == impl}))
    out = []
    for label, lost in groups:
        impacts = {}
        for cluster in deployment.clusters:
            ids = {n.id for n in cluster.nodes}
            impacts[cluster.id] = assess(
                cluster.n, down=(down.get(cluster.id, set()) | lost) & ids,
                byzantine=accused.get(cluster.id, set()),
            )
        out.append(LossScenario(label, impacts))
    return out
