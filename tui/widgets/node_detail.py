"""Node detail screen: the node's full /status and the tail of its log, refreshed every poll."""

from __future__ import annotations

import json

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.deployment import format_log_line
from tui.snapshot import Snapshot


class NodeDetailScreen(Screen[None]):
    BINDINGS = [Binding("escape,backspace", "close", "Back"), Binding("q", "app.quit", "Quit")]
    DEFAULT_CSS = """
    NodeDetailScreen #title { height: 1; background: $panel; }
    NodeDetailScreen #status { height: 1fr; border-top: solid $primary; }
    NodeDetailScreen #log { height: 1fr; border-top: solid $primary; }
    """

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id

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
            lines = [format_log_line(line) for line in snap.log_tail]
            path = snap.deployment.log_path(self.node_id) if snap.deployment else "?"
            self.query_one("#log-body", Static).update(
                Text("\n".join(lines)) if lines else Text(f"no log at {path}", style="dim"))
            self.query_one("#log", VerticalScroll).scroll_end(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
