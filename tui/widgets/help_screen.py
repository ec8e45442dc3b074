"""`?` help: what the verdicts mean and every key."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
[b]Heraclius monitor[/b]  (Esc or ? closes)

[b]Verdicts[/b] (n = 3f+1 nodes; down, unreachable or accused nodes are faults)
  [green]✔ healthy[/]   no fault
  [yellow]◐ degraded[/]  faults, can still absorb more (margin > 0)
  [dark_orange]▲ at risk[/]   one more fault stops the cluster (margin 0)
  [red]✖ stalled[/]   fewer than 2f+1 up, more than f faults, or no
              decision for a while although work is pending

[b]Keys[/b]
  ↑/↓        move in a table      Tab   next table
  Enter, d   node detail (full status and log tail)
  c p u r x  crash, pause, resume, restart, partition the
             selected node (testbed deployments only; asks first)
  ?          this help            q     quit

Node state: ● up · ✖ down · ! byz (named in Byzantine evidence)
· ⚠ spec (up, /status breaks the schema) · ↻ vc (in a view change). links / x-links: outbound links up/total
to its own cluster / to other clusters.
Events: ↓ down · ↑ up · ⟳ restart · ↻ view change · ☠ evidence
· ◆ verdict change · ⚙ testbed fault rules · ⚠ off-spec status.
Times are UTC.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark", "dismiss", "Close"), Binding("q", "app.quit", "Quit")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 72; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(HELP)

    def action_dismiss(self) -> None:
        self.dismiss(None)
