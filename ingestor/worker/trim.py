"""Give freed heap memory back to the system now and then (glibc's ``malloc_trim``).

glibc returns freed memory to the system only from the top of a heap: the pages of a batch's
rows and envelopes, freed once the batch is stored, stay resident while any younger object
(a dedup index entry, a session) sits above them. ``malloc_trim(0)`` hands back every whole free
page of every arena. It walks the arenas' free chunks (a few ms), so it runs after a store, at
most once an interval.

``tune_malloc`` (once, at the worker's start) keeps the heap from holding such pages at all:
glibc raises its mmap threshold each time a large block is freed (up to 32 MiB), after which
envelopes and Arrow buffers of a few hundred KB come from the heap and fragment it; a fixed
threshold keeps them in their own mappings, unmapped when freed. And a thread arena per thread
that allocates (Faust's consumer thread, the insert thread) holds pages of its own: two do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

__all__ = ["Trimmer", "malloc_trim", "tune_malloc"]

log = logging.getLogger(__name__)


def _libc_trim() -> Callable[[], object] | None:
    name = ctypes.util.find_library("c")
    try:
        function = ctypes.CDLL(name).malloc_trim  # absent outside glibc (musl, macOS)
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return lambda: function(0)


_TRIM = _libc_trim()

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, kept fixed
ARENA_MAX = 2


def tune_malloc() -> bool:
    """Fix glibc's mmap threshold and bound its arenas (see above); False outside glibc."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_ARENA_MAX, ARENA_MAX)
    )


def malloc_trim() -> bool:
    """Return free heap pages to the system; False where the C library has no such call."""
    if _TRIM is None:
        return False
    _TRIM()
    return True


class Trimmer:
    """Trims after a store when ``interval_s`` has passed since the last trim (0: never)."""

    __slots__ = ("_clock", "_interval_s", "_last", "_trim", "trims")

    def __init__(
        self,
        interval_s: float,
        clock: Callable[[], float],
        trim: Callable[[], bool] = malloc_trim,
    ) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._trim = trim
        self._last = clock()
        self.trims = 0

    def after_store(self) -> bool:
        """Trim if due; whether it did."""
        if self._interval_s <= 0:
            return False
        now = self._clock()
        if now - self._last < self._interval_s:
            return False
        self._last = now
        if not self._trim():
            self._interval_s = 0  # nothing to call: stop asking
            return False
        self.trims += 1
        return True
