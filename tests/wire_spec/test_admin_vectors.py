"""admin/request vectors (SPEC 15.1): the reference parser's answers, the format's invariants, and a
cross-check of the accepted requests with the standard library's HTTP request parser."""

from __future__ import annotations

import io
import json
from http.server import BaseHTTPRequestHandler

import pytest

from tests.wire_spec.conftest import VECTORS
from wire_spec.vectors.generator.admin_check import answer

CASES = sorted(VECTORS.glob("admin/request/*/*"))
FIELDS = {"description", "verdict", "decided_height", "status", "close", "body", "spec_row"}


def _load(case):
    return json.loads((case / "meta.json").read_text(encoding="utf-8")), (case / "request.bin").read_bytes()


@pytest.mark.parametrize("case", CASES, ids=lambda p: "/".join(p.parts[-2:]))
def test_case_matches_reference_parser(case):
    meta, data = _load(case)
    assert set(meta) == FIELDS
    assert set(p.name for p in case.iterdir()) == {"meta.json", "request.bin"}
    ok = 200 <= meta["status"] < 300
    assert meta["verdict"] == ("accept" if ok else "reject")
    assert case.parent.name == ("valid" if ok else "invalid")
    assert meta["decided_height"] == 5
    ref = answer(data, meta["decided_height"])
    assert (ref.status, ref.close, ref.body, ref.row) == (meta["status"], meta["close"], meta["body"],
                                                          meta["spec_row"])
    if not meta["close"]:
        assert ref.consumed == len(data)  # exactly one request: a follow-up request can be sent
    if meta["status"] != 414:
        assert data.find(b"\n") < 8192


def test_every_table_row_has_a_case():
    statuses = {_load(c)[0]["status"] for c in CASES}
    assert statuses == {200, 400, 404, 405, 414, 431}
    rows = {_load(c)[0]["spec_row"] for c in CASES}
    assert len(rows) == 13, rows
    closing = [c.name for c in CASES if _load(c)[0]["close"]]
    assert {"http10_closes", "connection_close", "request_line_over_8192_bytes"} <= set(closing)


class _Parsed(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless HTTP/1.0 or Connection: close

    def __init__(self, data: bytes):  # no socket: parse the bytes only
        self.rfile, self.wfile = io.BytesIO(data), io.BytesIO()
        self.raw_requestline = self.rfile.readline(65537)
        self.ok = self.parse_request()

    def log_message(self, *args):  # quiet
        pass


@pytest.mark.parametrize("case", [c for c in CASES if c.parent.name == "valid"], ids=lambda p: p.name)
def test_accepted_requests_parse_with_the_standard_library(case):
    meta, data = _load(case)
    if case.name == "header_lines_100":  # http.client counts the empty line: it refuses 100 header lines (V-H3)
        pytest.skip("the standard library allows 99 header lines")
    parsed = _Parsed(data)
    assert parsed.ok and parsed.command in ("GET", "HEAD")
    path = parsed.path.split("?", 1)[0]
    assert path in ("/health", "/status", "/metrics") or path.startswith("/log/")
    assert parsed.close_connection == meta["close"]
