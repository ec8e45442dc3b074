"""Check a /status document against wire_spec/status.schema.json (when the spec is present).

Two levels: a document the monitor cannot use at all (not an object, wrong node, cluster or network,
no integer height or view) makes the node count as down; a usable document that otherwise breaks the
schema is an "off-spec" node: it stays up, the first violation is reported, and the fields the
monitor reads are sanitised so that a wrong type cannot break the display.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema

from infra.model.resources import SPEC_DIR
from tui.errors import RemoteError

SCHEMA_PATH = SPEC_DIR / "status.schema.json"
LISTS = ("peers", "byzantine_evidence", "testbed_faults")
INT_MAPS = ("counters", "rejected", "pending")


@functools.cache
def _validator() -> jsonschema.protocols.Validator | None:
    try:
        schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    except OSError:
        return None
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_map(value: Any) -> dict[str, int]:
    return {str(k): v for k, v in value.items() if _is_int(v)} if isinstance(value, dict) else {}


def sanitise(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of `doc` whose containers have the types the monitor reads."""
    out = dict(doc)
    for key in LISTS:
        value = doc.get(key)
        out[key] = [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []
    for key in INT_MAPS:
        out[key] = _int_map(doc.get(key))
    queues = doc.get("queues") if isinstance(doc.get("queues"), dict) else {}
    out["queues"] = {k: _int_map(queues.get(k)) for k in ("next_in", "next_out")}
    for key in ("last_decision_ms", "started_ms"):
        out[key] = doc.get(key) if _is_int(doc.get(key)) else 0
    out["in_view_change"] = doc.get("in_view_change") is True
    out["leader"] = doc.get("leader") if isinstance(doc.get("leader"), str) else ""
    return out


def check_status(doc: Any, node_id: str, cluster_id: str | None = None,
                 network_id: str | None = None) -> tuple[dict[str, Any], str | None]:
    """(sanitised document, first schema violation or None). RemoteError when `doc` is unusable:
    not an object, from another node, cluster or network (misconfigured or impersonated), or
    without an integer height and view."""
    if not isinstance(doc, dict):
        raise RemoteError("/status: not a JSON object")
    for key, expected in (("node_id", node_id), ("cluster_id", cluster_id), ("network_id", network_id)):
        if expected is not None and doc.get(key) != expected:
            raise RemoteError(f"/status {key} is {doc.get(key)!r}, expected {expected!r}")
    for key in ("height", "view"):
        if not _is_int(doc.get(key)) or doc[key] < 0:
            raise RemoteError(f"/status invalid at {key}: {doc.get(key)!r}")
    validator = _validator()
    violation = None
    if validator is not None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "document"
            violation = f"/status off-spec at {where}: {error.message[:120]}"
    return sanitise(doc), violation
