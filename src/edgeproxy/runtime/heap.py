"""Freed heap memory back to the operating system after a burst of connections has closed.

glibc's malloc keeps the pages a burst of closed connections freed: their OpenSSL objects and
buffers were interleaved with longer-lived allocations, so the heap top cannot shrink and the
worker stays at its peak RSS. `malloc_trim(0)` hands every free page inside the heap back
(madvise), which no allocator setting does on its own. Elsewhere than glibc (musl, macOS) there is
no `malloc_trim` and trimming does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Final


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        process = ctypes.CDLL(None)  # the symbols already loaded: the C library among them
    except OSError:
        return None
    trim = getattr(process, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM: Final = _malloc_trim()


def trim_available() -> bool:
    return _TRIM is not None


def trim_heap() -> bool:
    """malloc_trim(0); True when it released memory. Slow on a large heap: call it off the loop."""
    return _TRIM is not None and _TRIM(0) == 1


class BurstTrim:
    """When to trim: the open-connection count has fallen at least `drop` below its peak since the
    last trim (a burst ended). Steady traffic never trims; each burst trims once."""

    __slots__ = ("_peak", "drop")

    def __init__(self, drop: int) -> None:
        self.drop = drop
        self._peak = 0

    def opened(self, count: int) -> None:
        if count > self._peak:
            self._peak = count

    def due(self, count: int) -> bool:
        if self._peak - count < self.drop:
            return False
        self._peak = count
        return True
