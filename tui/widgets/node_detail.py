"""Node detail screen: the node's full /status and the tail of its log, refreshed every poll."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.logfile import format_log_line, tail_log
from tui.snapshot import Snapshot


class NodeDetailScreen(Screen[None]):
    BINDINGS = [Binding("escape,backspace", "close", "Back"), Binding("q", "app.quit", "Quit")]
    DEFAULT_CSS = """
    NodeDetailScreen #title { height: 1; background: $panel; }
    NodeDetailScreen #status { height: 1fr; border-top: solid $primary; }
    NodeDetailScreen #log { height: 1fr; border-top: solid $primary; }
    """

    def __init__(self, node_id: str, log_path: Path | None = None, snapshot: Snapshot | None = None) -> None:
        super().__init__()
        self.node_id = node_id
        self.log_path = log_path
        self.first = snapshot

    def compose(self) -> ComposeResult:
        yield Static(f" node {self.node_id}", id="title")
        with VerticalScroll(id="status"):
            yield Static("waiting for the next poll…", id="status-body")
        with VerticalScroll(id="log"):
            yield Static("", id="log-body")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#status").border_title = "status"
        self.query_one("#log").border_title = "log tail"
        if self.first is not None:
            self.show(self.first)
        if self.log_path is not None:
            self.load_log(self.log_path)

    @work(thread=True, exit_on_error=False)
    def load_log(self, path: Path) -> None:
        """First log tail right away; later ones arrive with each poll."""
        lines = tail_log(path, lines=40)
        with contextlib.suppress(RuntimeError):
            self.app.call_from_thread(self._show_log, lines, path)

    def _show_log(self, lines: list[str] | tuple[str, ...], path: Path | str) -> None:
        formatted = [format_log_line(line) for line in lines]
        self.query_one("#log-body", Static).update(
            Text("\n".join(formatted)) if formatted else Text(f"no log at {path}", style="dim"))
        self.query_one("#log", VerticalScroll).scroll_end(animate=False)

    def show(self, snap: Snapshot) -> None:
        sample = snap.sample(self.node_id)
        title = Text(f" node {self.node_id} ", style="bold")
        if sample.up:
            st = sample.status
            title.append(f"{st.get('implementation')} · {st.get('crypto_backend')} · {st.get('codec')}")
            body = Text(json.dumps(st, indent=1, sort_keys=True))
        else:
            title.append("✖ down", style="bold red")
            body = Text(f"unreachable: {sample.error}", style="red")
        self.query_one("#title", Static).update(title)
        self.query_one("#status-body", Static).update(body)
        if snap.log_node == self.node_id:
            path = snap.deployment.log_path(self.node_id) if snap.deployment else "?"
            self._show_log(snap.log_tail, path)

    def action_close(self) -> None:
        self.dismiss(None)
