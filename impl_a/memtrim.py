"""Give freed heap memory back to the operating system (glibc malloc_trim), so that what a node
held for slow or hostile connections is released when they close (SPEC 13.1), not only reusable."""

from __future__ import annotations

import ctypes
import ctypes.util

try:
    _trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    _trim.argtypes = [ctypes.c_size_t]
except (OSError, AttributeError):  # not glibc: nothing to do
    _trim = None


def trim() -> None:
    if _trim is not None:
        _trim(0)


class TrimAfterPeak:
    """Calls trim() once after a measured total went above `high` and came back below `low`."""

    def __init__(self, high: int, low: int):
        self.high, self.low = high, low
        self.armed = False

    def observe(self, total: int) -> bool:
        if total > self.high:
            self.armed = True
        elif self.armed and total < self.low:
            self.armed = False
            trim()
            return True
        return False
