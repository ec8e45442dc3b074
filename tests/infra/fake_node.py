"""Stand-in node for infra tests: follows the SPEC 4 adapter command line (arguments, key file
checks, data dir lock, /health, /status, /log/<h>, SIGTERM) without any consensus.

Its height grows by one every 0.2 s; /log/<h> serves b"decision <cluster> <h>" for decided heights.
FAKE_NODE_MODE=fail-start makes it log an error and exit 1 before becoming healthy; old-schema
leaves `pending` out of /status; garbage-status serves a /status without the fields infra needs."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import socket
import socketserver
import stat
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STARTED = time.time()


def log(path, node, event, msg):
    line = json.dumps({"ts": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), "level": "info",
                       "node": node, "event": event, "msg": msg})
    with open(path, "a") as f:
        f.write(line + "\n")


def main() -> int:
    p = argparse.ArgumentParser()
    for a in ("--manifest", "--node-id", "--keys", "--data"):
        p.add_argument(a, required=True)
    p.add_argument("--log", default="/dev/stderr")
    p.add_argument("--log-level", default="info")
    args = p.parse_args()
    manifest = json.loads(Path(args.manifest).read_text())
    me = cluster = None
    for c in manifest["clusters"]:
        for n in c["nodes"]:
            if n["id"] == args.node_id:
                me, cluster = n, c
    if me is None:
        print(f"unknown node id {args.node_id}", file=sys.stderr)
        return 2
    for name in ("ed25519.key", "x25519.key"):
        kp = Path(args.keys) / name
        if not kp.exists() or stat.S_IMODE(kp.stat().st_mode) & 0o077:
            print(f"bad key file {kp}", file=sys.stderr)
            return 3
    if os.environ.get("FAKE_NODE_MODE") == "fail-start":
        log(args.log, args.node_id, "fatal", "simulated startup failure: disk on fire")
        return 1
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = open(data / "LOCK", "w")  # noqa: SIM115 - held for the process lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 4
    restarts = int((data / "starts").read_text()) if (data / "starts").exists() else 0
    (data / "starts").write_text(str(restarts + 1))
    host = me.get("bind", me["host"])
    listeners = []
    for kind in ("peer", "client"):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, me["ports"][kind]))
        s.listen()
        listeners.append(s)

    def height() -> int:
        return int((time.time() - STARTED) / 0.2)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def send(self, code, body, ctype="text/plain"):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/health":
                self.send(200, b"ok\n")
            elif self.path == "/status":
                h = height()
                doc = {"node_id": me["id"], "cluster_id": cluster["id"], "role": cluster["role"],
                       "implementation": me["implementation"], "crypto_backend": "none", "codec": "none",
                       "network_id": manifest["network_id"], "view": 0, "leader": cluster["nodes"][0]["id"],
                       "in_view_change": False, "height": h, "head_hash": "00" * 32,
                       "last_decision_ms": int(time.time() * 1000), "started_ms": int(STARTED * 1000),
                       "peers": [], "queues": {"next_in": {}, "next_out": {}},
                       "pending": {"requests": 0, "remote": 0},
                       "counters": {"decisions": h, "view_changes": 0, "client_requests": 0, "client_replies": 0,
                                    "client_errors": 0, "client_bundles": 0, "starts": restarts + 1},
                       "rejected": {}, "byzantine_evidence": [], "testbed_faults": me.get("faults", [])}
                if os.environ.get("FAKE_NODE_MODE") == "old-schema":
                    del doc["pending"]
                if os.environ.get("FAKE_NODE_MODE") == "garbage-status":
                    doc = {"node_id": me["id"]}
                self.send(200, json.dumps(doc).encode(), "application/json")
            elif self.path.startswith("/log/"):
                h = int(self.path[5:])
                if 1 <= h <= height():
                    self.send(200, f"decision {cluster['id']} {h}".encode(), "application/octet-stream")
                else:
                    self.send(404, b"not decided\n")
            else:
                self.send(404, b"no\n")

    class Server(ThreadingHTTPServer):
        def server_bind(self):
            # skip HTTPServer's getfqdn(): reverse DNS hangs inside a region namespace (no route out)
            socketserver.TCPServer.server_bind(self)
            self.server_name, self.server_port = self.server_address[:2]

    server = Server((host, me["ports"]["admin"]), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log(args.log, args.node_id, "ready", f"fake node listening on {host}")
    server.serve_forever(poll_interval=0.1)
    log(args.log, args.node_id, "stopped", "clean stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
