"""Helpers for driving the monitor headless in tests."""

from __future__ import annotations

import asyncio
import functools
import time

from tui.widgets.events_pane import EventsPane


def sync(coro_fn):
    """Run an async test body in a fresh event loop (no asyncio pytest plugin is installed)."""

    @functools.wraps(coro_fn)
    def wrapper(*args, **kwargs):
        asyncio.run(asyncio.wait_for(coro_fn(*args, **kwargs), timeout=90))

    return wrapper


async def wait_until(pilot, condition, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.05)


def events_text(app) -> str:
    return app.query_one(EventsPane).text


def cell(table, row: str, column: str) -> str:
    return str(table.get_cell(row, column))
