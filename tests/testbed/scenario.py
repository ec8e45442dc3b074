"""Scenario toolkit for testbed tests: deploy networks whose clusters have their own implementation
mixes and short timeouts, read cluster state, wait for conditions, and check logs and histories.

Everything goes through infra's library (infra.providers.local.provider, infra.testbed.faults, infra.nodes.client) and the nodes'
SPEC 15 endpoints; nothing here imports an implementation."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from infra import ops
from infra.errors import RemoteError, UsageError
from infra.model import implementations
from infra.model.deployment import CLIENT_IDS, Deployment
from infra.model.manifest import DEFAULT_TIMEOUTS, validate_manifest, write_manifest
from infra.model.planner import IMPLEMENTATIONS, REGION_NAMES, ClusterPlan, NodePlan, Plan
from infra.nodes.admin import http_get
from infra.nodes.client import client_command, run_client
from infra.providers.local import provider as local
from infra.testbed import faults
from infra.testbed.history import check_history, compare_logs, load_history

# Short but not twitchy: the CI box has 2 shared cores, so a heartbeat timeout much below a second
# turns scheduler hiccups into spurious view changes.
FAST_TIMEOUTS = {
    **DEFAULT_TIMEOUTS,
    "heartbeat_interval": 150, "heartbeat_timeout": 1500, "request_forward": 500, "censorship": 2500,
    "view_change": 2000, "queue_long_poll": 500, "sync_retry": 250, "client_timeout": 4000,
}


@dataclass(frozen=True)
class ClusterSpec:
    """One cluster of a scenario network: id, role and member implementations ('aabb' = a,a,b,b;
    'abca' = impl_a, impl_b, impl_c, impl_a: letters of infra.model.implementations)."""

    id: str
    role: str
    mix: str

    def implementations(self) -> list[str]:
        if len(self.mix) < 4 or (len(self.mix) - 1) % 3 or any(c not in IMPLEMENTATIONS for c in self.mix):
            raise UsageError(f"cluster {self.id}: mix {self.mix!r} must be 3f+1 letters of {'/'.join(IMPLEMENTATIONS)}")
        return [IMPLEMENTATIONS[c] for c in self.mix]


def make_plan(specs: list[ClusterSpec], regions: int = 3) -> Plan:
    """Member i of cluster k goes to region (i + k) mod R, as infra.model.planner does."""
    names = REGION_NAMES[:regions]
    clusters = []
    for k, spec in enumerate(specs):
        c = ClusterPlan(spec.id, spec.role)
        for i, impl in enumerate(spec.implementations()):
            c.nodes.append(NodePlan(f"{spec.id}-n{i}", spec.id, spec.role, i, impl, names[(i + k) % len(names)]))
        clusters.append(c)
    return Plan(names, clusters)


def require_implementations(specs: list[ClusterSpec]) -> None:
    """Skip the calling test when an implementation its network needs cannot run here (impl_c not
    built: no Go); CI builds every implementation (./dev setup) and sets
    HERACLIUS_REQUIRE_ALL_IMPLEMENTATIONS=1, which turns the skip into a failure."""
    import os

    import pytest
    for name in dict.fromkeys(i for s in specs for i in s.implementations()):
        missing = implementations.get(name).missing()
        if missing:
            if os.environ.get("HERACLIUS_REQUIRE_ALL_IMPLEMENTATIONS") == "1":
                pytest.fail(f"{name}: {missing}")
            pytest.skip(f"{name}: {missing} (./dev setup builds it; needs Go 1.26)")


def deploy(name: str, home: Path, specs: list[ClusterSpec], timeouts: dict | None = None,
           testbed: bool = True, health_timeout: float = 60.0, regions: int = 3,
           network: str = "loopback", not_started: tuple[str, ...] = ()) -> Deployment:
    """Create the deployment with `timeouts` (default FAST_TIMEOUTS), start every node except
    `not_started` and wait until they are healthy. Skips (see require_implementations) when an
    implementation of `specs` is not built here."""
    require_implementations(specs)
    plan = make_plan(specs, regions)
    plan.timeouts_ms = dict(timeouts or FAST_TIMEOUTS)
    dep = local.create(plan, name, home, testbed, network=network)
    try:
        if not not_started:
            return local.start_all(dep, health_timeout)
        start(dep, [n.id for n in dep.nodes if n.id not in not_started], health_timeout)
        return dep
    except BaseException:
        ops.destroy(name, home)
        raise


# --- reading the network ---------------------------------------------------------------------

def admin_get(dep: Deployment, node_id: str, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET on the node's admin port (SPEC 15); raises OSError when it cannot be reached."""
    return http_get(*dep.node(node_id).admin, path, timeout=timeout)


def node_status(dep: Deployment, node_id: str, timeout: float = 2.0) -> dict | None:
    """The node's /status, or None when it does not answer (down, paused, overloaded)."""
    try:
        code, body = admin_get(dep, node_id, "/status", timeout)
        doc = json.loads(body) if code == 200 else None
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def log_entries(dep: Deployment, node_id: str, upto: int, timeout: float = 5.0) -> list[bytes]:
    """/log/1..upto of one node (stops at the first 404)."""
    out = []
    for h in range(1, upto + 1):
        code, body = admin_get(dep, node_id, f"/log/{h}", timeout)
        if code == 404:
            break
        if code != 200:
            raise RemoteError(f"{node_id} answered /log/{h} with HTTP {code}")
        out.append(body)
    return out


def cluster_status(dep: Deployment, cluster_id: str) -> dict[str, dict | None]:
    ids = [n.id for n in dep.cluster_nodes(cluster_id)]
    with ThreadPoolExecutor(max_workers=len(ids)) as pool:
        return dict(zip(ids, pool.map(lambda i: node_status(dep, i), ids), strict=True))


def leader(dep: Deployment, cluster_id: str) -> str | None:
    """Leader of the highest view that a majority of answering members agree on, else None."""
    sts = [s for s in cluster_status(dep, cluster_id).values() if s and not s["in_view_change"]]
    votes: dict[tuple[int, str], int] = {}
    for s in sts:
        votes[(s["view"], s["leader"])] = votes.get((s["view"], s["leader"]), 0) + 1
    f = (len(dep.cluster_nodes(cluster_id)) - 1) // 3
    agreed = [k for k, v in votes.items() if v >= 2 * f + 1 or (v >= f + 1 and v == len(sts))]
    return max(agreed)[1] if agreed else None


def heights(dep: Deployment, cluster_id: str) -> dict[str, int | None]:
    return {i: (s["height"] if s else None) for i, s in cluster_status(dep, cluster_id).items()}


def wait_for(predicate: Callable[[], object], timeout: float, what: str, poll: float = 0.3):
    """Poll until `predicate()` is truthy and return its value; AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def wait_leader(dep: Deployment, cluster_id: str, timeout: float = 30.0, other_than: str | None = None) -> str:
    def ok():
        ld = leader(dep, cluster_id)
        return ld if ld and ld != other_than else None
    return wait_for(ok, timeout, f"an agreed leader of {cluster_id}" + (f" other than {other_than}" if other_than else ""))


def wait_heights(dep: Deployment, cluster_id: str, at_least: int, nodes: list[str] | None = None,
                 timeout: float = 40.0) -> dict[str, int | None]:
    """Wait until every node in `nodes` (default: the whole cluster) has decided `at_least`."""
    ids = nodes or [n.id for n in dep.cluster_nodes(cluster_id)]

    def ok():
        hs = heights(dep, cluster_id)
        return hs if all((hs[i] or 0) >= at_least for i in ids) else None
    try:
        return wait_for(ok, timeout, f"{ids} to reach height {at_least}")
    except AssertionError as e:
        raise AssertionError(f"{e}; heights now {heights(dep, cluster_id)}") from None


def wait_converged(dep: Deployment, cluster_id: str, nodes: list[str] | None = None, timeout: float = 40.0) -> int:
    """Wait until the given nodes report one common height; return it."""
    ids = nodes or [n.id for n in dep.cluster_nodes(cluster_id)]

    def ok():
        hs = heights(dep, cluster_id)
        vals = {hs[i] for i in ids}
        return (vals.pop(),) if len(vals) == 1 and None not in vals else None  # height 0 is a result
    try:
        return wait_for(ok, timeout, f"{ids} to converge")[0]
    except AssertionError as e:
        raise AssertionError(f"{e}; heights now {heights(dep, cluster_id)}") from None


def assert_logs_identical(dep: Deployment, cluster_id: str, min_height: int = 1, all_nodes: bool = True,
                          timeout: float = 40.0) -> int:
    """Wait for convergence, then compare /log/1..h byte for byte on every node (or every answering
    node). Returns the compared height."""
    ids = [n.id for n in dep.cluster_nodes(cluster_id)]
    if all_nodes:
        wait_converged(dep, cluster_id, timeout=timeout)
    hs = {i: h for i, h in heights(dep, cluster_id).items() if h is not None}
    if all_nodes:
        assert sorted(hs) == ids, f"not every node of {cluster_id} answers: {hs}"
    low = min(hs.values(), default=0)
    with ThreadPoolExecutor(max_workers=len(hs) or 1) as pool:
        logs = dict(zip(hs, pool.map(lambda i: log_entries(dep, i, low), hs), strict=True))
    check = compare_logs(cluster_id, logs)
    assert check.ok, check.summary()
    assert check.compared_to >= min_height, check.summary()
    return check.compared_to


def evidence(dep: Deployment, node_ids: list[str] | None = None) -> list[dict]:
    """Byzantine evidence records reported by the given nodes (default every node), with reporter."""
    out = []
    for n in dep.nodes:
        if node_ids is not None and n.id not in node_ids:
            continue
        st = node_status(dep, n.id)
        for e in (st or {}).get("byzantine_evidence", []):
            out.append({**e, "reporter": n.id})
    return out


def rejected(dep: Deployment, node_id: str) -> dict[str, int]:
    st = node_status(dep, node_id) or {}
    return dict(st.get("rejected", {}))


# --- clients ---------------------------------------------------------------------------------

def shard_of(dep: Deployment, key: str) -> str:
    """SPEC 3 shard map."""
    shards = dep.manifest["shard_map"]["shards"]
    return shards[int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % len(shards)]


def keys_on_shards(dep: Deployment, prefix: str, per_shard: int) -> dict[str, list[str]]:
    """`per_shard` key names with `prefix` owned by each shard."""
    out: dict[str, list[str]] = {s: [] for s in dep.manifest["shard_map"]["shards"]}
    i = 0
    while any(len(v) < per_shard for v in out.values()):
        k = f"{prefix}{i}"
        if len(out[shard_of(dep, k)]) < per_shard:
            out[shard_of(dep, k)].append(k)
        i += 1
    return out


def kv(dep: Deployment, client: str, *args: str, cluster: str | None = None, timeout_ms: int = 15000,
       manifest: Path | None = None) -> dict:
    """One get/put through a client library's command line; returns its JSON document."""
    extra = ["--cluster", cluster] if cluster else []
    cmd_args = [*extra, "--timeout-ms", str(timeout_ms), *args]
    if manifest is None:
        return run_client(dep, client, cmd_args, timeout_ms / 1000 + 20).doc
    return run_client_with_manifest(dep, client, manifest, cmd_args, timeout_ms / 1000 + 20)


def run_client_with_manifest(dep: Deployment, client: str, manifest: Path, args: list[str], timeout_s: float) -> dict:
    """A client command that reads `manifest` instead of the deployment's (Twins observers)."""
    cmd = [*implementations.get(client).command("client"), "--manifest", str(manifest),
           "--key", str(dep.client_key(CLIENT_IDS[client])), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=local.REPO_ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"client timed out after {timeout_s:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"error": f"no JSON from client (exit {proc.returncode}): {proc.stderr[-500:]}"}


def checked_workload(dep: Deployment, history: Path, prefix: str, ops: int = 30, keys: int = 6,
                     clients: tuple[str, ...] = ("a", "b"), seed: int = 1, cluster: str | None = None,
                     concurrency: int = 3, allow_failures: bool = False, timeout_ms: int = 10000) -> list[dict]:
    """Run a write/read workload with each client library, then a read-only pass over the same keys
    (final reads), all into `history`; assert every op succeeded (unless allowed) and the merged
    history is linearizable. Returns the workload summaries."""
    head = [*(["--cluster", cluster] if cluster else []), "--timeout-ms", str(timeout_ms), "workload"]

    def args(n: int, conc: int, ratio: str, s: int) -> list[str]:
        return [*head, "--ops", str(n), "--concurrency", str(conc), "--keys", str(keys), "--put-ratio", ratio,
                "--seed", str(s), "--key-prefix", prefix, "--history", str(history)]
    docs = []
    for i, client in enumerate(clients):
        r = run_client(dep, client, args(ops, concurrency, "0.6", seed + i), 180)
        assert allow_failures or (r.ok and r.doc.get("ok") == ops), f"client {client}: {r.doc} {r.stderr[-500:]}"
        docs.append(r.doc)
    final = run_client(dep, clients[0], args(keys, 1, "0", seed + 99), 120)
    assert allow_failures or final.ok, final.doc
    report = check_history(load_history(history))
    assert report.ok, f"{report.summary()}: {report.violations[:3]}"
    assert report.reads_checked > 0, report.summary()
    return docs


# --- changing nodes --------------------------------------------------------------------------

def set_rules(dep: Deployment, rules: dict[str, list[dict]], timeout: float = 60.0,
              restart_nodes: list[str] | None = None) -> None:
    """Give several nodes their SPEC 16 `faults` (empty list clears) in one manifest write, then
    restart those nodes (or only `restart_nodes`) together; the others keep what they read at start."""
    m = copy.deepcopy(dep.manifest)
    for c in m["clusters"]:
        for n in c["nodes"]:
            if n["id"] in rules:
                if rules[n["id"]]:
                    n["faults"] = rules[n["id"]]
                else:
                    n.pop("faults", None)
    write_manifest(dep.manifest_path, validate_manifest(m))
    restart(dep, list(rules) if restart_nodes is None else restart_nodes, timeout)


def restart(dep: Deployment, node_ids: list[str], timeout: float = 60.0) -> None:
    """Clean stop (if running) then start with the same data dirs; wait for /health."""
    local.stop_nodes(dep, node_ids)
    start(dep, node_ids, timeout)


def start(dep: Deployment, node_ids: list[str], timeout: float = 60.0) -> None:
    """Start stopped or crashed nodes with their data dirs; wait for /health. A port still held
    for a moment after kill -9 (seen under load) is retried for up to 15 s."""
    for i in node_ids:
        deadline = time.monotonic() + 15
        while True:
            try:
                local.start_node(dep, i)
                break
            except UsageError as e:
                if "already in use" not in e.message or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    local.wait_healthy(dep, node_ids, timeout)


def background_workload(dep: Deployment, client: str, history: Path, prefix: str, ops: int, seed: int,
                        duration_s: float, log: Path, concurrency: int = 3, keys: int = 6,
                        timeout_ms: int = 8000) -> subprocess.Popen:
    """Start a workload client process without waiting (the caller kills it in a finalizer)."""
    args = ["--timeout-ms", str(timeout_ms), "workload", "--ops", str(ops), "--concurrency", str(concurrency),
            "--keys", str(keys), "--put-ratio", "0.6", "--seed", str(seed), "--key-prefix", prefix,
            "--duration-s", str(duration_s), "--history", str(history)]
    with open(log, "ab") as out:
        return subprocess.Popen(client_command(dep, client, args), stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL, cwd=local.REPO_ROOT)


def view_table(dep: Deployment, cluster_id: str) -> dict[str, tuple | None]:
    """node -> (view, leader, in_view_change), None for a node that does not answer."""
    return {i: ((s["view"], s["leader"], s["in_view_change"]) if s else None)
            for i, s in cluster_status(dep, cluster_id).items()}


def in_one_view(dep: Deployment, cluster_id: str) -> bool:
    table = view_table(dep, cluster_id)
    return None not in table.values() and len(set(table.values())) == 1 and not next(iter(table.values()))[2]


def heal_views(dep: Deployment, cluster_id: str, timeout: float = 60.0) -> None:
    """Bring every member of a cluster into one view. A member that missed a view change while it
    was down stays in its old view (errata/faults.md F1). Pausing the current leader (SIGSTOP)
    makes the others change view, and late members join it (SPEC 12.6 Join); the paused leader's
    sockets stay open, so on resume it reads the buffered ViewChange/NewView and follows too."""
    down = [n.id for n in dep.cluster_nodes(cluster_id) if not local.node_pid_alive(dep, n.id)]
    if down:
        start(dep, down)
    try:
        wait_for(lambda: in_one_view(dep, cluster_id), 5, "one view")
        return
    except AssertionError:
        pass
    rotate_leader(dep, cluster_id, timeout)


def rotate_leader(dep: Deployment, cluster_id: str, timeout: float = 60.0) -> str:
    """Move the cluster to a later view with every member up (see heal_views); return the new leader."""
    ld = wait_leader(dep, cluster_id, timeout)
    faults.pause(dep, ld)
    try:
        wait_for(lambda: leader(dep, cluster_id) not in (None, ld), timeout,
                 f"{cluster_id} to agree on a leader other than the paused {ld}")
    finally:
        faults.resume(dep, ld)
    wait_for(lambda: in_one_view(dep, cluster_id), timeout,
             f"{cluster_id} to agree on one view again: {view_table(dep, cluster_id)}")
    return wait_leader(dep, cluster_id, timeout)


def faulty_leader(dep: Deployment, cluster_id: str, rules: list[dict], timeout: float = 60.0) -> str:
    """Make the leader of the next view run `rules`, then move the cluster into that view.
    (Restarting the current leader with rules would itself cause a view change, leaving the rules
    on a follower.) Returns the faulty leader's id."""
    members = [n.id for n in dep.cluster_nodes(cluster_id)]
    ld = wait_leader(dep, cluster_id, timeout)
    view = next(s for s in cluster_status(dep, cluster_id).values() if s and s["leader"] == ld)["view"]
    nxt = members[(view + 1) % len(members)]
    set_rules(dep, {nxt: rules}, timeout)
    wait_for(lambda: in_one_view(dep, cluster_id), timeout, f"{cluster_id} in one view after restarting {nxt}")
    new = rotate_leader(dep, cluster_id, timeout)
    for _ in range(len(members)):  # a view change that times out skips a leader: go round again
        if new == nxt:
            return nxt
        new = rotate_leader(dep, cluster_id, timeout)
    raise AssertionError(f"{cluster_id}: {nxt} never became leader (last: {new})")


def kill9_every_node_under_load(dep: Deployment, tmp: Path, clients: str, check_client: str,
                                clusters: tuple[str, ...]) -> None:
    """Workloads of `clients` run while every node is killed with -9 and restarted; then nothing
    acknowledged is lost (final reads by `check_client` in a linearizable history) and the logs of
    `clusters` agree."""
    h = tmp / "h.jsonl"
    procs = [background_workload(dep, c, h, "k9-", ops=400, seed=20 + i, duration_s=12,
                                 log=tmp / f"wl-{c}.log") for i, c in enumerate(clients)]
    try:
        time.sleep(4)
        for n in dep.nodes:
            faults.crash(dep, n.id)
        start(dep, [n.id for n in dep.nodes])
        for p in procs:
            p.wait(timeout=90)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    acked = [line for line in h.read_text().splitlines() if '"result": "ok"' in line or '"result":"ok"' in line]
    assert len(acked) >= 5, f"too few acknowledged operations before the crash: {len(acked)}"
    checked_workload(dep, h, "k9-", ops=6, keys=6, clients=(check_client,), seed=40)
    for c in clusters:
        assert_logs_identical(dep, c)
