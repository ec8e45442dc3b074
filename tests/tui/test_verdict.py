"""Unit tests of the pure verdict logic (infra.model.verdict)."""

import pytest

from infra.model.verdict import Verdict, assess, faults_tolerated


@pytest.mark.parametrize("n,f", [(4, 1), (7, 2), (10, 3), (5, 1), (1, 0)])
def test_faults_tolerated(n, f):
    assert faults_tolerated(n) == f


def test_all_up_is_healthy():
    a = assess(4, down=[])
    assert (a.verdict, a.f, a.faults, a.margin, a.up) == (Verdict.HEALTHY, 1, 0, 1, 4)
    assert "all 4 up" in a.why


def test_one_down_of_four_is_at_risk():
    a = assess(4, down=["n3"])
    assert (a.verdict, a.faults, a.margin, a.up) == (Verdict.AT_RISK, 1, 0, 3)
    assert "n3" in a.why and "one more fault stops it" in a.why


def test_two_down_of_four_is_stalled():
    a = assess(4, down=["n2", "n3"])
    assert a.verdict is Verdict.STALLED
    assert a.margin == -1
    assert "2 of 4 up, quorum needs 3" in a.why


def test_seven_nodes_degrade_before_risk():
    assert assess(7, down=["a"]).verdict is Verdict.DEGRADED
    assert assess(7, down=["a"]).margin == 1
    assert "can absorb 1 more" in assess(7, down=["a"]).why
    assert assess(7, down=["a", "b"]).verdict is Verdict.AT_RISK
    assert assess(7, down=["a", "b", "c"]).verdict is Verdict.STALLED


def test_byzantine_node_counts_as_fault_while_up():
    a = assess(4, down=[], byzantine=["n0"])
    assert (a.verdict, a.faults, a.up) == (Verdict.AT_RISK, 1, 4)
    assert "Byzantine evidence against n0" in a.why


def test_down_and_byzantine_same_node_counts_once():
    a = assess(4, down=["n0"], byzantine=["n0"])
    assert a.faults == 1 and a.verdict is Verdict.AT_RISK


def test_more_byzantine_than_f_is_stalled_even_with_quorum_up():
    a = assess(4, down=[], byzantine=["n0", "n1"])
    assert a.verdict is Verdict.STALLED
    assert "2 faults exceed f=1" in a.why


def test_no_progress_with_pending_work_is_stalled():
    a = assess(4, down=[], pending_work=["3 queued from c0"], still_for_ms=12_000, stall_after_ms=10_000)
    assert a.verdict is Verdict.STALLED
    assert "no decision for 12s with 3 queued from c0" in a.why


def test_no_progress_without_pending_work_is_idle_not_stalled():
    assert assess(4, down=[], pending_work=[], still_for_ms=600_000).verdict is Verdict.HEALTHY


def test_pending_work_recently_advanced_is_not_stalled():
    a = assess(4, down=[], pending_work=["a view change"], still_for_ms=9_999, stall_after_ms=10_000)
    assert a.verdict is Verdict.HEALTHY


def test_labels_carry_symbol_and_word():
    for v in Verdict:
        assert v.symbol in v.label and v.word in v.label
    assert len({v.symbol for v in Verdict}) == 4
