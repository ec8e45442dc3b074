"""Snapshot tests (pytest-textual-snapshot) of the main screens on the fixed demo data.

Regenerate after an intended UI change with:
    .venv/bin/python -m pytest tests/tui/test_snapshots.py --snapshot-update
"""

import time

import pytest

from tui.demo import demo_app

POLLS = 5  # the demo data is steady from the 4th poll on; the app stops polling after this many


def app(tmp_path):
    return demo_app(tmp_path, max_polls=POLLS)


def wait_for_polls(count: int = POLLS):
    async def run_before(pilot) -> None:
        deadline = time.monotonic() + 30
        while pilot.app.state.polls < count:
            assert time.monotonic() < deadline, "demo source was not polled in time"
            await pilot.pause(0.05)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_main_screen(snap_compare, tmp_path, size):
    assert snap_compare(app(tmp_path), terminal_size=size, run_before=wait_for_polls())


@pytest.mark.parametrize("keys", [("down", "down"), ("question_mark",)], ids=["shard_s1", "help"])
def test_after_keys(snap_compare, tmp_path, keys):
    """s1 highlighted (its nodes, one down); the help screen."""
    assert snap_compare(app(tmp_path), terminal_size=(80, 24), run_before=wait_for_polls(), press=keys)


def test_node_detail_screen(snap_compare, tmp_path):
    async def open_detail(pilot) -> None:
        await wait_for_polls()(pilot)
        await pilot.press("d")
        deadline = time.monotonic() + 30
        while "height=102" not in str(pilot.app.screen.query_one("#log-body").content):
            assert time.monotonic() < deadline, "log tail not shown"
            await pilot.pause(0.05)
        await pilot.pause()

    assert snap_compare(app(tmp_path), terminal_size=(80, 24), run_before=open_detail)
