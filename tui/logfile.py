"""Log files of a deployment's nodes (`<dir>/logs/<node>.log`): the tail, and JSON lines made readable."""

from __future__ import annotations

import json
import os
from pathlib import Path


def tail_log(path: Path, lines: int = 20, max_bytes: int = 64 * 1024) -> list[str]:
    """Last `lines` lines of a log file (reads at most max_bytes from its end); [] if absent."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    if size > max_bytes and text:
        text = text[1:]  # the first line was cut by the seek
    return text[-lines:]


def format_log_line(line: str) -> str:
    """A JSON log line (SPEC section 4) as 'time level event msg extra=..'; other lines as is."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return line
    if not isinstance(rec, dict):
        return line
    ts = str(rec.get("ts", ""))
    ts = ts[11:23] if len(ts) >= 23 else ts
    extra = " ".join(
        f"{k}={v}" for k, v in rec.items() if k not in {"ts", "level", "node", "event", "msg"}
    )
    parts = [ts, str(rec.get("level", "")), str(rec.get("event", "")), str(rec.get("msg", "")), extra]
    return " ".join(p for p in parts if p)
