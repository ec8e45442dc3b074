"""Reference admin-port request parser: the SPEC 15.1 table, first match wins (standard library only).

`answer(data, decided_height)` decides the first answer a node gives to the bytes `data` received on a
fresh admin connection whose node has decided heights 1..decided_height. It covers the rows a parser can
decide from the bytes alone (not the 64-connection limit, not the 5 s deadline). The readings the
vectors follow where the table leaves a choice are errata V-H1..V-H3 of wire_spec/errata/vectors.md.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_REQUEST_LINE = 8192  # the request line and its LF lie within the first 8192 bytes (V-H2)
MAX_HEADER_BYTES = 16384  # header lines with their line endings, the final empty line excluded (V-H2)
MAX_HEADER_LINES = 100
U64_MAX = 2**64 - 1
VISIBLE = frozenset(range(0x21, 0x7F))
DIGITS = frozenset(b"0123456789")


@dataclass(frozen=True)
class Answer:
    status: int
    close: bool  # the node closes the connection after this answer
    body: str  # "nonempty" (a GET answered 200), "empty" (HEAD), "any" (not checked)
    row: str  # which row of the SPEC 15.1 table decided
    consumed: int | None  # bytes of `data` that form this request (None when it is refused unread)


def _lines(data: bytes, start: int):
    """(line without its ending, offset after its LF) from `start`; stops at data without a LF."""
    pos = start
    while True:
        lf = data.find(b"\n", pos)
        if lf < 0:
            return
        line = data[pos:lf]
        yield (line[:-1] if line.endswith(b"\r") else line), lf + 1
        pos = lf + 1


def answer(data: bytes, decided_height: int) -> Answer:
    lf = data.find(b"\n", 0, MAX_REQUEST_LINE)
    if lf < 0:
        if len(data) < MAX_REQUEST_LINE:
            raise ValueError("incomplete request line: a node would wait (deadline), no vector")
        return Answer(414, True, "any", "request line over 8192 bytes", None)
    line = data[:lf]
    line = line[:-1] if line.endswith(b"\r") else line
    parts = line.split(b" ")
    if (len(parts) != 3 or not all(parts) or not all(set(p) <= VISIBLE for p in parts)
            or parts[2] not in (b"HTTP/1.0", b"HTTP/1.1")):
        return Answer(400, True, "any", "bad request line", None)
    method, target, version = parts
    headers: dict[bytes, list[bytes]] = {}
    total, end = 0, None
    for count, (header, after) in enumerate(_lines(data, lf + 1), 1):
        if header == b"":
            end = after
            break
        total += len(header) + (2 if data[after - 2:after - 1] == b"\r" else 1)
        if count > MAX_HEADER_LINES or total > MAX_HEADER_BYTES:
            return Answer(431, True, "any", "headers too large", None)
        if b":" not in header:
            return Answer(400, True, "any", "header line without ':'", None)
        name, value = header.split(b":", 1)
        headers.setdefault(name.strip().lower(), []).append(value.strip(b" \t"))
    if end is None:
        raise ValueError("incomplete headers: a node would wait (deadline), no vector")
    if any(v != b"0" for v in headers.get(b"content-length", [])) or b"transfer-encoding" in headers:
        return Answer(400, True, "any", "request body", None)
    tokens = {t.strip().lower() for v in headers.get(b"connection", []) for t in v.split(b",")}
    close = version == b"HTTP/1.0" or b"close" in tokens

    def done(status: int, row: str, body: str = "any") -> Answer:
        return Answer(status, close, body, row, end)

    if method not in (b"GET", b"HEAD"):
        return done(405, "method not GET or HEAD")
    if not target.startswith(b"/"):
        return done(400, "target not starting with /")
    path = target.split(b"?", 1)[0]
    ok_body = "nonempty" if method == b"GET" else "empty"
    if path in (b"/health", b"/status", b"/metrics"):
        return done(200, "health, status, metrics", ok_body)
    if path.startswith(b"/log/"):
        h = path[len(b"/log/"):]
        if h == b"0":
            return done(404, "log height 0")
        if 1 <= len(h) <= 20 and set(h) <= DIGITS and h[:1] != b"0" and int(h) <= U64_MAX:
            if int(h) <= decided_height:
                return done(200, "log height decided", ok_body)
            return done(404, "log height not decided")
        return done(400, "log height malformed")
    return done(404, "other path")
