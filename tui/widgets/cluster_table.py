"""Overview table: one row per cluster with its verdict, fault budget and decision rate."""

from __future__ import annotations

from rich.text import Text

from tui.state import MonitorState
from tui.widgets.keyed_table import KeyedTable


class ClusterTable(KeyedTable):
    COLUMNS = ("cluster", "role", "verdict", "f", "faults", "margin", "height", "dec/s", "why")
    WIDTHS = {"role": 5, "verdict": 10, "f": 1, "faults": 6, "margin": 6, "height": 6, "dec/s": 5}
    DEFAULT_CSS = "ClusterTable { height: auto; max-height: 9; }"

    def show(self, state: MonitorState) -> None:
        self.refill(self._rows(state))

    def _rows(self, state: MonitorState):
        why_width = max(8, self.size.width - 66)
        for cid, h in state.clusters.items():
            a = h.assessment
            role = "coord" if h.spec.role == "coordinator" else "shard"
            why = a.why if len(a.why) <= why_width else a.why[: why_width - 1] + "…"
            margin = Text(str(a.margin), style="red" if a.margin <= 0 else "")
            yield cid, (cid, role, Text(a.verdict.label, style=f"bold {a.verdict.colour}"), str(a.f),
                        str(a.faults), margin, str(h.height), f"{state.history.rate(cid):.1f}", why)
