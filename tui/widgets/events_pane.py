"""Events (nodes up/down, view changes, Byzantine evidence, verdicts), newest first."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.events import Event, clock_text

SYMBOLS = {"node_down": "↓", "node_up": "↑", "restart": "⟳", "view_change": "↻", "byzantine": "☠",
           "verdict": "◆", "deployment": "!", "testbed": "⚙", "spec": "⚠"}
STYLES = {"info": "green", "warn": "yellow", "alert": "bold red"}
KEEP = 200


def event_text(event: Event) -> Text:
    text = Text()
    text.append(clock_text(event.time_ms) + " ", style="dim")
    text.append(SYMBOLS.get(event.kind, "·") + " ", style=STYLES.get(event.severity, ""))
    text.append(event.text, style="red" if event.severity == "alert" else "")
    return text


class EventsPane(VerticalScroll):
    DEFAULT_CSS = """
    EventsPane { height: 1fr; min-height: 3; border-top: solid $primary; }
    EventsPane > Static { width: 100%; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.events: deque[Event] = deque(maxlen=KEEP)

    def compose(self) -> ComposeResult:
        yield Static("no events yet", id="events-body")

    def on_mount(self) -> None:
        self.border_title = "events (newest first)"

    def add(self, events: Iterable[Event]) -> None:
        new = list(events)
        if not new:
            return
        self.events.extend(new)
        body = Text("\n").join(event_text(e) for e in reversed(self.events))
        self.query_one("#events-body", Static).update(body)

    @property
    def text(self) -> str:
        """Plain text of every event shown, one per line (for tests and copying)."""
        return "\n".join(event_text(e).plain for e in reversed(self.events))
