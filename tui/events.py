"""Events derived by diffing successive polls: nodes up/down/restarted, view changes, Byzantine
evidence, verdict changes. Each event carries the time it was observed (or the evidence's time)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from tui.health import ClusterHealth
from tui.snapshot import Snapshot


@dataclass(frozen=True)
class Event:
    time_ms: int
    kind: str  # node_down, node_up, restart, spec, testbed, view_change, byzantine, verdict, deployment
    severity: str  # info, warn, alert
    text: str
    node: str | None = None
    cluster: str | None = None
    detail: str = ""


def clock_text(ms: int) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ms / 1000))


def fault_actions_of(status: dict) -> list[str]:
    return [str(rule.get("action")) for rule in status.get("testbed_faults", []) if isinstance(rule, dict)]


def evidence_key(ev: dict) -> tuple:
    """One misdeed reported by several nodes has one key (SPEC 15 evidence `id`)."""
    return (ev.get("node_id"), ev.get("kind"), ev.get("id"))


def diff(prev: Snapshot | None, prev_health: dict[str, ClusterHealth] | None, cur: Snapshot,
         cur_health: dict[str, ClusterHealth], seen_evidence: set[tuple]) -> list[Event]:
    """Events between two polls. `seen_evidence` is updated with the evidence reported now."""
    now = cur.taken_ms
    events: list[Event] = []
    if cur.error and (prev is None or prev.error != cur.error):
        events.append(Event(now, "deployment", "alert", f"deployment unreadable: {cur.error}"))
    if prev is not None and prev.error and not cur.error:
        events.append(Event(now, "deployment", "info", "deployment readable again"))
    if cur.deployment is None:
        return events
    for node in cur.deployment.nodes:
        new = cur.sample(node.id)
        old = prev.samples.get(node.id) if prev else None
        if old is None:
            if not new.up:
                events.append(Event(now, "node_down", "alert", f"{node.id} unreachable: {new.error}",
                                    node.id, node.cluster))
        elif old.up and not new.up:
            events.append(Event(now, "node_down", "alert", f"{node.id} down: {new.error}",
                                node.id, node.cluster))
        elif not old.up and new.up:
            events.append(Event(now, "node_up", "info", f"{node.id} up at height {new.status['height']}",
                                node.id, node.cluster))
        elif old.up and new.up and old.status.get("started_ms") != new.status.get("started_ms"):
            events.append(Event(now, "restart", "warn", f"{node.id} restarted", node.id, node.cluster))
        if new.up and new.violation != (old.violation if old is not None and old.up else None):
            if new.violation:
                events.append(Event(now, "spec", "warn", f"{node.id} {new.violation}", node.id, node.cluster))
            else:
                events.append(Event(now, "spec", "info", f"{node.id} /status follows the spec again",
                                    node.id, node.cluster))
        if new.up:
            rules = fault_actions_of(new.status)
            before = fault_actions_of(old.status) if old is not None and old.up else []
            if rules != before and (rules or (old is not None and old.up)):
                text = f"{node.id} testbed faults: {', '.join(rules)}" if rules else \
                    f"{node.id} testbed faults cleared"
                events.append(Event(now, "testbed", "warn", text, node.id, node.cluster))
    for cid, health in cur_health.items():
        old_health = (prev_health or {}).get(cid)
        if old_health is None:
            continue
        if health.view > old_health.view:
            events.append(Event(now, "view_change", "warn",
                                f"{cid} view {old_health.view} → {health.view}, leader {health.leader}",
                                cluster=cid))
        if health.assessment.verdict != old_health.assessment.verdict:
            a = health.assessment
            sev = {"healthy": "info", "degraded": "warn"}.get(a.verdict.word, "alert")
            events.append(Event(now, "verdict", sev,
                                f"{cid} {old_health.assessment.verdict.word} → {a.verdict.label}: {a.why}",
                                cluster=cid))
    for node in cur.deployment.nodes:
        sample = cur.sample(node.id)
        if not sample.up:
            continue
        for ev in sample.status.get("byzantine_evidence", []):
            key = evidence_key(ev)
            if key in seen_evidence:
                continue
            seen_evidence.add(key)
            signed = ev.get("messages_hex") or []
            shown = ", ".join(h[:16] + ("…" if len(h) > 16 else "") for h in signed) or "no message"
            events.append(Event(
                int(ev.get("time_ms") or now), "byzantine", "alert",
                f"{ev.get('node_id')} {ev.get('kind')} (seen by {node.id}): {ev.get('detail')}; signed {shown}",
                str(ev.get("node_id")), node.cluster,
                detail="\n".join(signed),
            ))
    return events
