"""Vector handler for SPEC 15.1: admin/request case folders (vectors/formats/admin_request.md).

The request bytes go through impl_a's own admin connection handler (AdminServer.serve) in memory,
with a node state in which heights 1..decided_height are decided; the bytes it writes are parsed
back into HTTP answers and compared with the case."""

from __future__ import annotations

import asyncio
import pathlib

from impl_a import heraclius_pb2 as pb
from impl_a.admin import AdminServer
from impl_a.codec import encode

FOLLOW_UP = b"GET /health HTTP/1.1\r\n\r\n"


class _Log:
    def reject(self, reason: str, peer: str, detail: str = "") -> None:
        pass


class _Store:
    def __init__(self, decided: int):
        self.decided = decided

    def flush(self) -> None:
        pass

    def decision(self, h: int) -> bytes | None:
        if not 1 <= h <= self.decided:
            return None
        return encode(pb.Decision(header=pb.DecisionHeader(cluster_id="c", height=h)))


class _Node:
    def __init__(self, decided: int):
        self.log = _Log()
        self.store = _Store(decided)


class _VectorAdmin(AdminServer):
    def status(self) -> dict:
        return {"node_id": "vector"}

    def metrics(self) -> str:
        return "heraclius_height 5\n"


class _Sink:
    """The writer side of an in-memory admin connection."""

    def __init__(self):
        self.data = bytearray()

    def write(self, b: bytes) -> None:
        self.data += b

    async def drain(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def wait_closed(self) -> None:
        pass


def _answers(data: bytes, head_first: bool) -> list[tuple[int, dict, bytes]]:
    """Split written bytes into (status, headers, body) answers."""
    out, pos = [], 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            raise ValueError("incomplete answer")
        lines = data[pos:end].decode("ascii").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError(f"bad status line {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers["content-length"])
        pos = end + 4
        if head_first and not out:
            n = 0  # a HEAD answer carries no body bytes
        out.append((int(parts[1]), headers, bytes(data[pos:pos + n])))
        pos += n
    return out


async def _drive(raw: bytes, decided: int) -> tuple[str, bytes]:
    reader = asyncio.StreamReader()
    reader.feed_data(raw)
    reader.feed_eof()
    sink = _Sink()
    server = _VectorAdmin(_Node(decided))
    server.ready = True
    how = await server.serve(reader, sink)
    return how, bytes(sink.data)


def admin_request_case(case: pathlib.Path, meta: dict, valid: bool) -> str | None:
    raw = (case / "request.bin").read_bytes()
    keep = not meta["close"]
    how, data = asyncio.run(_drive(raw + (FOLLOW_UP if keep else b""), meta["decided_height"]))
    try:
        answers = _answers(data, raw.startswith(b"HEAD "))
    except (ValueError, KeyError, UnicodeError) as exc:
        return f"unparsable answer: {exc}"
    if not answers:
        return "no answer"
    status, headers, body = answers[0]
    if status != meta["status"]:
        return f"status {status}, expected {meta['status']}"
    closed = how in ("close", "refused")
    if closed != meta["close"]:
        return f"close is {closed}, expected {meta['close']}"
    if keep and (len(answers) != 2 or answers[1][0] != 200):
        return "no 200 answer to the follow-up request on the kept connection"
    if closed and len(answers) != 1:
        return "answered after closing"
    if meta["body"] == "nonempty" and not body:
        return "empty body"
    if meta["body"] == "empty" and body:
        return "HEAD answer has a body"
    if status == 405 and headers.get("allow") != "GET, HEAD":
        return "405 without Allow: GET, HEAD"
    return None
