"""History checker on hand-made histories, and the cluster log (fork) comparison."""

import json

import pytest

from infra.errors import UsageError
from infra.testbed.history import check_history, compare_logs, load_history, parse_history


def op(process, kind, value, t0, t1, result="ok", key="6b31"):
    return json.dumps({"process": process, "op": kind, "key": key, "value": value, "invoke_ms": t0,
                       "complete_ms": t1, "result": result, "request_id": t0})


def kinds(lines):
    return sorted(v.kind for v in check_history(parse_history(lines)).violations)


GOOD = [
    op("a-0", "get", None, 0, 5),
    op("a-0", "put", "01", 10, 20),
    op("a-1", "get", "01", 15, 25),      # concurrent with its write
    op("a-1", "put", "02", 30, 40),
    op("a-0", "get", "01", 35, 45),      # concurrent with put 02: old value still allowed
    op("a-0", "get", "02", 38, 50),
    op("a-1", "put", "03", 60, 70, result="unknown"),
    op("a-0", "get", "02", 75, 80),      # the unknown write may not have happened
    op("a-1", "get", "03", 90, 95),      # ... or it may have
    op("b-0", "put", "04", 100, 110, key="6b32"),
    op("b-0", "get", "04", 120, 130, key="6b32"),
]


def test_good_history_passes():
    report = check_history(parse_history(GOOD))
    assert report.ok, report.violations
    assert report.keys == 2 and report.reads_checked == 7 and report.final_reads == 3
    assert "0 violation" not in report.summary() and report.summary().endswith("OK")


def test_lost_write():
    lines = [op("a-0", "put", "01", 0, 10), op("a-1", "put", "02", 20, 30), op("a-0", "get", "01", 40, 50)]
    assert kinds(lines) == ["lost_write"]
    assert kinds([op("a-0", "put", "01", 0, 10), op("a-0", "get", None, 20, 30)]) == ["lost_write"]


def test_stale_read():
    lines = [op("a-0", "put", "01", 0, 10), op("a-1", "put", "02", 20, 30),
             op("a-0", "get", "01", 40, 50), op("a-1", "put", "03", 45, 60)]
    report = check_history(parse_history(lines))
    assert [v.kind for v in report.violations] == ["stale_read"]
    assert report.violations[0].op.process == "a-0" and "02" in report.violations[0].detail


def test_read_backwards_and_unknown_value():
    lines = [op("a-0", "put", "01", 0, 10), op("a-1", "put", "02", 20, 30, result="unknown"),
             op("b-0", "get", "02", 40, 50), op("b-1", "get", "01", 60, 70), op("a-0", "put", "03", 65, 100)]
    assert kinds(lines) == ["read_backwards"]
    assert kinds([op("a-0", "get", "09", 0, 10)]) == ["unknown_value"]
    # a read cannot return a value whose write was invoked only after the read completed
    assert kinds([op("a-0", "get", "01", 0, 10), op("a-1", "put", "01", 20, 30)]) == ["unknown_value"]
    assert kinds([op("a-0", "put", "01", 0, 10, result="fail"), op("b-0", "get", "01", 20, 30),
                  op("b-0", "get", None, 40, 50)]) == ["read_backwards"]


def test_failed_writes_never_make_values_stale():
    lines = [op("a-0", "put", "01", 0, 10), op("a-1", "put", "02", 20, 30, result="fail"),
             op("a-0", "get", "01", 40, 50)]
    assert kinds(lines) == []


def test_bad_history_lines(tmp_path):
    with pytest.raises(UsageError, match="line 1"):
        parse_history(['{"op": "get"}'])
    p = tmp_path / "h.jsonl"
    p.write_text("\n".join(GOOD) + "\n\n")
    assert len(load_history(p)) == len(GOOD)


def test_log_comparison_finds_fork():
    same = {"n0": [b"d1", b"d2", b"d3"], "n1": [b"d1", b"d2"], "n2": [b"d1", b"d2", b"d3", b"d4"]}
    check = compare_logs("c0", same)
    assert check.ok and check.compared_to == 2
    forked = {"n0": [b"d1", b"d2", b"d3"], "n1": [b"d1", b"X2", b"d3"], "n2": [b"d1", b"d2", b"d3"]}
    check = compare_logs("c0", forked)
    assert not check.ok and [h for h, _ in check.forks] == [2]
    assert "FORK at height 2" in check.summary()
