"""Poll every node's /status and /metrics over HTTP with short timeouts, off the UI thread.

`HttpSource.poll()` blocks (run it in a worker thread); it never raises for a node problem: a node
that cannot be reached or answers badly gets a NodeSample with `error` set.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from infra.errors import UsageError
from infra.model.deployment import read_partitions
from infra.model.topology import NodeSpec
from infra.model.topology import Topology as Deployment
from infra.model.topology import load_topology as load_deployment
from tui import metrics_text
from tui.errors import LocalError, RemoteError
from tui.logfile import tail_log
from tui.snapshot import NodeSample, Snapshot
from tui.status_check import check_status

MAX_BODY = 4 * 1024 * 1024


def wall_ms() -> int:
    return int(time.time() * 1000)


class Source(Protocol):
    """Anything that produces snapshots; the app polls one of these."""

    def poll(self, log_node: str | None = None) -> Snapshot: ...

    def close(self) -> None: ...


def http_get(host: str, port: int, path: str, timeout: float) -> str:
    """Body of GET http://host:port/path (no proxies); RemoteError on any failure."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": "*/*", "Connection": "close"})
        resp = conn.getresponse()
        body = resp.read(MAX_BODY + 1)
    except ConnectionRefusedError as exc:
        raise RemoteError(f"{path}: connection refused") from exc
    except TimeoutError as exc:
        raise RemoteError(f"{path}: timed out after {timeout:g}s") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise RemoteError(f"{path}: {exc.__class__.__name__}: {exc}".rstrip(": ")) from exc
    finally:
        conn.close()
    if resp.status != 200:
        raise RemoteError(f"{path}: HTTP {resp.status}")
    if len(body) > MAX_BODY:
        raise RemoteError(f"{path}: body over {MAX_BODY} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteError(f"{path}: not UTF-8") from exc


def fetch_node(node: NodeSpec, timeout: float, network_id: str | None = None) -> NodeSample:
    """Status (checked, see tui.status_check) and metrics of one node. Metrics are optional: a node
    whose /metrics fails is still up, its counters then come from /status."""
    try:
        raw: Any = json.loads(http_get(node.host, node.admin_port, "/status", timeout))
        doc, violation = check_status(raw, node.id, node.cluster, network_id)
    except json.JSONDecodeError as exc:
        return NodeSample(node.id, error=f"/status: invalid JSON ({exc.msg})")
    except RemoteError as exc:
        return NodeSample(node.id, error=str(exc))
    try:
        samples = tuple(metrics_text.parse(http_get(node.host, node.admin_port, "/metrics", timeout)))
    except RemoteError:
        samples = ()
    return NodeSample(node.id, status=doc, metrics=samples, violation=violation)


class HttpSource:
    """Polls the deployment in `deployment_dir`, re-reading its manifest when it changes."""

    def __init__(self, deployment_dir: Path, timeout: float = 0.8, clock: Callable[[], int] = wall_ms,
                 workers: int = 16) -> None:
        self.deployment_dir = Path(deployment_dir)
        self.timeout = timeout
        self.clock = clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tui-poll")
        self._deployment: Deployment | None = None

    def _load(self) -> Deployment:
        current = self._deployment
        try:
            mtime = (self.deployment_dir / "manifest.json").stat().st_mtime_ns
        except OSError:
            mtime = -1
        if current is None or current.manifest_mtime_ns != mtime:
            current = load_deployment(self.deployment_dir)
            self._deployment = current
        return current

    def poll(self, log_node: str | None = None) -> Snapshot:
        start = self.clock()
        error = None
        try:
            deployment = self._load()
        except (LocalError, UsageError) as exc:
            # keep polling the nodes of the last manifest we could read, and say why
            if self._deployment is None:
                return Snapshot(taken_ms=start, deployment=None, error=str(exc))
            deployment, error = self._deployment, str(exc)
        futures = {n.id: self._pool.submit(fetch_node, n, self.timeout, deployment.network_id)
                   for n in deployment.nodes}
        samples: dict[str, NodeSample] = {}
        for node_id, fut in futures.items():
            try:
                samples[node_id] = fut.result(timeout=4 * self.timeout + 1)
            except Exception as exc:  # a stuck or crashed fetch must not stop the poll loop
                samples[node_id] = NodeSample(node_id, error=f"poll failed: {exc!r}")
        tail: tuple[str, ...] = ()
        if log_node:
            tail = tuple(tail_log(deployment.log_path(log_node), lines=40))
        end = self.clock()
        cut = tuple((a, b) for a, b in read_partitions(self.deployment_dir))
        return Snapshot(taken_ms=end, deployment=deployment, samples=samples, error=error,
                        elapsed_ms=max(0, end - start), log_node=log_node, log_tail=tail, partitions=cut)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
