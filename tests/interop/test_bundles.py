"""Request bundles across implementations (SPEC 14.6): each client library's concurrent users go out
as signed bundles, mixed coordinator clusters verify, order and answer them, and every member of every
cluster decides the same bundles byte for byte."""

from __future__ import annotations

import pytest

from infra import ops
from infra.nodes.client import run_client
from infra.testbed.history import check_history, load_history
from tests.testbed import scenario as sc

C, S = "coordinator", "shard"
SPECS = [sc.ClusterSpec("c0", C, "abab"), sc.ClusterSpec("s0", S, "baab"), sc.ClusterSpec("s1", S, "abba")]


def _fields(data: bytes):
    """(field number, wire type, value) of one protobuf message; enough to walk a canonical Decision."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            value, i = data[i:i + size], i + size
        else:
            raise AssertionError(f"unexpected wire type {wire} in a canonical message")
        yield number, wire, value


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def bundle_sizes(decision: bytes) -> list[int]:
    """Item counts of the bundle inputs (Input field 3) of one Decision (batch = field 2)."""
    sizes = []
    for number, _, batch in _fields(decision):
        if number != 2:
            continue
        for _, _, inp in _fields(batch):
            for kind, _, body in _fields(inp):
                if kind == 3:
                    sizes.append(sum(1 for n, _, _ in _fields(body) if n == 3))
    return sizes


@pytest.fixture
def dep(tmp_path):
    name = "bundles-mx"
    yield sc.deploy(name, tmp_path, SPECS)
    ops.destroy(name, tmp_path)


def _counter(dep, name: str) -> int:
    statuses = sc.cluster_status(dep, "c0")
    assert all(statuses.values()), statuses
    return sum(s["counters"][name] for s in statuses.values())


def test_bundles_from_both_clients_in_mixed_clusters(dep, tmp_path):
    history = tmp_path / "history.jsonl"
    for seed, client in enumerate(("a", "b"), 1):
        before = _counter(dep, "client_bundles")
        r = run_client(dep, client, ["--timeout-ms", "15000", "workload", "--ops", "240", "--concurrency", "24",
                                     "--keys", "12", "--put-ratio", "0.5", "--seed", str(seed), "--key-prefix", "bd-",
                                     "--history", str(history)], 180)
        assert r.ok and r.doc.get("ok") == 240, f"client {client}: {r.doc} {r.stderr[-500:]}"
        assert _counter(dep, "client_bundles") > before, f"client {client} sent no bundle"
    final = run_client(dep, "a", ["workload", "--ops", "12", "--concurrency", "1", "--keys", "12", "--put-ratio", "0",
                                  "--seed", "9", "--key-prefix", "bd-", "--history", str(history)], 120)
    assert final.ok, final.doc
    report = check_history(load_history(history))
    assert report.ok and report.reads_checked > 0, f"{report.summary()}: {report.violations[:3]}"
    assert _counter(dep, "client_requests") >= 2 * 240
    height = sc.assert_logs_identical(dep, "c0", min_height=2)
    sizes = [n for entry in sc.log_entries(dep, "c0-n0", height) for n in bundle_sizes(entry)]
    assert sizes and max(sizes) > 1, f"no multi-request bundle decided in c0: {sizes}"
    for shard in ("s0", "s1"):
        sc.assert_logs_identical(dep, shard, min_height=1)
