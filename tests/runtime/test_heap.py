"""The burst rule that decides when the heap is trimmed, and the trim itself."""

from __future__ import annotations

import platform

from edgeproxy.runtime.heap import BurstTrim, trim_available, trim_heap


def test_a_burst_trims_once_when_it_has_closed() -> None:
    burst = BurstTrim(drop=100)
    for count in range(1, 1001):
        burst.opened(count)
    assert not burst.due(950)  # still open: not a burst that ended
    assert burst.due(900)
    assert not burst.due(850)  # the peak is now 900: one trim per burst
    assert not burst.due(801)
    assert burst.due(800)


def test_steady_traffic_never_trims() -> None:
    burst = BurstTrim(drop=100)
    for _ in range(50):
        for count in (10, 60, 20):
            burst.opened(count)
            assert not burst.due(count)


def test_trim_runs_where_glibc_has_it() -> None:
    if platform.libc_ver()[0] == "glibc":
        assert trim_available()
    assert trim_heap() in (True, False)
    assert trim_available() or trim_heap() is False
