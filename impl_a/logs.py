"""JSON-lines logging (SPEC 4), rejection counting with a 10 s per-(reason, peer) log limit, evidence."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
from collections import deque

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
RATE_WINDOW_S = 10.0


def now_ms() -> int:
    return int(time.time() * 1000)


def rfc3339_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


class Log:
    def __init__(self, node: str, path: str | None = None, level: str = "info"):
        self.node = node
        self.level = LEVELS.get(level, 20)
        self.fh = open(path, "a", buffering=1, encoding="utf-8") if path else sys.stderr  # noqa: SIM115
        self.rejected: dict[str, int] = {}
        self._last_logged: dict[tuple[str, str], float] = {}
        self.evidence: deque = deque(maxlen=200)
        self.evidence_counts: dict[str, int] = {}

    def emit(self, level: str, event: str, msg: str, **fields) -> None:
        if LEVELS[level] < self.level:
            return
        rec = {"ts": rfc3339_ms(now_ms()), "level": level, "node": self.node, "event": event, "msg": msg}
        rec.update(fields)
        with contextlib.suppress(OSError, ValueError):
            self.fh.write(json.dumps(rec, default=str) + "\n")

    def reject(self, reason: str, peer: str, detail: str = "") -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        key = (reason, peer)
        t = time.monotonic()
        if t - self._last_logged.get(key, -RATE_WINDOW_S) >= RATE_WINDOW_S:
            self._last_logged[key] = t
            if len(self._last_logged) > 10000:
                self._last_logged.clear()
            self.emit("warning", "rejected", f"rejected input from {peer}: {reason}", reason=reason, peer=peer,
                      detail=detail[:200], count=self.rejected[reason])

    def add_evidence(self, node: str, kind: str, detail: str, messages: list[bytes]) -> None:
        ident = hashlib.sha256(b"".join(sorted(messages))).hexdigest()
        if any(e["id"] == ident and e["kind"] == kind for e in self.evidence):
            return  # the same misdeed seen again (e.g. a replayed message): one record is enough
        self.evidence.append({"id": ident, "node_id": node, "kind": kind, "detail": detail, "time_ms": now_ms(),
                              "messages_hex": [m.hex() for m in messages]})
        self.evidence_counts[kind] = self.evidence_counts.get(kind, 0) + 1
        self.emit("warning", "byzantine_evidence", f"{kind} by {node}: {detail}", accused=node, kind=kind)
