"""Parse the Prometheus text exposition format 0.0.4 served at /metrics (SPEC section 15)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from tui.errors import RemoteError

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


def _unescape(value: str) -> str:
    return value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def _labels(text: str) -> tuple[tuple[str, str], ...]:
    out = []
    pos = 0
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if not m:
            raise RemoteError(f"bad label set {{{text}}}")
        out.append((m.group(1), _unescape(m.group(2))))
        pos = m.end()
    return tuple(out)


def parse(text: str) -> list[Sample]:
    """All samples of a /metrics body; RemoteError on a malformed line."""
    samples = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise RemoteError(f"bad metrics line {line[:80]!r}")
        try:
            value = float(m.group(4))
        except ValueError as exc:
            raise RemoteError(f"bad metrics value in {line[:80]!r}") from exc
        samples.append(Sample(m.group(1), _labels(m.group(3) or ""), value))
    return samples


def total(samples: Iterable[Sample], name: str) -> float | None:
    """Sum of every finite sample named `name`, None if there is none."""
    values = [s.value for s in samples if s.name == name and math.isfinite(s.value)]
    return sum(values) if values else None


def by_label(samples: Iterable[Sample], name: str, key: str) -> dict[str, float]:
    """Samples named `name` summed per value of label `key`."""
    out: dict[str, float] = {}
    for s in samples:
        if s.name == name and math.isfinite(s.value):
            k = s.label(key)
            if k is not None:
                out[k] = out.get(k, 0.0) + s.value
    return out
