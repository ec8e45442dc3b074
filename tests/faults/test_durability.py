"""Durability: kill -9 with torn data files, and kill -9 of every node under load (SPEC 12.8, 12.9).

Data-dir layout, seen from outside (ls after kill -9, no code read): impl_a keeps SQLite in WAL mode
(`node.sqlite`, `node.sqlite-wal`, `node.sqlite-shm`, `LOCK`), impl_b keeps LMDB (`lmdb/data.mdb`,
`lmdb/lock.mdb`, `LOCK`). The most recently written file that is neither a lock nor the SQLite
shared-memory index is where the last record went: `node.sqlite-wal` and `lmdb/data.mdb`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from infra.nodes import process
from infra.providers.local import provider as local
from infra.testbed import faults
from tests.testbed import scenario as sc


def last_written_file(data_dir: Path) -> Path:
    files = [p for p in data_dir.rglob("*") if p.is_file() and p.stat().st_size > 0
             and "lock" not in p.name.lower() and not p.name.endswith("-shm")]
    return max(files, key=lambda p: p.stat().st_mtime_ns)


def caught_up_or_fail_stopped(net, node_id: str, cluster: str, timeout: float = 60.0) -> str:
    """After a new decision of the cluster (the caller writes one, so the node has to write too),
    wait until the restarted node has the height of its peers ('caught up') or has exited with
    a fail-stop code (SPEC 4/12.8/12.9: 4 = data directory unusable, 5 = storage failure) after
    saying so in its log ('fail-stop'). Anything else (running behind forever, another exit code)
    fails the test."""
    def outcome():
        if not local.node_pid_alive(net, node_id):
            return "exited"
        hs = sc.heights(net, cluster)
        peers = [h for n, h in hs.items() if n != node_id and h is not None]
        return "caught up" if hs.get(node_id) is not None and peers and hs[node_id] >= min(peers) else None
    got = sc.wait_for(outcome, timeout, f"{node_id} to catch up or fail-stop")
    if got == "exited":
        code = process.exit_code(net.node(node_id).pid)
        log = net.log_path(node_id).read_text(errors="replace")
        assert code in (4, 5), f"{node_id} exited with {code}, not a fail-stop code"
        assert '"storage_failed"' in log or '"data_unusable"' in log or "corrupt" in log.lower(), log[-2000:]
        return "fail-stop"
    return got


def test_torn_last_record_is_discarded(net, tmp_path):
    """A node killed with -9 whose last data file then loses its last 100 bytes (a torn write) or
    gains 1000 random bytes (garbage after the last record) never runs on a damaged store: it
    restarts healthy, catches up and ends with the same log as its peers, or it fail-stops with a
    clear log line (exit 4 or 5: for a B-tree file such as LMDB's, a cut may hit a committed page,
    which SPEC 12.9 makes fatal) and, given back its undamaged files, rejoins the same way. The
    cluster serves throughout; for both implementations and both damages."""
    sc.checked_workload(net, tmp_path / "h.jsonl", "tr-", ops=10, keys=3, clients=("a",))
    impl = {n.id: n.implementation for n in net.nodes}
    leaders = {sc.wait_leader(net, c) for c in ("c0", "s0")}
    cases = []
    for how in ("truncate", "append"):
        for want in ("impl_a", "impl_b"):
            cluster = "s0" if how == "truncate" else "c0"
            cases.append((next(n.id for n in net.cluster_nodes(cluster)
                               if impl[n.id] == want and n.id not in leaders), how))
    for node_id, how in cases:
        faults.crash(net, node_id)
        victim = last_written_file(net.data_dir(node_id))
        expected = {"impl_a": "node.sqlite-wal", "impl_b": "data.mdb"}[impl[node_id]]
        assert victim.name == expected, f"{node_id}: last written file is {victim}"
        saved = tmp_path / f"{node_id}-data"
        shutil.copytree(net.data_dir(node_id), saved)
        if how == "truncate":
            os.truncate(victim, victim.stat().st_size - 100)
        else:
            with open(victim, "ab") as f:
                f.write(os.urandom(1000))
        cluster = net.node(node_id).cluster
        key = next(k for k in (f"tr-{node_id}-{i}" for i in range(1000)) if sc.shard_of(net, k) == "s0")
        try:
            sc.start(net, [node_id])
            assert sc.kv(net, "a", "put", key, "ok").get("value") == "ok"  # a decision it must write
            outcome = caught_up_or_fail_stopped(net, node_id, cluster)
        except Exception:
            if local.node_pid_alive(net, node_id):
                raise
            outcome = "fail-stop"  # refused at start (exit 4) before becoming healthy
            code = process.exit_code(net.node(node_id).pid)
            assert code in (4, 5), f"{node_id} exited with {code} at start, not a fail-stop code"
        assert sc.kv(net, "a", "put", key, "again").get("value") == "again"  # 3 of 4 serve
        if outcome == "fail-stop":
            shutil.rmtree(net.data_dir(node_id))
            shutil.copytree(saved, net.data_dir(node_id))
            sc.start(net, [node_id])
            assert sc.kv(net, "a", "put", key, "restored").get("value") == "restored"
            assert caught_up_or_fail_stopped(net, node_id, cluster) == "caught up"
    assert sc.kv(net, "b", "put", "tr-after", "ok").get("value") == "ok"
    for c in ("c0", "s0"):
        sc.assert_logs_identical(net, c)


def test_kill9_every_node_under_load(net, tmp_path):
    """Both client libraries run a workload; every node of every cluster is killed with -9 mid-run
    and restarted. Nothing acknowledged is lost (final reads in a linearizable history), the
    network serves again, and the logs agree."""
    sc.kill9_every_node_under_load(net, tmp_path, "ab", "b", ("c0", "s0"))
