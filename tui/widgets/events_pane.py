"""Scrolling list of events (nodes up/down, view changes, Byzantine evidence, verdicts)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import RichLog

from tui.events import Event, clock_text

SYMBOLS = {"node_down": "↓", "node_up": "↑", "restart": "⟳", "view_change": "↻", "byzantine": "☠",
           "verdict": "◆", "deployment": "!"}
STYLES = {"info": "green", "warn": "yellow", "alert": "bold red"}


def event_text(event: Event) -> Text:
    text = Text(no_wrap=False)
    text.append(clock_text(event.time_ms) + " ", style="dim")
    text.append(SYMBOLS.get(event.kind, "·") + " ", style=STYLES.get(event.severity, ""))
    text.append(event.text, style=STYLES.get(event.severity, "") if event.severity == "alert" else "")
    return text


class EventsPane(RichLog):
    DEFAULT_CSS = "EventsPane { height: 1fr; min-height: 3; border-top: solid $primary; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(min_width=20, wrap=True, **kwargs)

    def on_mount(self) -> None:
        self.border_title = "events"

    def add(self, events: Iterable[Event]) -> None:
        width = self.scrollable_content_region.width
        for event in events:
            # wrap to the pane's width (RichLog would otherwise wrap at the console's default 80)
            self.write(event_text(event), width=width if width > 20 else None)
