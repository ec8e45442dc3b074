"""SPEC 15.1 admin request parsing, free of I/O: bytes in, a parsed request or an HTTP error out.

`parse_head(buf)` looks at the bytes received so far on an admin connection and returns None while
the request is incomplete (and within its limits), else a `Head` naming either the request or the
error status to answer. `route_path(path)` classifies a path by the table of 15.1.
"""

from __future__ import annotations

from dataclasses import dataclass

LINE_MAX = 8192
HEADERS_MAX_BYTES = 16384
HEADERS_MAX_LINES = 100
U64_MAX = 2**64 - 1
METHODS = ("GET", "HEAD")
PAGES = ("/health", "/status", "/metrics")


@dataclass
class Head:
    """A parsed request (error None) or a refusal; `close` says the connection ends after the answer."""

    error: int | None = None
    why: str = ""
    method: str = ""
    target: str = ""
    close: bool = False
    consumed: int = 0
    refused: bool = False  # a "then close" row: the rest of the input is not read


def _refuse(status: int, why: str, method: str = "") -> Head:
    return Head(error=status, why=why, method=method, close=True, refused=True)


def _line_end(buf: bytes, start: int, limit: int) -> tuple[int, int] | None:
    """(end of content, start of next line) of the LF-ended line at start, looking at most `limit`
    bytes ahead; None if no LF there."""
    nl = buf.find(b"\n", start, start + limit)
    if nl < 0:
        return None
    end = nl - 1 if nl > start and buf[nl - 1] == 0x0D else nl
    return end, nl + 1


def _request_line(line: bytes) -> tuple[str, str, str] | None:
    if not line.isascii():
        return None
    parts = line.split(b" ")
    if len(parts) != 3 or not all(parts):
        return None
    method, target, version = (p.decode("ascii") for p in parts)
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        return None
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in method + target):
        return None
    return method, target, version


def parse_head(buf: bytes) -> Head | None:
    """Parse the request at the start of buf (request line and headers, 15.1 rows 2-5)."""
    got = _line_end(buf, 0, LINE_MAX)
    if got is None:
        return _refuse(414, "request line too long") if len(buf) >= LINE_MAX else None
    end, pos = got
    parsed = _request_line(bytes(buf[:end]))
    if parsed is None:
        return _refuse(400, "bad request line")
    method, target, version = parsed
    close = version == "HTTP/1.0"
    head_start, lines = pos, 0
    while True:
        got = _line_end(buf, pos, len(buf))
        if got is None:
            if len(buf) - head_start > HEADERS_MAX_BYTES + 1:
                return _refuse(431, "headers too large", method)
            return None
        end, nxt = got
        if end == pos:  # the empty line: end of the headers
            pos = nxt
            break
        if nxt - head_start > HEADERS_MAX_BYTES:
            return _refuse(431, "headers too large", method)
        lines += 1
        if lines > HEADERS_MAX_LINES:
            return _refuse(431, "too many header lines", method)
        line = bytes(buf[pos:end])
        colon = line.find(b":")
        if colon <= 0:
            return _refuse(400, "header line without a name and ':'", method)
        name = line[:colon].strip().lower()
        value = line[colon + 1:].strip()
        if name == b"content-length" and value != b"0":
            return _refuse(400, "request body not accepted", method)
        if name == b"transfer-encoding":
            return _refuse(400, "transfer-encoding not accepted", method)
        if name == b"connection":
            tokens = {t.strip() for t in value.lower().split(b",")}
            if b"close" in tokens:
                close = True
            elif b"keep-alive" in tokens and version == "HTTP/1.0":
                close = False
        pos = nxt
    if method not in METHODS:
        return Head(error=405, why="method not allowed", method=method, target=target, close=close, consumed=pos)
    if not target.startswith("/"):
        return Head(error=400, why="target must start with /", method=method, target=target, close=close,
                    consumed=pos)
    return Head(method=method, target=target, close=close, consumed=pos)


def log_height(rest: str) -> int | None:
    """The height of a /log/<h> path (15.1 digits rule), or None if <h> is not a valid height."""
    if not 1 <= len(rest) <= 20 or not rest.isascii() or not rest.isdigit():
        return None
    if rest[0] == "0" and rest != "0":
        return None
    h = int(rest)
    return h if h <= U64_MAX else None


def route_path(target: str) -> tuple[str, int | None]:
    """('page', None) for /health, /status, /metrics; ('log', h) for a valid /log/<h>; ('bad', None)
    for an invalid /log/ path; ('missing', None) otherwise. The query string is ignored."""
    path = target.split("?", 1)[0]
    if path in PAGES:
        return "page", None
    if path.startswith("/log/"):
        h = log_height(path[5:])
        return ("log", h) if h is not None else ("bad", None)
    return "missing", None
