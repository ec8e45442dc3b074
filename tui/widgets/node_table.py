"""Nodes of the selected cluster: implementation, region, state, role, view, height, outbound
links to its own cluster and to other clusters."""

from __future__ import annotations

from rich.text import Text

from tui.health import ClusterHealth, NodeRow
from tui.widgets.keyed_table import KeyedTable


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


def state_text(r: NodeRow) -> Text:
    if not r.up:
        return Text("✖ down", style="bold red")
    if r.accused:
        return Text("! byz", style="bold red")
    if r.violation:
        return Text("⚠ spec", style="yellow")
    if r.in_view_change:
        return Text("↻ vc", style="yellow")
    return Text("● up", style="green")


class NodeTable(KeyedTable):
    COLUMNS = ("node", "impl", "region", "state", "role", "view", "height", "last dec", "links", "xlinks")
    WIDTHS = {"impl": 4, "state": 6, "role": 8, "view": 4, "height": 6, "last dec": 8, "links": 5,
              "xlinks": 6}
    DEFAULT_CSS = "NodeTable { height: auto; max-height: 11; }"

    def show(self, health: ClusterHealth | None) -> None:
        self.refill(self._rows(health) if health else ())

    def _rows(self, health: ClusterHealth):
        for r in health.rows:
            role = "leader" if r.leader else ("" if not r.up else "follower")
            links = link_text(r.up, r.links_up, r.links_total)
            xlinks = link_text(r.up, r.xlinks_up, r.xlinks_total)
            yield r.spec.id, (
                r.spec.id, Text(r.spec.impl_letter, style=r.spec.impl_style), r.spec.region, state_text(r), role,
                "-" if r.view is None else str(r.view), "-" if r.height is None else str(r.height),
                age_text(r.decision_age_ms) if r.up else "-", links, xlinks,
            )
