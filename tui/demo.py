"""A fixed, scripted 3-region deployment (coordinator c0, shards s0 and s1) for screenshots,
snapshot tests and trying the monitor without a network:

    python -m tui.demo                       # run the monitor on scripted data
    python -m tui.demo --screenshot FILE.svg [--size 100x30]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from infra.model.topology import load_topology as load_deployment
from tui.logfile import tail_log
from tui.snapshot import NodeSample, Snapshot

T0_MS = 1795672800000  # 2026-11-26T06:00:00Z
REGIONS = ("us-east", "eu-west", "ap-south")
CLUSTERS = (("c0", "coordinator"), ("s0", "shard"), ("s1", "shard"))


def _hex32(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


IMPL_C_NODE = "c0-n3"  # the demo's one impl_c (Go) node


def demo_implementation(node_id: str, index: int) -> str:
    """Implementations alternate A/B, except one impl_c node in the coordinator cluster."""
    if node_id == IMPL_C_NODE:
        return "impl_c"
    return "impl_a" if index % 2 == 0 else "impl_b"


BACKENDS = {"impl_a": ("libsodium 1.0.20", "protobuf-upb 7.36.2"), "impl_b": ("OpenSSL 3.5.0", "impl_b wirecodec"),
            "impl_c": ("Go crypto/ed25519 (go1.26)", "impl_c generated codec")}


def demo_manifest(admin_ports: dict[str, int] | None = None, testbed: bool = True,
                  clusters: tuple[tuple[str, str], ...] = CLUSTERS) -> dict[str, Any]:
    """Manifest of 4-node clusters spread over three regions, implementations alternating A/B
    (one impl_c node, c0-n3). `admin_ports` maps node id -> admin port (default: fixed, unused ports)."""
    out_clusters = []
    port = 20000
    for cid, role in clusters:
        nodes = []
        for i in range(4):
            nid = f"{cid}-n{i}"
            nodes.append({
                "id": nid, "implementation": demo_implementation(nid, i),
                "region": REGIONS[i % 3], "host": "127.0.0.1",
                "ports": {"peer": port, "client": port + 1,
                          "admin": (admin_ports or {}).get(nid, port + 2)},
                "ed25519_public": _hex32("ed" + nid), "x25519_public": _hex32("x" + nid),
            })
            port += 3
        out_clusters.append({"id": cid, "role": role, "nodes": nodes})
    return {
        "version": 1, "network_id": "heraclius-demo", "testbed": testbed, "regions": list(REGIONS),
        "clusters": out_clusters,
        "shard_map": {"function": "sha256-u64-mod", "shards": [c for c, r in clusters if r == "shard"]},
        "clients": [{"id": "alice", "ed25519_public": _hex32("alice")}],
    }


def write_deployment(directory: Path, manifest: dict[str, Any], logs: bool = False) -> Path:
    """Write manifest.json (and, with logs, a few SPEC 4 log lines per node) into directory."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1))
    (directory / "logs").mkdir(exist_ok=True)
    if logs:
        for cluster in manifest["clusters"]:
            for node in cluster["nodes"]:
                lines = [{"ts": "2026-11-26T05:50:00.000Z", "level": "info", "node": node["id"],
                          "event": "ready", "msg": "listening"}]
                lines += [{"ts": f"2026-11-26T06:00:0{k}.000Z", "level": "info", "node": node["id"],
                           "event": "decided", "msg": "decided", "height": 100 + k} for k in range(3)]
                (directory / "logs" / f"{node['id']}.log").write_text(
                    "".join(json.dumps(line) + "\n" for line in lines))
    return directory


def status_doc(node_id: str, cluster_id: str, role: str, peers: list[str], *, height: int = 0,
               view: int = 0, now_ms: int = T0_MS, implementation: str = "impl_a",
               decisions: int | None = None, client_requests: int = 0, client_replies: int = 0,
               rejected: dict[str, int] | None = None, evidence: list[dict] | None = None,
               down_peers: tuple[str, ...] = (), next_in: dict[str, int] | None = None,
               next_out: dict[str, int] | None = None, in_view_change: bool = False,
               started_ms: int = T0_MS - 600_000, client_errors: int = 0,
               pending: tuple[int, int] = (0, 0), other_peers: dict[str, str] | None = None,
               ) -> dict[str, Any]:
    """A /status document valid against wire_spec/status.schema.json. `peers` are the other
    members of its cluster; `other_peers` maps nodes of other clusters it dials to their cluster."""
    members = sorted(peers + [node_id])
    dialled = [(p, cluster_id) for p in peers] + sorted((other_peers or {}).items())
    return {
        "node_id": node_id, "cluster_id": cluster_id, "role": role, "implementation": implementation,
        "crypto_backend": BACKENDS.get(implementation, BACKENDS["impl_b"])[0],
        "codec": BACKENDS.get(implementation, BACKENDS["impl_b"])[1],
        "network_id": "heraclius-demo", "view": view, "leader": members[view % len(members)],
        "in_view_change": in_view_change, "height": height,
        "head_hash": _hex32(f"{cluster_id}/{height}"),
        "last_decision_ms": now_ms - 150 if height else 0, "started_ms": started_ms,
        "peers": [{"node_id": p, "cluster_id": c, "connected": p not in down_peers,
                   "last_seen_ms": now_ms - 100} for p, c in dialled],
        "queues": {"next_in": next_in or {}, "next_out": next_out or {}},
        "pending": {"requests": pending[0], "remote": pending[1]},
        "counters": {"decisions": height if decisions is None else decisions,
                     "view_changes": view, "client_requests": client_requests,
                     "client_replies": client_replies, "client_errors": client_errors,
                     "client_bundles": client_requests // 8},
        "rejected": rejected or {}, "byzantine_evidence": evidence or [], "testbed_faults": [],
    }


REPLIES = (0, 30, 75, 135)  # cumulative client answers of c0-n1 at each step

def evidence_id(messages_hex: list[str]) -> str:
    """SPEC 15: hex SHA-256 of the messages' bytes, sorted bytewise, concatenated."""
    return hashlib.sha256(b"".join(sorted(bytes.fromhex(m) for m in messages_hex))).hexdigest()


_SIGNED = ["0a02633010001876" + "ab" * 20, "0a02633010001876" + "cd" * 20]
EVIDENCE = {
    "id": evidence_id(_SIGNED), "node_id": "c0-n0", "kind": "equivocation",
    "detail": "two proposals for view 0 height 118", "time_ms": T0_MS + 1500, "messages_hex": _SIGNED,
}


def demo_statuses(step: int) -> dict[str, dict[str, Any] | None]:
    """Node id -> status (None = unreachable) at poll `step` (one second apart). The story: c0
    changes view after c0-n0 equivocates, s1-n3 goes down at step 2, traffic keeps flowing."""
    now = T0_MS + 1000 * step
    out: dict[str, dict[str, Any] | None] = {}
    for cid, role in CLUSTERS:
        ids = [f"{cid}-n{i}" for i in range(4)]
        others = {f"{oc}-n{k}": oc for oc, orole in CLUSTERS if orole != role for k in range(4)}
        for i, nid in enumerate(ids):
            if nid == "s1-n3" and step >= 2:
                out[nid] = None
                continue
            view = 1 if cid == "c0" and step >= 2 else 0
            base = {"c0": 120, "s0": 60, "s1": 58}[cid]
            height = base + step * (3 if cid == "c0" else 1 + (step % 2))
            queues = ({"next_in": {"s0": 30 + step, "s1": 29 + step},
                       "next_out": {"s0": 31 + step, "s1": 30 + step}} if role == "coordinator"
                      else {"next_in": {"c0": 31 + step}, "next_out": {"c0": 30 + step}})
            out[nid] = status_doc(
                nid, cid, role, [p for p in ids if p != nid], height=height, view=view, now_ms=now,
                implementation=demo_implementation(nid, i),
                client_requests=(402 + REPLIES[step]) * (i == 1),
                client_replies=(400 + REPLIES[step]) * (i == 1),
                rejected={"stale": 3 + step, "bad_signature": 2} if cid == "c0" else {"stale": 1},
                evidence=[EVIDENCE] if cid == "c0" and step >= 2 and i > 0 else [],
                down_peers=("s1-n3",) if step >= 2 else (), other_peers=others,
                client_errors=(3 * step) * (i == 1), pending=(2, 1) if role == "coordinator" else (0, 1),
                next_in=queues["next_in"], next_out=queues["next_out"],
            )
    return out


class ScriptedSource:
    """A Source that replays `statuses(step)` with a clock advancing one second per poll; after
    `steps` polls it repeats the last step (same data, same time), so screens become stable."""

    def __init__(self, deployment_dir: Path, statuses=demo_statuses, steps: int = 4) -> None:
        self.deployment = load_deployment(deployment_dir)
        self.statuses = statuses
        self.steps = steps
        self.polls = 0

    def poll(self, log_node: str | None = None) -> Snapshot:
        step = min(self.polls, self.steps - 1)
        self.polls += 1
        docs = self.statuses(step)
        samples = {
            nid: NodeSample(nid, status=doc) if doc is not None
            else NodeSample(nid, error="/status: connection refused")
            for nid, doc in docs.items()
        }
        tail = tuple(tail_log(self.deployment.log_path(log_node), lines=40)) if log_node else ()
        return Snapshot(taken_ms=T0_MS + 1000 * step, deployment=self.deployment, samples=samples,
                        elapsed_ms=12, log_node=log_node, log_tail=tail)

    def close(self) -> None:
        pass


def demo_app(deployment_dir: Path, steps: int = 4, poll_interval: float = 0.05,
             max_polls: int | None = None):
    """The monitor on the demo data; with max_polls it stops polling (a still picture)."""
    from tui.app import MonitorApp

    write_deployment(deployment_dir, demo_manifest(), logs=True)
    return MonitorApp(deployment_dir, poll_interval=poll_interval, max_polls=max_polls,
                      source=ScriptedSource(deployment_dir, steps=steps), actions=demo_action)


def demo_action(_deployment_dir: Path, action: str, node_id: str, _region: str) -> str:
    """The demo's fault keys: fixed data, so nothing to break."""
    return f"{action} {node_id}: demo data, nothing done"


async def save_screenshot(path: Path, size: tuple[int, int], deployment_dir: Path) -> None:
    app = demo_app(deployment_dir, poll_interval=1.0, max_polls=5)
    async with app.run_test(size=size) as pilot:
        while app.state.polls < 5:
            await pilot.pause(0.05)
        await pilot.pause()
        app.save_screenshot(filename=path.name, path=str(path.parent))


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--screenshot", type=Path, help="write an SVG screenshot here and exit")
    parser.add_argument("--size", default="100x30", help="terminal size for --screenshot, WxH")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.screenshot:
            w, h = (int(x) for x in args.size.split("x"))
            asyncio.run(save_screenshot(args.screenshot.resolve(), (w, h), Path(tmp)))
            print(args.screenshot)
        else:
            demo_app(Path(tmp), poll_interval=1.0).run()


if __name__ == "__main__":
    main()
