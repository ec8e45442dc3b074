"""Cluster verdicts: the one rule `heraclius-ops status` and the monitor both apply.

A cluster has n = 3f + 1 nodes. A fault is a node that is down (no process, paused, unreachable or
answering `/status` unusably), or up but not trustworthy: named in Byzantine evidence, running SPEC 16
testbed fault rules, or cut off from the cluster's main side by a partition. margin = f - faults.

  healthy   no fault and no view change in progress
  degraded  faults or a view change in progress, margin still above 0 (with no fault: only a view change)
  at-risk   margin 0: one more fault stops the cluster (also any cluster with f = 0)
  stalled   fewer than 2f + 1 nodes up, more than f faults, or (the monitor's stall timer) no new
            decision for `stall_after_ms` while work is pending

The machine spelling is the word (`at-risk` in JSON, the CLI and the monitor); `label` adds a symbol
so that colour is never the only carrier.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    HEALTHY = ("healthy", "✔", "green")
    DEGRADED = ("degraded", "◐", "yellow")
    AT_RISK = ("at-risk", "▲", "dark_orange")
    STALLED = ("stalled", "✖", "red")

    def __init__(self, word: str, symbol: str, colour: str) -> None:
        self.word = word
        self.symbol = symbol
        self.colour = colour

    @property
    def label(self) -> str:
        return f"{self.symbol} {self.word}"

    @classmethod
    def of(cls, word: str) -> Verdict:
        for v in cls:
            if v.word == word:
                return v
        raise ValueError(f"no verdict {word!r}")


@dataclass(frozen=True)
class Assessment:
    verdict: Verdict
    n: int
    f: int
    up: int
    faults: int
    reasons: tuple[str, ...]
    faulty: tuple[str, ...] = ()

    @property
    def margin(self) -> int:
        """Further faults the cluster can absorb and still make progress (negative: over budget)."""
        return self.f - self.faults

    @property
    def why(self) -> str:
        return "; ".join(self.reasons)


def faults_tolerated(n: int) -> int:
    return max(0, (n - 1) // 3)


def assess(
    n: int,
    down: Collection[str],
    byzantine: Collection[str] = (),
    testbed_rules: Collection[str] = (),
    cut_off: Collection[str] = (),
    in_view_change: bool = False,
    pending_work: Sequence[str] = (),
    still_for_ms: int = 0,
    stall_after_ms: int = 10_000,
) -> Assessment:
    """Judge one cluster.

    down: nodes down or unreachable; byzantine: nodes accused by evidence (may be up); testbed_rules:
    nodes running SPEC 16 rules; cut_off: nodes on the minority side of a partition; in_view_change:
    some up member is changing view; pending_work / still_for_ms: the monitor's stall timer (work
    waiting on the cluster, and how long its height has not advanced); the CLI leaves them empty.
    """
    f = faults_tolerated(n)
    quorum = 2 * f + 1
    down_set = set(down)
    faulty = down_set | set(byzantine) | set(testbed_rules) | set(cut_off)
    up = n - len(down_set)
    faults = len(faulty)
    reasons: list[str] = []
    for ids, what in ((down_set, f"{len(down_set)} down"), (set(byzantine), "Byzantine evidence against"),
                      (set(testbed_rules), "testbed fault rules on"), (set(cut_off), "partitioned off")):
        if ids:
            sep = ": " if what.endswith("down") else " "
            reasons.append(f"{what}{sep}{', '.join(sorted(ids))}")

    if up < quorum:
        reasons.insert(0, f"{up} of {n} up, quorum needs {quorum}")
        verdict = Verdict.STALLED
    elif faults > f:
        reasons.insert(0, f"{faults} faults exceed f={f}")
        verdict = Verdict.STALLED
    elif pending_work and still_for_ms >= stall_after_ms:
        reasons.insert(0, f"no decision for {still_for_ms / 1000:.0f}s with {', '.join(pending_work)}")
        verdict = Verdict.STALLED
    elif f == 0:
        reasons.append(f"all {n} up, tolerates no fault" if not faults else "tolerates no fault")
        verdict = Verdict.AT_RISK
    elif faults == f:
        reasons.append("one more fault stops it")
        verdict = Verdict.AT_RISK
    elif faults > 0:
        reasons.append(f"can absorb {f - faults} more")
        verdict = Verdict.DEGRADED
    elif in_view_change:
        reasons.append("a view change is in progress")
        verdict = Verdict.DEGRADED
    else:
        reasons.append(f"all {n} up")
        verdict = Verdict.HEALTHY
    return Assessment(verdict, n, f, up, faults, tuple(reasons), tuple(sorted(faulty)))


def region_components(regions: Sequence[str], cut: Sequence[Sequence[str]]) -> list[set[str]]:
    """Groups of regions that can still reach each other, given the cut region pairs."""
    cut_pairs = {frozenset(p) for p in cut}
    comps: list[set[str]] = []
    for r in regions:
        joined = [c for c in comps if any(frozenset((r, o)) not in cut_pairs for o in c)]
        merged = {r}.union(*joined) if joined else {r}
        comps = [c for c in comps if c not in joined] + [merged]
    return comps


def cut_off_nodes(node_regions: dict[str, str], regions: Sequence[str], cut: Sequence[Sequence[str]]) -> set[str]:
    """Nodes (id -> region) outside the region group that holds most of the cluster's nodes."""
    if not cut:
        return set()
    comps = region_components(regions, cut)
    main = max(comps, key=lambda c: sum(1 for r in node_regions.values() if r in c))
    return {i for i, r in node_regions.items() if r not in main}
