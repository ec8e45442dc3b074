"""Admin HTTP port (SPEC 15): /health, /status (status.schema.json), /metrics (Prometheus), /log/<h>."""

from __future__ import annotations

import asyncio
import json

import google.protobuf

from impl_a import crypto
from impl_a import heraclius_pb2 as pb
from impl_a.codec import encode
from impl_a.errors import REASONS


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class AdminServer:
    def __init__(self, rt):
        self.rt = rt
        self.ready = False

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
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while True:  # skip headers
                h = await asyncio.wait_for(reader.readline(), 5)
                if h in (b"\r\n", b"\n", b""):
                    break
            parts = line.decode("latin-1").split()
            path = parts[1] if len(parts) >= 2 else ""
            method = parts[0] if parts else ""
            status, ctype, body = self.route(method, path)
            head = (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                    "Connection: close\r\n\r\n").encode()
            writer.write(head + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, OSError, UnicodeError):
            pass
        finally:
            writer.close()

    def route(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method != "GET":
            return "405 Method Not Allowed", "text/plain", b"method not allowed\n"
        if path == "/health":
            if self.ready:
                return "200 OK", "text/plain", b"ok\n"
            return "503 Service Unavailable", "text/plain", b"starting\n"
        if path == "/status":
            return "200 OK", "application/json", json.dumps(self.status()).encode()
        if path == "/metrics":
            return "200 OK", "text/plain; version=0.0.4", self.metrics().encode()
        if path.startswith("/log/"):
            try:
                h = int(path[5:])
            except ValueError:
                return "400 Bad Request", "text/plain", b"bad height\n"
            data = self.rt.store.decision(h) if h >= 1 else None
            if data is None:
                return "404 Not Found", "text/plain", b"not decided\n"
            d = pb.Decision()
            d.ParseFromString(data)
            d.ClearField("qc")
            return "200 OK", "application/octet-stream", encode(d)
        return "404 Not Found", "text/plain", b"not found\n"
