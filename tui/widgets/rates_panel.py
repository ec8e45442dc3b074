"""Throughput line: client answers per second with a sparkline, client errors per second,
decisions per second in all, view changes per cluster."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Sparkline

from tui.state import MonitorState


class RatesPanel(Horizontal):
    DEFAULT_CSS = """
    RatesPanel { height: 1; padding: 0 1; }
    RatesPanel #ops { width: 15; }
    RatesPanel Sparkline { width: 16; margin-right: 1; }
    RatesPanel #decisions { width: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Label("ops/s 0.0", id="ops")
        yield Sparkline([], id="spark")
        yield Label("", id="decisions")

    def show(self, state: MonitorState) -> None:
        hist = state.history
        self.query_one("#ops", Label).update(f"ops/s {hist.ops_per_s:7.1f}")
        errors = hist.errors_per_s
        series = list(hist.ops_rate)
        # an all-zero series would be drawn as full bars (min == max): draw nothing instead
        self.query_one("#spark", Sparkline).data = series if any(series) else []
        decisions = sum(hist.rate(cid) for cid in state.clusters)
        changes = " ".join(f"{cid} {h.view_changes}" for cid, h in state.clusters.items())
        self.query_one("#decisions", Label).update(
            f"errors/s {errors:.1f} · dec/s {decisions:.1f} · view changes {changes}")
