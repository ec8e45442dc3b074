"""Hand heap memory freed on behalf of closed connections back to the system.

glibc keeps what `free` returns: its mmap threshold rises to the largest block freed so far, so the
megabyte send queues of never-reading clients end up in the heap arenas, and closing those
connections leaves the arenas' free space resident (measured: 6 MiB in use, 65 MiB free and
resident after 24 never-reading sessions closed, `tests/adversarial` test_never_reading_clients).
Two measures, both no-ops elsewhere than glibc:
- `tune()` (at node start) fixes the mmap threshold at 256 KiB and the trim threshold at 1 MiB, which
  turns the dynamic adjustment off: buffers of 256 KiB and more (send queues of slow clients) are
  mapped on their own and unmapped when freed, and an arena's free top is given back beyond 1 MiB
  (a thread arena kept a 6 MiB top resident otherwise, which malloc_trim does not release);
- `malloc_trim(0)` returns the free pages inside every arena; the I/O loop calls it, at most once a
  second, after connections holding at least 1 MiB were closed.
"""

import ctypes

TRIM_AFTER = 1 << 20  # bytes released by closed connections before a trim is worth its cost
TRIM_EVERY = 1.0  # s between two trims at most


MMAP_THRESHOLD = 256 << 10
TRIM_THRESHOLD = 1 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


def _load(name: str, *argtypes):
    try:
        fn = getattr(ctypes.CDLL("libc.so.6"), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = list(argtypes)
    fn.restype = ctypes.c_int
    return fn


_MALLOC_TRIM = _load("malloc_trim", ctypes.c_size_t)
_MALLOPT = _load("mallopt", ctypes.c_int, ctypes.c_int)


def tune() -> bool:
    """Fixed mmap and trim thresholds (see above); True if the allocator took them."""
    if _MALLOPT is None:
        return False
    return bool(_MALLOPT(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(_MALLOPT(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


class Releases:
    """Counts bytes released (buffers of closed connections) and trims the heap when due."""

    def __init__(self):
        self.pending = 0
        self.last = 0.0
        self.trims = 0

    def released(self, nbytes: int) -> None:
        self.pending += nbytes

    def due(self, now: float) -> bool:
        return self.pending >= TRIM_AFTER and now - self.last >= TRIM_EVERY

    def trim(self, now: float) -> None:
        self.pending = 0
        self.last = now
        if _MALLOC_TRIM is not None:
            _MALLOC_TRIM(0)
            self.trims += 1
