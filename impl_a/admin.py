"""Admin HTTP port (SPEC 15): /health, /status (status.schema.json), /metrics (Prometheus), /log/<h>."""

from __future__ import annotations

import asyncio
import contextlib
import json

import google.protobuf

from impl_a import crypto, httpreq
from impl_a import heraclius_pb2 as pb
from impl_a.codec import encode
from impl_a.errors import REASONS
from impl_a.transport import linger

ADMIN_CONNECTIONS = 64
REFUSED_LINGER_S = 0.0  # a 503 refusal shuts its side and closes without waiting (fds stay bounded)
REQUEST_DEADLINE_S = 5.0
READ_CHUNK = 4096
SQLITE_MAX = 2**63 - 1  # heights above SQLite's integer range are never decided
REASON_PHRASES = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                  408: "Request Timeout", 414: "URI Too Long", 431: "Request Header Fields Too Large",
                  503: "Service Unavailable"}


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class AdminServer:
    def __init__(self, rt):
        self.rt = rt
        self.ready = False
        self.open_conns = 0

    def status(self) -> dict:
        rt, r = self.rt, self.rt.replica
        peers = []
        for nid in rt.peers:
            peers.append({"node_id": nid, "cluster_id": rt.m.nodes[nid].cluster, "connected": nid in rt.out_links,
                          "last_seen_ms": rt.last_seen.get(nid, 0)})
        return {
            "node_id": rt.me, "cluster_id": r.cluster.id, "role": r.cluster.role, "implementation": "impl_a",
            "crypto_backend": crypto.BACKEND, "codec": f"protobuf-upb {google.protobuf.__version__}",
            "network_id": rt.m.network_id, "view": r.view, "leader": r.leader, "in_view_change": r.in_vc,
            "height": r.height, "head_hash": r.head_hash.hex(), "last_decision_ms": r.last_decision_ms,
            "started_ms": rt.started_ms, "peers": peers,
            "queues": {"next_in": dict(r.state.next_in), "next_out": dict(r.state.next_out)},
            "pending": {"requests": r.pool_items, "remote": sum(len(p) for p in r.remote_pool.values())},
            "counters": {"decisions": r.counters["decisions"], "view_changes": r.counters["view_changes"],
                         "client_requests": rt.counters["client_requests"],
                         "client_bundles": rt.counters["client_bundles"],
                         "client_replies": rt.counters["client_replies"],
                         "client_errors": sum(rt.client_errors.values()),
                         "batch_inputs": r.counters["batch_inputs"]},
            "rejected": {k: v for k, v in rt.log.rejected.items() if k in REASONS},
            "byzantine_evidence": list(rt.log.evidence),
            "testbed_faults": list(rt.faults.raw),
        }

    def metrics(self) -> str:
        rt, r = self.rt, self.rt.replica
        lab = f'node="{_esc(rt.me)}",cluster="{_esc(r.cluster.id)}"'
        lines = []

        def metric(name: str, kind: str, help_text: str, values: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for extra, v in values:
                lines.append(f"{name}{{{lab}{extra}}} {v}")

        metric("heraclius_height", "gauge", "last decided height", [("", r.height)])
        metric("heraclius_view", "gauge", "current view", [("", r.view)])
        metric("heraclius_decisions_total", "counter", "decisions applied", [("", r.counters["decisions"])])
        metric("heraclius_batch_inputs_total", "counter", "inputs in applied decisions",
               [("", r.counters["batch_inputs"])])
        metric("heraclius_view_changes_total", "counter", "views entered after view 0",
               [("", r.counters["view_changes"])])
        metric("heraclius_client_requests_total", "counter", "requests accepted on the client port",
               [("", rt.counters["client_requests"])])
        metric("heraclius_client_bundles_total", "counter", "request bundles accepted on the client port",
               [("", rt.counters["client_bundles"])])
        metric("heraclius_client_replies_total", "counter", "answers sent to clients",
               [("", rt.counters["client_replies"])])
        metric("heraclius_client_errors_total", "counter", "error replies sent to clients, by code",
               [(f',code="{k}"', rt.client_errors.get(k, 0)) for k in
                ("malformed", "bad_signature", "unauthorised", "wrong_cluster", "too_large", "stale", "overloaded",
                 "timeout")])
        metric("heraclius_pending_requests", "gauge", "size of the request pool", [("", r.pool_items)])
        metric("heraclius_pending_remote", "gauge", "size of the remote-input pool",
               [("", sum(len(p) for p in r.remote_pool.values()))])
        metric("heraclius_rejected_total", "counter", "rejected inputs by reason",
               [(f',reason="{k}"', rt.log.rejected.get(k, 0)) for k in REASONS])
        metric("heraclius_byzantine_evidence_total", "counter", "evidence records by kind",
               [(f',kind="{k}"', rt.log.evidence_counts.get(k, 0)) for k in
                ("equivocation", "invalid_proposal", "bad_qc", "tampered_compact", "invalid_view_data")])
        metric("heraclius_peer_up", "gauge", "1 if the outbound link to peer is established",
               [(f',peer="{_esc(n)}"', 1 if n in rt.out_links else 0) for n in rt.peers])
        return "\n".join(lines) + "\n"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One admin connection (SPEC 15.1): requests answered in turn until close or a deadline."""
        rt = self.rt
        if self.open_conns >= ADMIN_CONNECTIONS:
            rt.log.reject("connection_limit", "admin", "too many admin connections")
            self._write(writer, 503, {}, b"too many connections\n", False)
            # AD-7 without the wait: a flood of refused connections must not hold fds
            await self._linger(reader, writer, REFUSED_LINGER_S)
            await self._close(writer)
            return
        self.open_conns += 1
        try:
            if await self.serve(reader, writer) in ("refused", "close"):
                await self._linger(reader, writer)  # every "then close" answer (errata AD-7)
        except (ConnectionError, OSError):
            pass
        except Exception as exc:  # noqa: BLE001 - SPEC 13.1: one connection's failure closes only it
            rt.log.reject("malformed", "admin", f"{type(exc).__name__}: {exc}")
        finally:
            self.open_conns -= 1
            await self._close(writer)

    @staticmethod
    async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seconds: float = 1.0) -> None:
        """After a "then close" answer: shut our side and read off what is pending (at most 64 KiB
        or 1 s), so the kernel does not reset the answer away (errata AD-7)."""
        with contextlib.suppress(Exception):
            await writer.drain()
        await linger(reader, writer, seconds)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        """Answer requests until one closes the connection: returns "close" (Connection: close or
        HTTP/1.0), "refused" (a then-close refusal of 15.1), "eof" or "deadline"."""
        loop = asyncio.get_running_loop()
        buf = bytearray()
        while True:
            deadline = loop.time() + REQUEST_DEADLINE_S  # idle (after accept or the last answer)
            started = bool(buf)
            head = None
            while head is None:
                head = httpreq.parse_head(buf)
                if head is not None:
                    break
                left = deadline - loop.time()
                try:
                    chunk = await asyncio.wait_for(reader.read(READ_CHUNK), max(0.0, left))
                except TimeoutError:
                    self.rt.log.reject("slow_peer", "admin", "request not received within 5 s")
                    return "deadline"
                if not chunk:
                    return "eof"
                if not started:  # the request's own 5 s start with its first byte
                    started = True
                    deadline = loop.time() + REQUEST_DEADLINE_S
                buf += chunk
            del buf[:head.consumed]
            status, headers, body = self.answer(head)
            if status >= 400 and not (status == 404 and head.error is None and head.target.startswith("/log/")):
                self.rt.log.reject("bad_http_request", "admin", head.why or f"status {status}")
            self._write(writer, status, headers, body, head.method == "HEAD", head.close)
            await writer.drain()
            if head.close:
                return "refused" if head.refused else "close"

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1)

    @staticmethod
    def _write(writer, status: int, headers: dict, body: bytes, head_only: bool, close: bool = True) -> None:
        lines = [f"HTTP/1.1 {status} {REASON_PHRASES.get(status, 'Error')}"]
        if body or "Content-Type" in headers:
            headers = {"Content-Type": "text/plain", **headers}
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        if close:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head_only else body))

    def answer(self, head: httpreq.Head) -> tuple[int, dict, bytes]:
        """Status, headers and body for one parsed request (the routing rows of 15.1)."""
        if head.error == 405:
            return 405, {"Allow": "GET, HEAD"}, b"method not allowed\n"
        if head.error is not None:
            return head.error, {}, head.why.encode() + b"\n"
        kind, h = httpreq.route_path(head.target)
        if kind == "bad":
            head.why = "bad height"
            return 400, {}, b"bad height\n"
        if kind == "missing":
            head.why = "no such path"
            return 404, {}, b"not found\n"
        if kind == "log":
            data = self.rt.store.decision(h) if 1 <= h <= SQLITE_MAX else None
            if data is None:
                return 404, {}, b"not decided\n"
            d = pb.Decision()
            d.ParseFromString(data)
            d.ClearField("qc")
            return 200, {"Content-Type": "application/octet-stream"}, encode(d)
        path = head.target.split("?", 1)[0]
        self.rt.store.flush()  # SPEC 12.8: what /status and /metrics report is durable
        if path == "/health":
            if self.ready:
                return 200, {}, b"ok\n"
            return 503, {}, b"starting\n"
        if path == "/status":
            return 200, {"Content-Type": "application/json"}, json.dumps(self.status()).encode()
        return 200, {"Content-Type": "text/plain; version=0.0.4"}, self.metrics().encode()
