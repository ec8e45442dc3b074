"""Selected cluster in words: fault budget, why, what losing a region or implementation does,
and its rejected inputs by reason."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from infra.model.verdict import Verdict
from tui.state import MonitorState


class ClusterPanel(Static):
    DEFAULT_CSS = "ClusterPanel { height: auto; max-height: 6; padding: 0 1; }"

    def show(self, state: MonitorState, cluster_id: str | None) -> None:
        h = state.clusters.get(cluster_id or "")
        if h is None:
            self.update("")
            return
        a = h.assessment
        text = Text()
        text.append(f"{h.spec.id}", style="bold")
        text.append(f" n={a.n} f={a.f} faults={a.faults} margin={a.margin} "
                    f"view={h.view} leader={h.leader or '?'} ")
        text.append(a.verdict.label, style=f"bold {a.verdict.colour}")
        text.append(f": {a.why}")
        if h.pending:
            text.append(f" · pending: {', '.join(h.pending)}", style="yellow")
        text.append("\n")
        text.append("if lost:", style="bold")
        grouped: dict[Verdict, list[str]] = {}
        for loss in state.losses:
            impact = loss.impacts.get(h.spec.id)
            if impact is not None:
                grouped.setdefault(impact.verdict, []).append(loss.label)
        for verdict in Verdict:
            if verdict in grouped:
                text.append(" ")
                text.append(verdict.label, style=f"bold {verdict.colour}")
                text.append(f" {', '.join(grouped[verdict])};")
        text.append("\nrejected: ", style="bold")
        if h.rejected:
            text.append(" · ".join(f"{k} {v}" for k, v in sorted(h.rejected.items(), key=lambda kv: -kv[1])))
        else:
            text.append("none")
        self.update(text)
