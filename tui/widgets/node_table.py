"""Nodes of the selected cluster: implementation, region, state, role, view, height, outbound
links to its own cluster and to other clusters."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from tui.health import ClusterHealth

COLUMNS = ("node", "impl", "region", "state", "role", "view", "height", "last dec", "links", "x-links")


def age_text(ms: int | None) -> str:
    if ms is None:
        return "never"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    if ms < 3_600_000:
        return f"{ms // 60_000}m{ms // 1000 % 60:02d}s"
    return f"{ms // 3_600_000}h{ms // 60_000 % 60:02d}m"


def link_text(up: bool, connected: int, total: int) -> Text:
    if not up:
        return Text("-")
    return Text(f"{connected}/{total}", style="yellow" if connected < total else "")


class NodeTable(DataTable):
    DEFAULT_CSS = "NodeTable { height: auto; max-height: 11; }"

    def on_mount(self) -> None:
        self.cursor_type = "row"
        for name in COLUMNS:
            self.add_column(name, key=name)

    @property
    def selected(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def show(self, health: ClusterHealth | None) -> None:
        keep = self.cursor_row
        self.clear()
        if health is None:
            return
        for r in health.rows:
            if not r.up:
                state = Text("✖ down", style="bold red")
            elif r.accused:
                state = Text("! byz", style="bold red")
            elif r.violation:
                state = Text("⚠ spec", style="yellow")
            elif r.in_view_change:
                state = Text("↻ vc", style="yellow")
            else:
                state = Text("● up", style="green")
            role = "leader" if r.leader else ("" if not r.up else "follower")
            links = link_text(r.up, r.links_up, r.links_total)
            xlinks = link_text(r.up, r.xlinks_up, r.xlinks_total)
            self.add_row(
                r.spec.id, r.spec.impl_letter, r.spec.region, state, role,
                "-" if r.view is None else str(r.view), "-" if r.height is None else str(r.height),
                age_text(r.decision_age_ms) if r.up else "-", links, xlinks, key=r.spec.id,
            )
        if self.row_count:
            self.move_cursor(row=min(keep, self.row_count - 1), animate=False)
