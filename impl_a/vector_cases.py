"""Runner for our own vector case folders (wire_spec/vectors/<area>/<handler>/{valid,invalid}/<case>/).

Handlers are registered per "<area>/<handler>" as documented in wire_spec/vectors/formats/.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Callable, Iterator

HANDLERS: dict[str, Callable[[pathlib.Path, dict, bool], str | None]] = {}


def run_case(case: pathlib.Path) -> Iterator[tuple[str, str | None]]:
    try:
        meta = json.loads((case / "meta.json").read_text())
    except (OSError, ValueError) as exc:
        yield str(case), f"bad meta.json: {exc}"
        return
    parts = case.parts
    try:
        i = max(k for k, p in enumerate(parts) if p in ("valid", "invalid"))
    except ValueError:
        yield str(case), "case folder is not under valid/ or invalid/"
        return
    key = f"{parts[i - 2]}/{parts[i - 1]}"
    handler = HANDLERS.get(key)
    if handler is None:
        yield str(case), f"no handler for {key}"
        return
    try:
        yield str(case), handler(case, meta, parts[i] == "valid")
    except Exception as exc:
        yield str(case), f"exception {type(exc).__name__}: {exc}"
