"""The load sweep of the Heraclius paper on a deployment: one client process per coordinator cluster
(SPEC 4.1 `workload`, impl_a's, impl_b's or impl_c's library by command line), a pool of closed-loop users
doubling at every step, GET-only on preloaded keys, PUT-only, mixed or payments-shaped. Per step:
completed ops/s, latency, errors, CPU of nodes / clients / the rest of the machine. Optionally
deploys each configuration itself (mixes side by side, or a scaling sweep) and destroys it after.

    result = run(BenchConfig(...), Target(name="default"), progress=print)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from infra import ops
from infra.bench import metrics as bench_metrics
from infra.bench import stats as bench_stats
from infra.bench.procstat import CpuSnapshot, loadavg, machine_info
from infra.errors import RemoteError, UsageError
from infra.model.deployment import Deployment, check_name, load_deployment
from infra.model.implementations import IMPLEMENTATIONS
from infra.nodes.client import REPO_ROOT, client_command

LETTERS = "".join(i.letter for i in IMPLEMENTATIONS.values())  # client libraries: a, b, c
CLIENT_CHOICES = (*LETTERS, "alternate", "diverse")

# put ratio, whether keys are preloaded, SPEC 4.1 --pattern
WORKLOADS = {
    "get": {"put_ratio": 0.0, "preload": True, "pattern": "uniform"},
    "put": {"put_ratio": 1.0, "preload": False, "pattern": "uniform"},
    "mixed": {"put_ratio": 0.5, "preload": True, "pattern": "uniform"},
    # pairs: GET a, GET b, PUT a, PUT b on two distinct account keys (the put ratio does not apply)
    "payments": {"put_ratio": 0.5, "preload": True, "pattern": "payments"},
}
KEY_BYTES = 32  # the paper's random 32-byte keys: SPEC 4.1 --key-bytes
HUGE_OPS = 1_000_000_000  # steps end by --duration-s, not by operation count


def _quiet(_msg: str) -> None:
    pass


@dataclass
class BenchConfig:
    """What to run on each deployment. users_* are totals over all coordinator clusters."""

    workload: str = "get"
    users_start: int = 8
    users_end: int = 256
    step_s: float = 10.0
    keys: int = 256
    client: str = "alternate"  # a, b, or alternate (by coordinator cluster index)
    put_ratio: float | None = None  # overrides the workload's
    timeout_ms: int = 10000
    seed: int = 1
    warmup_s: float = 1.0
    slo_p50_ms: float = 100.0

    def check(self) -> None:
        if self.workload not in WORKLOADS:
            raise UsageError(f"unknown workload {self.workload!r}", fix=f"use one of: {', '.join(WORKLOADS)}")
        if not 1 <= self.users_start <= self.users_end:
            raise UsageError("users must satisfy 1 <= --users-start <= --users-end")
        if self.step_s < 1:
            raise UsageError("--step-s must be at least 1 second")
        if self.keys < 1:
            raise UsageError("--keys must be at least 1")
        if self.client not in CLIENT_CHOICES:
            raise UsageError(f"unknown --client {self.client!r}", fix=f"use {', '.join(CLIENT_CHOICES)}")
        if self.put_ratio is not None and not 0 <= self.put_ratio <= 1:
            raise UsageError("--put-ratio must be in [0, 1]")

    @property
    def ratio(self) -> float:
        return WORKLOADS[self.workload]["put_ratio"] if self.put_ratio is None else self.put_ratio

    def user_steps(self) -> list[int]:
        steps, u = [], self.users_start
        while u <= self.users_end:
            steps.append(u)
            u *= 2
        return steps

    def key_prefix(self) -> str:
        return "acct-" if WORKLOADS[self.workload]["pattern"] == "payments" else f"bench{self.seed}-"

    def expected_keys(self) -> set[str]:
        """Hex of the keys the clients use: SHA-256(P || u64be(i)) cut to KEY_BYTES (SPEC 4.1)."""
        p = self.key_prefix().encode()
        return {hashlib.sha256(p + i.to_bytes(8, "big")).digest()[:KEY_BYTES].hex() for i in range(self.keys)}

    def key_args(self) -> list[str]:
        return ["--keys", str(self.keys), "--key-prefix", self.key_prefix(), "--key-bytes", str(KEY_BYTES)]

    def load_args(self) -> list[str]:
        pattern = WORKLOADS[self.workload]["pattern"]
        if pattern != "uniform":
            return ["--pattern", pattern]
        return ["--put-ratio", str(self.ratio)]


@dataclass
class Target:
    """Where to run: an existing deployment, or deploy one per (mix, scale) pair and destroy it."""

    name: str = "default"
    home: str | None = None
    deploy: bool = False
    mixes: list[str] = field(default_factory=lambda: ["alternate"])
    scales: list[int] = field(default_factory=lambda: [1])  # coordinator clusters = shard clusters = n
    coordinators: int | None = None  # without a scale sweep: explicit cluster counts
    shards: int | None = None
    keep: bool = False
    health_timeout: float = 60.0
    repeat: int = 1  # run every series this many times, rotating their order (load drift hits all alike)

    def series_specs(self) -> list[dict]:
        if not self.deploy:
            return [{"deployment": self.name}]
        specs = []
        for n in self.scales:
            for mix in self.mixes:
                c = self.coordinators if (self.coordinators and len(self.scales) == 1) else n
                s = self.shards if (self.shards and len(self.scales) == 1) else n
                specs.append({"mix": mix, "coordinators": c, "shards": s,
                              "deployment": check_name(f"{self.name}-{mix}-{c}x{s}"[:40].rstrip("-"))})
        return specs


# ---------------------------------------------------------------------------------------------
# client processes


@dataclass
class ClientRun:
    """One client process of a step (or of the preload)."""

    cluster: str
    client: str
    users: int
    history: Path
    stdout: Path
    proc: subprocess.Popen
    returncode: int | None = None
    cpu_s: float | None = None
    summary: dict | None = None

    def poll(self, block: bool = False) -> bool:
        """Reap the process if it ended (keeping its rusage); True once it has."""
        if self.returncode is not None:
            return True
        try:
            pid, status, usage = os.wait4(self.proc.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            self.returncode = self.proc.returncode if self.proc.returncode is not None else -1
            return True
        if pid == 0:
            return False
        self.returncode = os.waitstatus_to_exitcode(status)
        self.proc.returncode = self.returncode  # so Popen does not try to reap it again
        self.cpu_s = usage.ru_utime + usage.ru_stime
        lines = [ln for ln in self.stdout.read_text(errors="replace").splitlines() if ln.strip()]
        with contextlib.suppress(IndexError, ValueError):
            doc = json.loads(lines[-1])
            self.summary = doc if isinstance(doc, dict) else None
        return True

    def kill(self) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.poll(block=True)


def client_for(config: BenchConfig, index: int) -> str:
    """Client library of the index-th coordinator cluster: alternate = a, b, a, ...; diverse = every
    implementation's library in turn (a, b, c, a, ...); else the one given."""
    if config.client == "alternate":
        return "a" if index % 2 == 0 else "b"
    if config.client == "diverse":
        return LETTERS[index % len(LETTERS)]
    return config.client


def coordinators(dep: Deployment) -> list[str]:
    return [c["id"] for c in dep.clusters if c["role"] == "coordinator"]


def split_users(users: int, clusters: list[str]) -> dict[str, int]:
    """Users per coordinator cluster: as even as possible, the first clusters take the remainder."""
    q, r = divmod(users, len(clusters))
    return {c: q + (1 if i < r else 0) for i, c in enumerate(clusters) if q + (1 if i < r else 0) > 0}


def start_clients(dep: Deployment, config: BenchConfig, users: dict[str, int], workdir: Path, tag: str,
                  ops_each: int, duration_s: float | None, load_args: list[str], seed: int) -> list[ClientRun]:
    workdir.mkdir(parents=True, exist_ok=True)
    runs: list[ClientRun] = []
    all_coords = coordinators(dep)
    try:
        for cid, n in users.items():
            client = client_for(config, all_coords.index(cid))
            history = workdir / f"{tag}-{cid}.history.jsonl"
            history.unlink(missing_ok=True)
            args = ["--cluster", cid, "--timeout-ms", str(config.timeout_ms), "workload",
                    "--ops", str(ops_each), "--concurrency", str(n), *config.key_args(), *load_args,
                    "--seed", str(seed + all_coords.index(cid)), "--history", str(history)]
            if duration_s is not None:
                args += ["--duration-s", str(duration_s)]
            stdout = workdir / f"{tag}-{cid}.stdout"
            with open(stdout, "wb") as out, open(workdir / f"{tag}-{cid}.stderr", "wb") as err:
                proc = subprocess.Popen(client_command(dep, client, args), stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=err, cwd=REPO_ROOT, start_new_session=True)
            runs.append(ClientRun(cid, client, n, history, stdout, proc))
    except BaseException:
        for r in runs:
            r.kill()
        raise
    return runs


def _count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return 0


def wait_clients(runs: list[ClientRun], deadline_s: float, progress, label: str) -> None:
    """Wait for every client process, reporting ops so far; kill all of them at the deadline."""
    t0 = time.monotonic()
    try:
        while not all(r.poll() for r in runs):
            elapsed = time.monotonic() - t0
            if elapsed > deadline_s:
                raise RemoteError(f"{label}: client processes still running after {deadline_s:.0f} s",
                                  fix="raise --timeout-ms or check the deployment with `heraclius-ops status`")
            done = sum(_count_lines(r.history) for r in runs)
            progress(f"{label}: {elapsed:5.1f} s, {done} ops ({done / max(elapsed, 0.1):.0f}/s)")
            time.sleep(0.5)
    finally:
        for r in runs:
            r.kill()


# ---------------------------------------------------------------------------------------------
# preload and steps


def preload(dep: Deployment, config: BenchConfig, workdir: Path, progress=_quiet) -> dict:
    """PUT every key once (SPEC 4.1 --preload, through the first coordinator: the shard map spreads
    the keys anyway) and check from the history that each was written."""
    users = {coordinators(dep)[0]: min(32, config.keys)}
    runs = start_clients(dep, config, users, workdir, "preload", config.keys, None, ["--preload"], config.seed + 7919)
    wait_clients(runs, 60 + config.keys * config.timeout_ms / 1000 / sum(users.values()), progress, "preload")
    records = load_histories(runs)
    written = bench_stats.written_keys(records) & config.expected_keys()
    failed = sum(1 for rec in records if rec["result"] != "ok")
    return {"puts": len(records), "failed": failed, "keys": config.keys, "keys_written": len(written),
            "coverage": round(len(written) / config.keys, 4)}


def load_histories(runs: list[ClientRun]) -> list[dict]:
    try:
        return [rec for r in runs for rec in bench_stats.load_records(r.history)]
    except ValueError as e:
        raise RemoteError(f"a client wrote a history that breaks SPEC 4.1: {e}") from None


def node_pids(dep: Deployment) -> dict[int, str]:
    """pid -> implementation of every running node of the deployment."""
    dep.refresh()
    return {n.pid: n.implementation for n in dep.nodes if n.pid}


def run_step(dep: Deployment, config: BenchConfig, users: int, index: int, workdir: Path, progress=_quiet) -> dict:
    coords = coordinators(dep)
    per_cluster = split_users(users, coords)
    pids = node_pids(dep)
    counters_before, t_before = bench_metrics.snapshot(dep), time.monotonic()
    before = CpuSnapshot.take(list(pids))
    runs = start_clients(dep, config, per_cluster, workdir, f"step{index:02d}", HUGE_OPS, config.step_s,
                         config.load_args(), config.seed + 1000 * (index + 1))
    wait_clients(runs, config.step_s + config.timeout_ms / 1000 + 30, progress, f"{users} users")
    after = CpuSnapshot.take(list(pids))
    consensus = bench_metrics.delta(counters_before, bench_metrics.snapshot(dep), time.monotonic() - t_before)
    records = load_histories(runs)
    stats = bench_stats.summarise(records, config.warmup_s)
    node_cpu: dict[str, float] = {}
    for pid, used in after.used_since(before).items():
        node_cpu[pids[pid]] = node_cpu.get(pids[pid], 0.0) + used
    nodes_total = sum(node_cpu.values())
    clients_total = sum(r.cpu_s or 0.0 for r in runs)
    busy = after.busy - before.busy
    capacity = after.total - before.total
    return {
        "users": users,
        "users_per_cluster": per_cluster,
        "step_s": config.step_s,
        **stats,
        "cpu_s": {"nodes": {k: round(v, 2) for k, v in sorted(node_cpu.items())}, "nodes_total": round(nodes_total, 2),
                  "clients": round(clients_total, 2), "machine_busy": round(busy, 2),
                  "other": round(max(busy - nodes_total - clients_total, 0.0), 2), "machine_capacity": round(capacity, 2)},
        "node_cpu_ms_per_op": round(1000 * nodes_total / stats["ops_ok"], 3) if stats["ops_ok"] else None,
        "nodes_running": f"{len(after.per_pid)}/{len(dep.nodes)}",
        "consensus": consensus,
        "mean_batch": mean_batch(dep, consensus),
        "loadavg_1m": loadavg(),
        "clients": [{"cluster": r.cluster, "client": r.client, "users": r.users, "returncode": r.returncode,
                     "cpu_s": None if r.cpu_s is None else round(r.cpu_s, 2), "summary": r.summary} for r in runs],
    }


def mean_batch(dep: Deployment, consensus: dict[str, dict]) -> dict[str, float | None]:
    """Mean inputs per decision over the coordinator clusters and over the shard clusters."""
    out: dict[str, float | None] = {}
    for role in ("coordinator", "shard"):
        values = [consensus[c["id"]]["mean_batch"] for c in dep.clusters
                  if c["role"] == role and consensus.get(c["id"], {}).get("mean_batch") is not None]
        out[role] = round(sum(values) / len(values), 2) if values else None
    return out


def describe(dep: Deployment, config: BenchConfig) -> dict:
    coords = coordinators(dep)
    impls = {c["id"]: [n["implementation"] for n in c["nodes"]] for c in dep.clusters}
    kinds = {i for v in impls.values() for i in v}
    return {"deployment": dep.name, "coordinators": len(coords),
            "shards": sum(1 for c in dep.clusters if c["role"] == "shard"),
            "implementations": impls, "homogeneous": next(iter(kinds)) if len(kinds) == 1 else None,
            "clients": {cid: client_for(config, i) for i, cid in enumerate(coords)}}


def run_series(dep: Deployment, config: BenchConfig, workdir: Path, progress=_quiet, on_step=None) -> dict:
    series = describe(dep, config)
    if WORKLOADS[config.workload]["preload"]:
        progress(f"{dep.name}: preloading {config.keys} keys")
        series["preload"] = preload(dep, config, workdir, lambda m: progress(f"{dep.name}: {m}"))
    steps = []
    users_list = config.user_steps()
    for i, users in enumerate(users_list):
        def step_progress(m, i=i):
            progress(f"{dep.name}: step {i + 1}/{len(users_list)}, {m}")
        step = run_step(dep, config, users, i, workdir, step_progress)
        steps.append(step)
        if on_step:
            on_step(series, step)
    series["steps"] = steps
    series["peak"] = bench_stats.peak(steps)
    series["peak_within_slo"] = bench_stats.peak(steps, config.slo_p50_ms)
    return series


# ---------------------------------------------------------------------------------------------
# whole runs


def _ratio_entry(coordinators: int, shards: int, repeat, mixed: list[float],
                 homog: dict[str, list[float]]) -> dict | None:
    """mixed peak / fastest homogeneous peak, each the median over the given peaks."""
    if not mixed or not homog:
        return None
    best = max(homog, key=lambda k: statistics.median(homog[k]))
    m, h = statistics.median(mixed), statistics.median(homog[best])
    return {"coordinators": coordinators, "shards": shards, "repeat": repeat, "mixed_peak": round(m, 2),
            "fastest_homogeneous": best, "homogeneous_peak": round(h, 2), "ratio": round(m / h, 3) if h else None}


def diversity(series: list[dict]) -> list[dict]:
    """Cost of diversity per cluster count: peak of the mixed series / peak of the fastest homogeneous
    one, per repeat, and (with several repeats) from the median peaks (`repeat: "median"`)."""
    out = []
    for scale in sorted({(s["coordinators"], s["shards"]) for s in series}):
        same = [s for s in series if (s["coordinators"], s["shards"]) == scale and s["peak"]]
        repeats = sorted({s.get("repeat", 1) for s in same})
        for r in repeats + (["median"] if len(repeats) > 1 else []):
            chosen = same if r == "median" else [s for s in same if s.get("repeat", 1) == r]
            homog: dict[str, list[float]] = {}
            for s in chosen:
                if s["homogeneous"] is not None:
                    homog.setdefault(s["homogeneous"], []).append(s["peak"]["ops_per_s"])
            entry = _ratio_entry(scale[0], scale[1], r,
                                 [s["peak"]["ops_per_s"] for s in chosen if s["homogeneous"] is None], homog)
            if entry:
                out.append(entry)
    return out


def scaling(series: list[dict]) -> list[dict]:
    rows = [{"clusters": s["coordinators"] + s["shards"], "coordinators": s["coordinators"], "shards": s["shards"],
             "homogeneous": s["homogeneous"], "peak_ops_per_s": s["peak"]["ops_per_s"] if s["peak"] else 0.0}
            for s in series]
    return sorted(rows, key=lambda r: (r["homogeneous"] or "", r["clusters"]))


def rotation(specs: list[dict], repeat: int) -> list[tuple[int, dict]]:
    """(repeat index, spec) in run order: every repeat starts one series later than the previous."""
    return [(r, specs[(i + r) % len(specs)]) for r in range(repeat) for i in range(len(specs))]


def run(config: BenchConfig, target: Target, workdir: Path, command: str = "", progress=_quiet,
        on_step=None) -> dict:
    """Run every series of `target` and return the result document (see docs/benchmarks.md)."""
    config.check()
    started = datetime.now(UTC)
    doc = {"version": 1, "command": command, "started_utc": started.isoformat(timespec="seconds"),
           "machine": machine_info(), "config": asdict(config), "target": asdict(target),
           "key_prefix": config.key_prefix(), "series": []}
    specs = target.series_specs()
    for r, spec in rotation(specs, target.repeat):
        if target.deploy:
            name = spec["deployment"]
            progress(f"deploying {name} ({spec['coordinators']} coordinator + {spec['shards']} shard clusters, "
                     f"mix {spec['mix']})")
            ops.destroy(name, target.home)  # a leftover of an interrupted run
            try:
                dep = ops.deploy(name, target.home, regions=1, coordinators=spec["coordinators"],
                                 shards=spec["shards"], mix=spec["mix"], health_timeout=target.health_timeout,
                                 progress=progress)
                series = run_series(dep, config, workdir / name / f"r{r + 1}", progress, on_step)
            finally:
                if not target.keep:
                    progress(f"destroying {name}")
                    ops.destroy(name, target.home)
            series["mix"] = spec["mix"]
        else:
            dep = load_deployment(target.name, target.home)
            series = run_series(dep, config, workdir / dep.name / f"r{r + 1}", progress, on_step)
            series["mix"] = None
        series["repeat"], series["repeats"] = r + 1, target.repeat
        doc["series"].append(series)
    doc["diversity"] = diversity(doc["series"])
    doc["scaling"] = scaling(doc["series"]) if len({s["coordinators"] for s in doc["series"]}) > 1 else []
    doc["finished_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    doc["machine_after"] = machine_info()
    return doc
