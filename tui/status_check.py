"""Check a /status document against wire_spec/status.schema.json (when the spec is present)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

from tui.errors import RemoteError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "wire_spec" / "status.schema.json"
_FALLBACK_REQUIRED = ("node_id", "cluster_id", "view", "leader", "height", "peers", "counters")


@functools.cache
def _validator() -> jsonschema.protocols.Validator | None:
    try:
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    except OSError:
        return None
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def check_status(doc: Any, node_id: str, cluster_id: str | None = None, network_id: str | None = None) -> None:
    """RemoteError when `doc` is not a valid status of node `node_id` (of that cluster and network,
    when given: a node answering for another network or cluster is misconfigured or impersonated)."""
    if not isinstance(doc, dict):
        raise RemoteError("/status: not a JSON object")
    validator = _validator()
    if validator is not None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "document"
            raise RemoteError(f"/status invalid at {where}: {error.message[:120]}")
    else:
        missing = [k for k in _FALLBACK_REQUIRED if k not in doc]
        if missing:
            raise RemoteError(f"/status lacks {', '.join(missing)}")
    for key, expected in (("node_id", node_id), ("cluster_id", cluster_id), ("network_id", network_id)):
        if expected is not None and doc.get(key) != expected:
            raise RemoteError(f"/status {key} is {doc.get(key)!r}, expected {expected!r}")
