"""`?` help: what the verdicts mean and every key."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
[b]Heraclius monitor[/b]  (Esc or ? closes, q quits)

[b]Verdicts[/b] (n = 3f+1; down, unreachable, accused or testbed-rule
  nodes are faults; the same rule as `heraclius-ops status`)
  [green]✔ healthy[/]   no fault, no view change
  [yellow]◐ degraded[/]  faults (margin > 0 left) or a view change
  [dark_orange]▲ at-risk[/]   one more fault stops the cluster (margin 0)
  [red]✖ stalled[/]   < 2f+1 up, > f faults, or no decision for a
              while although work is pending
[b]Keys[/b]
  ↑/↓ move · Tab next table · Enter/d node detail (status, log)
  c p u r     crash, pause, resume, restart the selected node
  x / h       partition its region / heal every partition
              (testbed deployments only; each asks first)
  ? help · q quit
[b]Nodes[/b]  ● up · ✖ down · ! byz (accused in evidence)
  ⚠ spec (up, /status off-schema) · ↻ vc (view change)
  links / xlinks: outbound links up/total, own / other clusters
[b]Events[/b] (UTC)  ↓ down · ↑ up · ⟳ restart · ↻ view change
  ☠ evidence · ◆ verdict · ⚙ testbed faults · ⚠ off-spec status
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
