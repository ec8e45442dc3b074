"""Real-process test networks: start impl_a nodes as subprocesses, wait for readiness, kill them all."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request

from impl_a.devnet import make_network

ROOT = pathlib.Path(__file__).resolve().parents[2]
PY = sys.executable
FAST = {"heartbeat_interval": 100, "heartbeat_timeout": 800, "request_forward": 400, "censorship": 1500,
        "view_change": 1000, "queue_long_poll": 300, "sync_retry": 200, "client_timeout": 3000, "batch_wait": 2}


class ProcNet:
    def __init__(self, root: pathlib.Path, clusters, testbed: bool = False, faults: dict | None = None,
                 limits: dict | None = None, clients: int = 1):
        self.root = pathlib.Path(root)
        self.doc = make_network(self.root, list(clusters), timeouts=FAST, testbed=testbed, faults=faults,
                                clients=clients)
        self.manifest = self.root / "manifest.json"
        if limits:
            self.doc["limits"] = limits
            self.manifest.write_text(json.dumps(self.doc, indent=1))
        self.procs: dict[str, subprocess.Popen] = {}
        self.nodes = {n["id"]: n for c in self.doc["clusters"] for n in c["nodes"]}

    def start(self, nid: str) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        p = subprocess.Popen([PY, "-m", "impl_a.node", "--manifest", str(self.manifest), "--node-id", nid,
                              "--keys", str(self.root / "keys" / nid), "--data", str(self.root / "data" / nid),
                              "--log", str(self.root / f"{nid}.log")], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs[nid] = p
        return p

    def start_all(self) -> None:
        for nid in self.nodes:
            self.start(nid)
        for nid in self.nodes:
            self.wait_ready(nid)

    def admin(self, nid: str, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
        port = self.nodes[nid]["ports"]["admin"]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def status(self, nid: str) -> dict:
        return json.loads(self.admin(nid, "/status")[1])

    def wait_ready(self, nid: str, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            p = self.procs[nid]
            if p.poll() is not None:
                raise RuntimeError(f"{nid} exited with {p.returncode}: {p.stderr.read().decode()[-2000:]}")
            try:
                if self.admin(nid, "/health", 0.5) == (200, b"ok\n"):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{nid} not ready after {timeout}s")

    def kill9(self, nid: str) -> None:
        p = self.procs.pop(nid, None)
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)

    def stop(self, nid: str) -> int:
        p = self.procs.pop(nid)
        p.send_signal(signal.SIGTERM)
        return p.wait(timeout=10)

    def close(self) -> None:
        for nid in list(self.procs):
            self.kill9(nid)

    def client(self, *args: str, timeout: float = 60) -> tuple[int, list[dict]]:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        out = subprocess.run([PY, "-m", "impl_a.client", "--manifest", str(self.manifest), "--key",
                              str(self.root / "clients" / "client0.key"), "--timeout-ms", "30000", *args],
                             cwd=ROOT, env=env,
                             capture_output=True, timeout=timeout)
        lines = [json.loads(x) for x in out.stdout.decode().splitlines() if x.strip()]
        return out.returncode, lines

    def op(self, command: str, key: str, value: str | None = None, timeout_ms: int = 30000) -> dict:
        """GET or PUT through the client library in this process (no interpreter start-up per call);
        returns the same JSON object as the command line."""
        import asyncio

        from impl_a.client import Client
        from impl_a.client_cli import result_json
        from impl_a.devnet import read_key
        from impl_a.manifest import validate

        async def run() -> dict:
            async with Client(validate(self.doc), read_key(self.root / "clients" / "client0.key"),
                              timeout_ms=timeout_ms) as c:
                if command == "get":
                    res = await c.get(key.encode())
                else:
                    res = await c.put(key.encode(), value.encode())
                return result_json(res, False)

        return asyncio.run(run())

    def get_many(self, keys: list[bytes], timeout_ms: int = 30000) -> dict[bytes, bytes | None]:
        """Concurrent GETs over one client (one set of links)."""
        import asyncio

        from impl_a.client import Client
        from impl_a.devnet import read_key
        from impl_a.manifest import validate

        async def run() -> dict:
            async with Client(validate(self.doc), read_key(self.root / "clients" / "client0.key"),
                              timeout_ms=timeout_ms) as c:
                results = await asyncio.gather(*(c.get(k) for k in keys))
            return {k: r.value for k, r in zip(keys, results, strict=True)}

        return asyncio.run(run())
