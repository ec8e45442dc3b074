"""JSON-lines logging (SPEC 4) with rejection rate limiting, counters and Byzantine evidence."""

import hashlib
import json
import sys
import threading
import time

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
REASONS = ("malformed", "non_canonical", "oversized", "bad_signature", "unknown_node", "wrong_network",
           "wrong_cluster", "not_leader", "stale", "bad_qc", "bad_proof", "wrong_destination", "out_of_order",
           "replay", "invalid_proposal", "unauthorised_client", "duplicate", "handshake_failed",
           "decrypt_failed", "overloaded", "connection_limit", "slow_peer", "bad_http_request")


def now_ms() -> int:
    return int(time.time() * 1000)


def _ts() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


class NodeLog:
    """Structured log plus the node's accounting (rejections, evidence)."""

    def __init__(self, node_id: str, path: str | None, level: str = "info"):
        self.node = node_id
        self.level = LEVELS[level]
        self._fh = open(path, "a", buffering=1, encoding="utf-8") if path else sys.stderr  # noqa: SIM115
        self._lock = threading.Lock()
        self.rejected: dict[str, int] = {}
        self._last_logged: dict[tuple, float] = {}
        self.evidence: list[dict] = []
        self.evidence_counts: dict[str, int] = {}

    def log(self, level: str, event: str, msg: str, **fields) -> None:
        if LEVELS[level] < self.level:
            return
        rec = {"ts": _ts(), "level": level, "node": self.node, "event": event, "msg": msg, **fields}
        line = json.dumps(rec, default=str)
        with self._lock:
            try:
                self._fh.write(line + "\n")
                self._fh.flush()
            except (OSError, ValueError):
                pass

    def reject(self, reason: str, peer: str, detail: str) -> None:
        """Count a rejection; log it at most once per (reason, peer) per 10 s."""
        if reason not in REASONS:
            reason = "malformed"
        with self._lock:
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
            key = (reason, peer)
            t = time.monotonic()
            due = t - self._last_logged.get(key, -1e9) >= 10.0
            if due:
                self._last_logged[key] = t
                if len(self._last_logged) > 10000:
                    self._last_logged.clear()
        if due:
            self.log("debug" if reason == "stale" else "warning", "rejected", detail, reason=reason, peer=peer)

    def add_evidence(self, node: str, kind: str, detail: str, messages: list[str]) -> None:
        with self._lock:
            eid = hashlib.sha256(b"".join(sorted(bytes.fromhex(m) for m in messages))).hexdigest()
            self.evidence.append({"id": eid, "node_id": node, "kind": kind, "detail": detail, "time_ms": now_ms(),
                                  "messages_hex": messages})
            del self.evidence[:-100]
            self.evidence_counts[kind] = self.evidence_counts.get(kind, 0) + 1
        self.log("warning", "byzantine_evidence", detail, accused=node, kind=kind)
