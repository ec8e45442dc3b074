"""The Textual monitor application and its entry point `run(deployment_dir)`.

Polling runs in a thread worker; the next poll is armed only when the previous one has been
rendered, so a slow deployment slows the refresh instead of piling up requests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer

from tui.errors import LocalError
from tui.fetch import HttpSource, Source
from tui.snapshot import Snapshot
from tui.state import MonitorState
from tui.widgets.cluster_panel import ClusterPanel
from tui.widgets.cluster_table import ClusterTable
from tui.widgets.confirm_screen import ConfirmScreen
from tui.widgets.events_pane import EventsPane
from tui.widgets.help_screen import HelpScreen
from tui.widgets.node_detail import NodeDetailScreen
from tui.widgets.node_table import NodeTable
from tui.widgets.rates_panel import RatesPanel
from tui.widgets.status_bar import StatusBar

FAULT_KEYS = {"crash": "crash (kill -9)", "pause": "pause (SIGSTOP)", "resume": "resume (SIGCONT)",
              "restart": "restart", "partition": "partition the region of", "heal": "heal every partition"}
# What the monitor may do to a deployment, handed in by whoever starts it (`heraclius-ops monitor` passes
# infra's fault functions): (deployment_dir, action, node_id, region) -> summary; raises LocalError (or
# anything) with a message for the operator. None: a read-only monitor without fault keys.
Actions = Callable[[Path, str, str, str], str]


class MonitorApp(App[None]):
    TITLE = "Heraclius monitor"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Screen { layout: vertical; }
    DataTable { scrollbar-size-horizontal: 0; }
    ClusterTable { border-top: solid $primary; }
    NodeTable { border-top: solid $primary; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("d", "detail", "Detail"),
        Binding("c", "fault('crash')", "Crash"),
        Binding("p", "fault('pause')", "Pause"),
        Binding("u", "fault('resume')", "Resume"),
        Binding("r", "fault('restart')", "Restart"),
        Binding("x", "fault('partition')", "Cut"),
        Binding("h", "fault('heal')", "Heal"),
    ]

    def __init__(self, deployment_dir: Path, poll_interval: float = 1.0, source: Source | None = None,
                 stall_after_s: float = 10.0, actions: Actions | None = None,
                 max_polls: int | None = None, timeout: float = 0.8) -> None:
        """timeout: seconds an HTTP request to a node may take before the node counts as down;
        max_polls: stop polling after that many polls (fixed screenshots); None polls forever."""
        super().__init__()
        self.max_polls = max_polls
        self.deployment_dir = Path(deployment_dir)
        self.poll_interval = poll_interval
        self.source = source or HttpSource(self.deployment_dir, timeout=timeout)
        self.state = MonitorState(stall_after_ms=int(stall_after_s * 1000))
        self.actions = actions
        self._stopping = False

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield ClusterTable(id="clusters")
        yield NodeTable(id="nodes")
        yield ClusterPanel(id="panel")
        yield RatesPanel(id="rates")
        yield EventsPane(id="events")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#clusters").border_title = "clusters"
        self.query_one("#nodes").border_title = "nodes"
        self.query_one("#status", StatusBar).show(self.state, self.poll_interval)
        self.query_one("#clusters", ClusterTable).focus()
        self._start_poll()

    def on_unmount(self) -> None:
        self._stopping = True
        self.source.close()

    # ---- polling: fetch in a thread, render on the UI thread, then re-arm

    def _watched_node(self) -> str | None:
        screen = self.screen
        return screen.node_id if isinstance(screen, NodeDetailScreen) else None

    def _start_poll(self) -> None:
        if not self._stopping:
            self.poll(self._watched_node())

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def poll(self, log_node: str | None) -> None:
        try:
            snap = self.source.poll(log_node)
        except Exception as exc:  # the poll loop must survive anything the source does
            snap = Snapshot(taken_ms=0, deployment=None, error=f"poll failed: {exc!r}")
        if not self._stopping:
            with contextlib.suppress(RuntimeError):  # the app closed while we were fetching
                self.call_from_thread(self._apply, snap)

    def _apply(self, snap: Snapshot) -> None:
        try:
            was_testbed = self._testbed()
            new_events = self.state.ingest(snap)
            if self._testbed() != was_testbed:
                self.refresh_bindings()  # fault keys appear only on testbed deployments
            self.render_state()
            self.query_one("#events", EventsPane).add(new_events)
            if isinstance(self.screen, NodeDetailScreen):
                self.screen.show(snap)
        finally:
            more = self.max_polls is None or self.state.polls < self.max_polls
            if more and not self._stopping:
                self.set_timer(self.poll_interval, self._start_poll)

    def render_state(self) -> None:
        self.query_one("#status", StatusBar).show(self.state, self.poll_interval)
        clusters = self.query_one("#clusters", ClusterTable)
        clusters.show(self.state)
        self._render_cluster(clusters.selected)
        self.query_one("#rates", RatesPanel).show(self.state)

    def _render_cluster(self, cluster_id: str | None) -> None:
        self.query_one("#nodes", NodeTable).show(self.state.clusters.get(cluster_id or ""))
        self.query_one("#panel", ClusterPanel).show(self.state, cluster_id)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if isinstance(event.data_table, ClusterTable) and event.row_key.value is not None:
            self._render_cluster(event.row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if isinstance(event.data_table, NodeTable):
            self.action_detail()
        elif isinstance(event.data_table, ClusterTable):
            self.query_one("#nodes", NodeTable).focus()

    # ---- actions

    def selected_node(self) -> str | None:
        if isinstance(self.screen, NodeDetailScreen):
            return self.screen.node_id
        return self.query_one("#nodes", NodeTable).selected

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_detail(self) -> None:
        if isinstance(self.screen, NodeDetailScreen):
            return
        node = self.selected_node()
        if node is None:
            self.notify("no node selected", severity="warning")
            return
        snap = self.state.snapshot
        log_path = snap.deployment.log_path(node) if snap and snap.deployment else None
        self.push_screen(NodeDetailScreen(node, log_path, snap))

    def _testbed(self) -> bool:
        snap = self.state.snapshot
        return bool(snap and snap.deployment and snap.deployment.testbed)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return (self._testbed() and self.actions is not None) if action == "fault" else True

    def action_fault(self, action: str) -> None:
        node = self.selected_node()
        snap = self.state.snapshot
        if node is None or snap is None or snap.deployment is None:
            self.notify("select a node first", severity="warning")
            return
        if not snap.deployment.testbed:
            self.notify("fault keys work only on testbed deployments", severity="warning")
            return
        if self.actions is None:
            self.notify("read-only monitor: start it with `heraclius-ops monitor` for fault keys", severity="warning")
            return
        region = next((n.region for n in snap.deployment.nodes if n.id == node), "")
        target = {"partition": f" region {region} (node {node})", "heal": ""}.get(action, f" node {node}")
        verb = FAULT_KEYS[action]
        question = f"{verb[0].upper()}{verb[1:]}{target}?"

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_fault(action, node, region)

        self.push_screen(ConfirmScreen(question), answered)

    @work(thread=True, group="fault", exit_on_error=False)
    def run_fault(self, action: str, node: str, region: str) -> None:
        if self.actions is None:
            return
        try:
            message, severity = self.actions(self.deployment_dir, action, node, region), "information"
        except LocalError as exc:
            message, severity = str(exc), "error"
        except Exception as exc:  # report, never crash the monitor over a failed fault action
            message, severity = f"{action} {node} failed: {exc!r}", "error"
        if not self._stopping:
            with contextlib.suppress(RuntimeError):
                self.call_from_thread(self.notify, message, severity=severity, timeout=8)


def run(deployment_dir: Path, poll_interval: float = 1.0, timeout: float = 0.8, actions: Actions | None = None) -> None:
    """Run the monitor on a deployment directory until the operator quits; `actions` enables the
    fault keys (see `Actions`)."""
    MonitorApp(Path(deployment_dir), poll_interval=poll_interval, timeout=timeout, actions=actions).run()
