"""Conformance handler admin/request (SPEC 15.1): the case's request bytes go through impl_b's
admin parser and answer builder (the code the node's admin server runs), in memory."""

import os
import threading
from types import SimpleNamespace

from . import codec
from .admin import answer
from .adminparse import parse


class AdminCaseFailure(Exception):
    pass


class _StubRuntime:
    """Just what the admin answers read: heights 1..top decided, an empty status."""

    def __init__(self, top: int):
        self.lock = threading.RLock()
        self.me, self.cid = "c0-n0", "c0"
        self.replica = SimpleNamespace(height=top)
        self.client_errors: dict = {}
        self.log = SimpleNamespace(reject=lambda *a: None, evidence_counts={})

    def decision(self, h: int):
        hdr = codec.DecisionHeader(cluster_id="c0", height=h, parent_hash=bytes(32), inputs_hash=bytes(32),
                                   outputs_root=bytes(32))
        return codec.Decision(header=hdr, batch=codec.Batch())

    def status(self) -> dict:
        return {"height": self.replica.height, "view": 0, "peers": [], "rejected": {},
                "pending": {"requests": 0, "remote": 0},
                "counters": dict.fromkeys(("decisions", "batch_inputs", "view_changes", "client_requests",
                                           "client_bundles", "client_replies"), 0)}


def _split(resp: bytes) -> tuple[int, dict, bytes]:
    head, sep, body = resp.partition(b"\r\n\r\n")
    if not sep:
        raise AdminCaseFailure("answer without the end of its headers")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise AdminCaseFailure(f"bad status line {lines[0]!r}")
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        headers[k.strip().lower()] = v.strip()
    return int(parts[1]), headers, body


def h_admin_request(case: str, meta: dict) -> None:
    with open(os.path.join(case, "request.bin"), "rb") as fh:
        req = fh.read()
    v = parse(req)
    if v is None:
        raise AdminCaseFailure("request not complete for the parser")
    status, headers, body = _split(answer(_StubRuntime(meta["decided_height"]), v))
    checks = [
        (status == meta["status"], f"status {status}, expected {meta['status']}"),
        (v.close == meta["close"], f"close {v.close}, expected {meta['close']}"),
        (b"content-length" in headers, "no Content-Length"),
        (status != 405 or headers.get(b"allow") == b"GET, HEAD", "405 without Allow: GET, HEAD"),
        (meta["body"] != "nonempty" or len(body) > 0, "empty body"),
        (meta["body"] != "empty" or body == b"", "a HEAD answer with a body"),
        (len(body) == 0 or int(headers[b"content-length"]) == len(body), "Content-Length differs from the body"),
    ]
    for ok, why in checks:
        if not ok:
            raise AdminCaseFailure(why)


