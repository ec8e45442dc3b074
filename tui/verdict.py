"""Pure cluster health verdicts: healthy, degraded, at risk, stalled, and why.

A cluster has n = 3f + 1 nodes. Nodes that are down or unreachable, and nodes named in Byzantine
evidence, count as faults. The cluster is stalled when fewer than 2f + 1 nodes are up, when it has
more than f faults, or when its height has not advanced for `stall_after_ms` while it has pending
work; otherwise it is at risk when one more fault would stop it, degraded when it has faults but can
absorb more, and healthy when it has none.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    HEALTHY = ("healthy", "✔", "green")
    DEGRADED = ("degraded", "◐", "yellow")
    AT_RISK = ("at risk", "▲", "dark_orange")
    STALLED = ("stalled", "✖", "red")

    def __init__(self, word: str, symbol: str, colour: str) -> None:
        self.word = word
        self.symbol = symbol
        self.colour = colour

    @property
    def label(self) -> str:
        return f"{self.symbol} {self.word}"


@dataclass(frozen=True)
class Assessment:
    verdict: Verdict
    n: int
    f: int
    up: int
    faults: int
    reasons: tuple[str, ...]

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
    pending_work: Sequence[str] = (),
    still_for_ms: int = 0,
    stall_after_ms: int = 10_000,
) -> Assessment:
    """Judge one cluster.

    down: ids of nodes down or unreachable; byzantine: ids accused by evidence (may be up);
    pending_work: descriptions of work waiting on the cluster; still_for_ms: how long its height
    has not advanced.
    """
    f = faults_tolerated(n)
    quorum = 2 * f + 1
    faulty = set(down) | set(byzantine)
    up = n - len(set(down))
    faults = len(faulty)
    reasons: list[str] = []
    if down:
        reasons.append(f"{len(set(down))} down: {', '.join(sorted(set(down)))}")
    if byzantine:
        reasons.append(f"Byzantine evidence against {', '.join(sorted(set(byzantine)))}")

    if up < quorum:
        reasons.insert(0, f"{up} of {n} up, quorum needs {quorum}")
        verdict = Verdict.STALLED
    elif faults > f:
        reasons.insert(0, f"{faults} faults exceed f={f}")
        verdict = Verdict.STALLED
    elif pending_work and still_for_ms >= stall_after_ms:
        reasons.insert(0, f"no decision for {still_for_ms / 1000:.0f}s with {', '.join(pending_work)}")
        verdict = Verdict.STALLED
    elif faults == f and faults > 0:
        reasons.append("one more fault stops it")
        verdict = Verdict.AT_RISK
    elif faults > 0:
        reasons.append(f"can absorb {f - faults} more")
        verdict = Verdict.DEGRADED
    else:
        reasons.append(f"all {n} up" if f > 0 else f"all {n} up, tolerates no fault")
        verdict = Verdict.HEALTHY if f > 0 else Verdict.AT_RISK
    return Assessment(verdict, n, f, up, faults, tuple(reasons))
