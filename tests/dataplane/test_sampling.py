"""Sampler: the first line per key and window is written, the rest counted; bounded in keys."""

from __future__ import annotations

from edgeproxy.dataplane.sampling import Sampler


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_repeats_within_the_window_are_left_out_and_counted_on_the_next_line() -> None:
    clock = Clock()
    sampler = Sampler(10.0, clock=clock)
    assert sampler.admit("a") == 0
    assert [sampler.admit("a") for _ in range(3)] == [None, None, None]
    assert sampler.admit("b") == 0  # another key has its own window
    clock.now = 10.0
    assert sampler.admit("a") == 3
    assert sampler.admit("a") is None
    clock.now = 25.0
    assert sampler.admit("a") == 1
    assert sampler.admit("b") == 0


def test_keys_are_bounded_expired_ones_forgotten_first() -> None:
    clock = Clock()
    sampler = Sampler(10.0, max_keys=2, clock=clock)
    assert sampler.admit("old") == 0
    clock.now = 20.0
    assert sampler.admit("recent") == 0
    assert sampler.admit("recent") is None
    assert sampler.admit("new") == 0  # "old" was over its window: forgotten, "recent" kept
    assert sampler.admit("recent") is None
    assert sampler.admit("flood") == 0  # all live: everything forgotten, a line never lost
    assert sampler.admit("recent") == 0
