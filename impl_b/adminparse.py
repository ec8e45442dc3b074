"""SPEC 15.1 admin request parsing without I/O: bytes in, a verdict out (first matching row wins).

`parse(buf)` returns None while the request is incomplete (and within its size limits), else a
Verdict: the HTTP status to answer (or the route to serve), whether to close after the answer and
how many bytes of `buf` the request used.
"""

from dataclasses import dataclass

from .limits import ADMIN_HEADER_BYTES, ADMIN_HEADER_LINES, ADMIN_REQUEST_LINE

MAX_HEIGHT = 2**64 - 1
ROUTES = {b"/health": "health", b"/status": "status", b"/metrics": "metrics"}
VERSIONS = (b"HTTP/1.0", b"HTTP/1.1")


@dataclass
class Verdict:
    status: int  # 200 for a route to serve; the error status otherwise
    close: bool
    consumed: int
    route: str | None = None  # health, status, metrics or log
    height: int | None = None
    head: bool = False
    why: str = ""

    @property
    def counted(self) -> bool:
        """An answer counted `bad_http_request` (SPEC 15: 4xx other than an undecided height)."""
        return 400 <= self.status < 500


def _error(status: int, close: bool, consumed: int, why: str) -> Verdict:
    return Verdict(status=status, close=close, consumed=consumed, why=why)


def _line_end(buf: bytes, start: int) -> tuple[int, int] | None:
    """(end of the line's content, index after its terminator) of the line at `start`, or None."""
    nl = buf.find(b"\n", start)
    if nl < 0:
        return None
    end = nl - 1 if nl > start and buf[nl - 1] == 0x0D else nl
    return end, nl + 1


def _height(text: bytes) -> int | None:
    """`0` or 1 to 20 ASCII digits without a leading zero, at most 2^64 - 1; else None."""
    if not 1 <= len(text) <= 20 or any(c < 0x30 or c > 0x39 for c in text):
        return None
    if len(text) > 1 and text[0] == 0x30:
        return None
    value = int(text)
    return value if value <= MAX_HEIGHT else None


def parse(buf: bytes) -> Verdict | None:
    first = _line_end(buf, 0)
    if first is None or first[1] > ADMIN_REQUEST_LINE:
        if first is not None or len(buf) >= ADMIN_REQUEST_LINE:
            return _error(414, True, len(buf), "no request line within 8192 bytes")
        return None
    line = buf[:first[0]]
    parts = line.split(b" ")
    if (len(parts) != 3 or not all(parts) or not line.isascii() or parts[2] not in VERSIONS
            or any(c < 0x21 or c == 0x7F for p in parts for c in p)):
        return _error(400, True, first[1], "bad request line")
    method, target, version = parts
    headers: dict[bytes, bytes] = {}
    pos, lines = first[1], 0
    while True:
        nxt = _line_end(buf, pos)
        if nxt is None:
            if len(buf) - first[1] > ADMIN_HEADER_BYTES:
                return _error(431, True, len(buf), "headers over 16384 bytes")
            return None
        end, after = nxt
        if end == pos:  # the empty line
            pos = after
            break
        lines += 1
        if lines > ADMIN_HEADER_LINES or after - first[1] > ADMIN_HEADER_BYTES:
            return _error(431, True, after, "headers over 16384 bytes or 100 lines")
        name, colon, value = buf[pos:end].partition(b":")
        if not colon:
            return _error(400, True, after, "header line without ':'")
        headers[name.strip().lower()] = value.strip()
        pos = after
    if b"transfer-encoding" in headers or headers.get(b"content-length", b"0") != b"0":
        return _error(400, True, pos, "request with a body")
    conn = headers.get(b"connection", b"").lower()
    close = version == b"HTTP/1.0" or conn == b"close"
    if method not in (b"GET", b"HEAD"):
        return _error(405, close, pos, "method not allowed")
    head = method == b"HEAD"
    if not target.startswith(b"/"):
        return Verdict(400, close, pos, head=head, why="target does not start with /")
    path = target.split(b"?", 1)[0]
    if path in ROUTES:
        return Verdict(200, close, pos, route=ROUTES[path], head=head)
    if path.startswith(b"/log/"):
        h = _height(path[5:])
        if h is None:
            return Verdict(400, close, pos, head=head, why="bad height")
        return Verdict(200, close, pos, route="log", height=h, head=head)
    return Verdict(404, close, pos, head=head, why="not found")
