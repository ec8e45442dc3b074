"""Overview table: one row per cluster with its verdict, fault budget and decision rate."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from tui.state import MonitorState

COLUMNS = ("cluster", "role", "verdict", "f", "faults", "margin", "height", "dec/s", "why")


class ClusterTable(DataTable):
    DEFAULT_CSS = "ClusterTable { height: auto; max-height: 9; }"

    def on_mount(self) -> None:
        self.cursor_type = "row"
        for name in COLUMNS:
            self.add_column(name, key=name)

    @property
    def selected(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def show(self, state: MonitorState) -> None:
        keep = self.cursor_row
        why_width = max(8, self.size.width - 66)
        self.clear()
        for cid, h in state.clusters.items():
            a = h.assessment
            role = "coord" if h.spec.role == "coordinator" else "shard"
            why = a.why if len(a.why) <= why_width else a.why[: why_width - 1] + "…"
            margin = Text(str(a.margin), style="red" if a.margin <= 0 else "")
            self.add_row(
                cid, role, Text(a.verdict.label, style=f"bold {a.verdict.colour}"), str(a.f),
                str(a.faults), margin, str(h.height), f"{state.history.rate(cid):.1f}", why, key=cid,
            )
        if self.row_count:
            self.move_cursor(row=min(keep, self.row_count - 1), animate=False)
