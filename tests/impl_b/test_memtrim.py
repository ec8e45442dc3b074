"""memtrim: heap trims after large releases, at most once a second (glibc; a no-op elsewhere)."""

import ctypes

from impl_b import memtrim


def test_trim_is_due_after_a_megabyte_released_and_at_most_once_a_second():
    r = memtrim.Releases()
    r.released(memtrim.TRIM_AFTER - 1)
    assert not r.due(10.0)
    r.released(1)
    assert r.due(10.0)
    r.trim(10.0)
    assert r.pending == 0 and not r.due(10.0)
    r.released(memtrim.TRIM_AFTER * 4)
    assert not r.due(10.5) and r.due(11.0)


def test_tune_fixes_the_glibc_thresholds():
    try:
        ctypes.CDLL("libc.so.6").mallopt  # noqa: B018
    except (OSError, AttributeError):
        assert memtrim.tune() is False
        return
    assert memtrim.tune() is True
