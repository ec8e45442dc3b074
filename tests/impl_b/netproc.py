"""Real-process test networks of impl_b nodes: start, wait for health, kill, restart, clean up."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from impl_b import devnet
from impl_b.manifest import validate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PY = sys.executable
FAST = {"heartbeat_interval": 100, "heartbeat_timeout": 1000, "request_forward": 500, "censorship": 2000,
        "view_change": 1500, "queue_long_poll": 500, "sync_retry": 300, "client_timeout": 3000}


class Network:
    """A local network of impl_b node processes under `root`."""

    def __init__(self, root: str, layout=None, faults=None, testbed=False, timeouts=None, clients=("alice",)):
        self.root = str(root)
        self._spec = {"layout": layout or {"c0": "coordinator", "s0": "shard"},
                      "timeouts": {**FAST, **(timeouts or {})}, "faults": faults,
                      "testbed": testbed or bool(faults), "clients": tuple(clients)}
        self._write_manifest()
        self.procs: dict[str, subprocess.Popen] = {}
        self.key = os.path.join(self.root, "keys", "alice.key")

    def _write_manifest(self) -> None:
        """Manifest with freshly picked ports (keys are deterministic, so only the ports change)."""
        layout = self._spec["layout"]
        doc, secrets = devnet.build(layout, **{k: v for k, v in self._spec.items() if k != "layout"})
        self.doc = doc
        self.path = devnet.write(doc, secrets, self.root)
        self.m = validate(doc)

    def start(self, node: str, env: dict | None = None) -> None:
        log = os.path.join(self.root, f"{node}.log")
        err = open(os.path.join(self.root, f"{node}.err"), "ab")  # noqa: SIM115
        self.procs[node] = subprocess.Popen(
            [PY, "-m", "impl_b.node", "--manifest", self.path, "--node-id", node,
             "--keys", os.path.join(self.root, "keys", node), "--data", os.path.join(self.root, "data", node),
             "--log", log],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
            env={**os.environ, **(env or {})})
        err.close()

    def start_all(self) -> None:
        self.start_fresh(list(self.m.nodes))

    def start_fresh(self, nodes: list[str], attempts: int = 3) -> None:
        """Start nodes that have no data yet. Ports are picked by binding port 0, so on a busy host
        another process's outbound connection can take one before the node binds it: then every
        node is stopped, new ports are picked and the nodes start again."""
        for attempt in range(attempts):
            for n in nodes:
                self.start(n)
            try:
                self.wait_healthy(nodes)
                return
            except RuntimeError:
                if attempt == attempts - 1 or not self._bind_failed():
                    raise
            self.close()
            shutil.rmtree(os.path.join(self.root, "data"), ignore_errors=True)
            for n in self.m.nodes:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(self.root, f"{n}.err"))
            self._write_manifest()

    def _bind_failed(self) -> bool:
        for n in self.m.nodes:
            with contextlib.suppress(FileNotFoundError), open(os.path.join(self.root, f"{n}.err"), "rb") as fh:
                if b"cannot listen" in fh.read():
                    return True
        return False

    def admin(self, node: str, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
        """(HTTP status, body) of GET `path` on the node's admin port."""
        url = "http://127.0.0.1:%d%s" % (self.m.nodes[node].admin_port, path)  # noqa: UP031
        try:
            resp = urllib.request.urlopen(url, timeout=timeout)
        except urllib.error.HTTPError as err:
            resp = err
        with resp:
            return resp.status if hasattr(resp, "status") else resp.code, resp.read()

    def status(self, node: str) -> dict:
        return json.loads(self.admin(node, "/status")[1])

    def wait_healthy(self, nodes: list[str], timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        for n in nodes:
            while True:
                try:
                    if self.admin(n, "/health", 1.0) == (200, b"ok\n"):
                        break
                except OSError:
                    pass
                if self.procs[n].poll() is not None:
                    raise RuntimeError(f"{n} exited with {self.procs[n].returncode}")
                if time.monotonic() > end:
                    raise TimeoutError(f"{n} not healthy")
                time.sleep(0.1)

    def _end(self, node: str, sig: int) -> int | None:
        proc = self.procs.pop(node, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
        return proc.wait(timeout=10)

    def kill9(self, node: str) -> None:
        self._end(node, signal.SIGKILL)

    def stop(self, node: str) -> int:
        """SIGTERM, returning the exit code."""
        return self._end(node, signal.SIGTERM)

    def close(self) -> None:
        while self.procs:
            self.kill9(next(iter(self.procs)))

    def cli(self, *args, timeout: float = 60.0) -> tuple[int, str]:
        r = subprocess.run([PY, "-m", "impl_b.client", "--manifest", self.path, "--key", self.key, *args],
                           cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout

    def wait_until(self, cond, timeout: float = 30.0, step: float = 0.2) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if cond():
                    return True
            except (OSError, ValueError):
                pass
            time.sleep(step)
        return False
