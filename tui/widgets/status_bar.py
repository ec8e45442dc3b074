"""Top line: network, testbed flag, nodes up, last poll, or why the deployment cannot be read."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.events import clock_text
from tui.state import MonitorState


class StatusBar(Static):
    DEFAULT_CSS = "StatusBar { height: 1; background: $panel; }"

    def show(self, state: MonitorState, interval: float) -> None:
        snap = state.snapshot
        text = Text(no_wrap=True, overflow="ellipsis")
        if snap is None:
            text.append(" waiting for the first poll…")
        elif snap.deployment is None:
            text.append(" ✖ deployment unreachable: ", style="bold red")
            text.append(snap.error or "")
        else:
            dep = snap.deployment
            up, total = state.up_count
            text.append(f" {dep.network_id}", style="bold")
            if dep.testbed:
                text.append(" · testbed", style="magenta")
            style = "green" if up == total else "bold red"
            text.append(f" · {up}/{total} nodes up", style=style)
            text.append(f" · polled {clock_text(snap.taken_ms)} UTC ({snap.elapsed_ms} ms,"
                        f" every {interval:g}s)")
            if snap.error:
                text.append(f" · ✖ {snap.error}", style="bold red")
        self.update(text)
