"""The background thread: work runs there, off the loop's thread, at a lower priority."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from edgeproxy.runtime.background import BACKGROUND_NICENESS, run_in_background


def _where() -> tuple[str, int, int]:
    thread = threading.get_native_id()
    return threading.current_thread().name, thread, os.getpriority(os.PRIO_PROCESS, thread)


async def test_work_runs_on_one_named_thread_that_is_not_the_loops() -> None:
    first = await run_in_background(_where)
    second = await run_in_background(_where)
    assert first[0].startswith("edgeproxy-background")
    assert first[1] != threading.get_native_id()
    assert second[1] == first[1]  # one thread: a build and a re-check never overlap


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priority is Linux's")
async def test_the_background_thread_yields_to_the_loop() -> None:
    loop_niceness = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    _, _, niceness = await run_in_background(_where)
    assert niceness == min(loop_niceness + BACKGROUND_NICENESS, 19)
    # Only that thread was lowered: the loop keeps the process's priority.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_niceness


async def test_an_error_in_the_work_reaches_the_caller() -> None:
    def fail() -> None:
        raise ValueError("bad PEM")

    with pytest.raises(ValueError, match="bad PEM"):
        await run_in_background(fail)
