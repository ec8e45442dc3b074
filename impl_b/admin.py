"""Admin HTTP server of SPEC 15: /health, /status, /metrics and /log/<height>."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .codec import encode


def metrics_text(rt) -> str:
    st = rt.status()
    lab = f'node="{rt.me}",cluster="{rt.cid}"'
    c = st["counters"]
    lines = []

    def metric(name, typ, helptext, samples):
        lines.append(f"# HELP {name} {helptext}")
        lines.append(f"# TYPE {name} {typ}")
        for extra, v in samples:
            lines.append(f"{name}{{{lab}{extra}}} {v}")

    metric("heraclius_height", "gauge", "last decided height", [("", st["height"])])
    metric("heraclius_view", "gauge", "current view", [("", st["view"])])
    metric("heraclius_decisions_total", "counter", "decisions applied", [("", c["decisions"])])
    metric("heraclius_batch_inputs_total", "counter", "inputs in applied decisions", [("", c["batch_inputs"])])
    metric("heraclius_view_changes_total", "counter", "views entered after view 0", [("", c["view_changes"])])
    metric("heraclius_client_requests_total", "counter", "requests accepted on the client port",
           [("", c["client_requests"])])
    metric("heraclius_client_bundles_total", "counter", "RequestBundles accepted on the client port",
           [("", c["client_bundles"])])
    metric("heraclius_client_replies_total", "counter", "answers sent to clients", [("", c["client_replies"])])
    metric("heraclius_client_errors_total", "counter", "ClientReply{error} messages sent by code",
           [(f',code="{k}"', v) for k, v in sorted(rt.client_errors.items())])
    metric("heraclius_pending_requests", "gauge", "size of the request pool", [("", st["pending"]["requests"])])
    metric("heraclius_pending_remote", "gauge", "size of the remote-input pool", [("", st["pending"]["remote"])])
    metric("heraclius_rejected_total", "counter", "rejected inputs by reason",
           [(f',reason="{k}"', v) for k, v in sorted(st["rejected"].items())])
    metric("heraclius_byzantine_evidence_total", "counter", "evidence records by kind",
           [(f',kind="{k}"', v) for k, v in sorted(rt.log.evidence_counts.items())])
    metric("heraclius_peer_up", "gauge", "outbound link established",
           [(f',peer="{p["node_id"]}"', int(p["connected"])) for p in st["peers"]])
    return "\n".join(lines) + "\n"


class AdminServer:
    """Runs the admin HTTP server in a daemon thread."""

    def __init__(self, rt, sock):
        self.rt = rt
        rt_ = rt

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = self.path.split("?")[0]
                try:
                    if path == "/health":
                        self._reply(200, "text/plain", b"ok\n")
                    elif path == "/status":
                        with rt_.lock:
                            body = json.dumps(rt_.status()).encode()
                        self._reply(200, "application/json", body)
                    elif path == "/metrics":
                        with rt_.lock:
                            body = metrics_text(rt_).encode()
                        self._reply(200, "text/plain; version=0.0.4", body)
                    elif path.startswith("/log/") and path[5:].isdigit():
                        with rt_.lock:
                            h = int(path[5:])
                            d = rt_.decision(h) if 1 <= h <= rt_.replica.height else None
                        if d is None:
                            self._reply(404, "text/plain", b"not decided\n")
                        else:
                            self._reply(200, "application/octet-stream", encode(d.copy(qc=None)))
                    else:
                        self._reply(404, "text/plain", b"not found\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def server_bind(self):
                pass  # socket already bound by the node

            def server_activate(self):
                pass

        self.httpd = Server(sock.getsockname(), Handler, bind_and_activate=False)
        self.httpd.socket.close()
        self.httpd.socket = sock
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                       name="impl_b-admin", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
