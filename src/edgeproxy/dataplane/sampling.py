"""Log sampling for repeated identical events: the first line of a key in each window is
written, the rest are counted, and the next line written for the key says how many were not."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Final

DEFAULT_WINDOW: Final = 60.0  # seconds
MAX_KEYS: Final = 4096


class Sampler:
    """`admit(key)` is None for a line to leave out, else the number left out since the last line
    written for that key. Bounded: past `max_keys` keys, those whose window is over are forgotten,
    then (a flood of distinct keys) all of them; a forgotten count is lost, never a line."""

    __slots__ = ("_clock", "_keys", "max_keys", "window")

    def __init__(
        self,
        window: float = DEFAULT_WINDOW,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._keys: dict[Hashable, list[float]] = {}  # key -> [window start, left out]

    def admit(self, key: Hashable) -> int | None:
        now = self._clock()
        entry = self._keys.get(key)
        if entry is not None and now - entry[0] < self.window:
            entry[1] += 1
            return None
        left_out = 0 if entry is None else int(entry[1])
        if entry is None and len(self._keys) >= self.max_keys:
            self._forget(now)
        self._keys[key] = [now, 0]
        return left_out

    def _forget(self, now: float) -> None:
        keys = self._keys
        for key in [k for k, (start, _) in keys.items() if now - start >= self.window]:
            del keys[key]
        if len(keys) >= self.max_keys:
            keys.clear()
