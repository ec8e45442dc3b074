"""Consensus counters around a benchmark step, from each cluster's `/metrics` (SPEC 15): decisions
and batched inputs, hence decisions per second and the mean batch size each cluster reached."""

from __future__ import annotations

import re

from infra.model.deployment import Deployment
from infra.nodes.admin import http_get

COUNTERS = ("heraclius_decisions_total", "heraclius_batch_inputs_total")
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def parse_counters(text: str) -> dict[str, float]:
    """Sum of each wanted counter over its label sets, from Prometheus text format 0.0.4."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and m.group(1) in COUNTERS:
            try:
                found[m.group(1)] = found.get(m.group(1), 0.0) + float(m.group(3))
            except ValueError:
                continue
    return found


def snapshot(dep: Deployment, timeout: float = 2.0) -> dict[str, dict]:
    """Per cluster: the counters of the first of its nodes that answers (and which node that was).
    A cluster with no answering node is left out."""
    out = {}
    for c in dep.clusters:
        for n in dep.cluster_nodes(c["id"]):
            try:
                status, body = http_get(n.host, n.ports["admin"], "/metrics", timeout)
            except OSError:
                continue
            counters = parse_counters(body.decode(errors="replace")) if status == 200 else {}
            if all(k in counters for k in COUNTERS):
                out[c["id"]] = {"node": n.id, **counters}
                break
    return out


def delta(before: dict[str, dict], after: dict[str, dict], seconds: float) -> dict[str, dict]:
    """Per cluster: decisions, decisions/s and mean inputs per decision between two snapshots taken
    from the same node (a cluster whose node changed between them is left out)."""
    out = {}
    for cid, a in after.items():
        b = before.get(cid)
        if not b or b["node"] != a["node"]:
            continue
        decisions = a["heraclius_decisions_total"] - b["heraclius_decisions_total"]
        inputs = a["heraclius_batch_inputs_total"] - b["heraclius_batch_inputs_total"]
        out[cid] = {"node": a["node"], "decisions": int(decisions),
                    "decisions_per_s": round(decisions / seconds, 2) if seconds > 0 else None,
                    "mean_batch": round(inputs / decisions, 2) if decisions else None}
    return out
