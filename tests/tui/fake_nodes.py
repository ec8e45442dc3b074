"""Fake Heraclius nodes for monitor tests: tiny HTTP servers in the test process serving scripted
/status and /metrics, and a temp deployment directory whose manifest points at them."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tui.demo import demo_manifest, status_doc, write_deployment

HANG_S = 4.0  # how long a "hang" node waits before dropping the request (above the test timeout)


class FakeNode:
    """Serves `self.status` (a dict) at /status and counters from it at /metrics.
    mode: "ok", "invalid" (schema-invalid status), "error" (HTTP 500), "hang" (answers too late)."""

    def __init__(self, node_id: str, cluster_id: str, role: str, peers: list[str]) -> None:
        self.node_id = node_id
        self.status = status_doc(node_id, cluster_id, role, peers, height=10, now_ms=int(time.time() * 1000))
        self.mode = "ok"
        self.requests = 0
        node = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                node.requests += 1
                if node.mode == "hang":
                    time.sleep(HANG_S)
                if node.mode == "error":
                    self.send_error(500)
                    return
                if node.mode == "hang":
                    return
                if self.path == "/status":
                    doc = dict(node.status)
                    if node.mode == "invalid":
                        doc["height"] = "tall"
                    body, ctype = json.dumps(doc).encode(), "application/json"
                elif self.path == "/metrics":
                    body, ctype = node.metrics_text().encode(), "text/plain; version=0.0.4"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        self.running = True

    def metrics_text(self) -> str:
        st = self.status
        labels = f'node="{self.node_id}",cluster="{st["cluster_id"]}"'
        lines = [f"heraclius_height{{{labels}}} {st['height']}",
                 f"heraclius_decisions_total{{{labels}}} {st['counters']['decisions']}",
                 f"heraclius_client_replies_total{{{labels}}} {st['counters']['client_replies']}",
                 f"heraclius_client_requests_total{{{labels}}} {st['counters']['client_requests']}",
                 f"heraclius_view_changes_total{{{labels}}} {st['counters']['view_changes']}",
                 f'heraclius_client_errors_total{{{labels},code="timeout"}} {st["counters"]["client_errors"]}',
                 f"heraclius_pending_requests{{{labels}}} {st['pending']['requests']}",
                 f"heraclius_pending_remote{{{labels}}} {st['pending']['remote']}"]
        lines += [f'heraclius_rejected_total{{{labels},reason="{r}"}} {v}' for r, v in st["rejected"].items()]
        return "\n".join(lines) + "\n"

    def advance(self, decisions: int = 1, replies: int = 0) -> None:
        st = self.status
        st["height"] += decisions
        st["counters"]["decisions"] += decisions
        st["counters"]["client_replies"] += replies
        st["counters"]["client_requests"] += replies
        st["last_decision_ms"] = int(time.time() * 1000)

    def stop(self) -> None:
        """Stop answering: close the listening socket (connections are then refused)."""
        if self.running:
            self.running = False
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)


class FakeDeployment:
    def __init__(self, root: Path, clusters=(("c0", "coordinator"), ("s0", "shard")), testbed=True):
        self.nodes: dict[str, FakeNode] = {}
        try:
            for cid, role in clusters:
                ids = [f"{cid}-n{i}" for i in range(4)]
                for nid in ids:
                    self.nodes[nid] = FakeNode(nid, cid, role, [p for p in ids if p != nid])
        except BaseException:
            self.close()
            raise
        self.manifest = demo_manifest({nid: n.port for nid, n in self.nodes.items()}, testbed=testbed,
                                      clusters=tuple(clusters))
        self.path = write_deployment(root, self.manifest)

    def __getitem__(self, node_id: str) -> FakeNode:
        return self.nodes[node_id]

    def close(self) -> None:
        for node in self.nodes.values():
            node.stop()
