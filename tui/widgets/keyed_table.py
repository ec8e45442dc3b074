"""Base of the monitor's tables: a row-cursor DataTable keyed by id that is refilled every poll
without losing the operator's place."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from textual.widgets import DataTable


class KeyedTable(DataTable):
    COLUMNS: tuple[str, ...] = ()
    # columns whose content changes with the state get a fixed width, so that the layout does not
    # jump between polls and a longer word never waits for a re-measure
    WIDTHS: dict[str, int] = {}

    def on_mount(self) -> None:
        self.cursor_type = "row"
        for name in self.COLUMNS:
            self.add_column(name, key=name, width=self.WIDTHS.get(name))

    @property
    def selected(self) -> str | None:
        """Key of the row under the cursor."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def refill(self, rows: Iterable[tuple[str, Sequence[object]]]) -> None:
        """Replace every row by (key, cells) pairs, keeping the cursor on the same row number."""
        keep = self.cursor_row
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        if self.row_count:
            self.move_cursor(row=min(keep, self.row_count - 1), animate=False)
