"""Tiny HTTP client for a node's admin port (SPEC 15): /health, /status, /metrics, /log/<h>."""

from __future__ import annotations

import http.client
import json

from infra.errors import RemoteError
from infra.model.manifest import schema_problems


def http_get(host: str, port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET and return (status, body). Raises OSError (incl. timeouts) when the node cannot be reached."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except http.client.HTTPException as e:
        raise OSError(f"bad HTTP from {host}:{port}: {e}") from e
    finally:
        conn.close()


def is_healthy(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        status, body = http_get(host, port, "/health", timeout)
    except OSError:
        return False
    return status == 200 and body == b"ok\n"


# what infra itself reads from /status; a document without these is unusable
ESSENTIAL = {"view": int, "leader": str, "in_view_change": bool, "height": int,
             "byzantine_evidence": list, "testbed_faults": list}


def get_status(host: str, port: int, timeout: float = 2.0, node_id: str = "?") -> tuple[dict, list[str]]:
    """The node's /status document and its status.schema.json violations (empty when conformant).
    Raises OSError if unreachable, RemoteError if the answer is unusable (not JSON, or lacks a field
    infra needs). A node that merely lags behind the schema stays usable, with its problems listed."""
    status, body = http_get(host, port, "/status", timeout)
    if status != 200:
        raise RemoteError(f"node {node_id} answered /status with HTTP {status}")
    try:
        doc = json.loads(body)
    except ValueError:
        raise RemoteError(f"node {node_id} answered /status with invalid JSON") from None
    if not isinstance(doc, dict):
        raise RemoteError(f"node {node_id} answered /status with a non-object")
    for key, kind in ESSENTIAL.items():
        if not isinstance(doc.get(key), kind):
            raise RemoteError(f"node {node_id} /status lacks a valid {key!r}")
    return doc, schema_problems(doc, "status.schema.json")


def get_log_entry(host: str, port: int, height: int, timeout: float = 2.0) -> bytes | None:
    """Canonical Decision bytes at `height` (QC absent), or None if not decided (404)."""
    status, body = http_get(host, port, f"/log/{height}", timeout)
    if status == 404:
        return None
    if status != 200:
        raise RemoteError(f"/log/{height} on {host}:{port} answered HTTP {status}")
    return body
