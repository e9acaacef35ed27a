"""`every`: a failing step is logged once per streak, and the loop keeps going. `first_set`: the
waiters it starts never outlive it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from edgeproxy.runtime.tasks import TaskGroup, every, first_set


async def test_a_failure_streak_is_logged_once_and_its_end_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes = iter([ValueError("down")] * 5 + [None] * 3)
    calls = 0
    finished = asyncio.Event()

    async def step() -> None:
        nonlocal calls
        calls += 1
        outcome = next(outcomes, None)
        if calls == 8:
            finished.set()
        if outcome is not None:
            raise outcome

    group = TaskGroup()
    with caplog.at_level(logging.INFO, logger="edgeproxy.runtime.tasks"):
        group.spawn(every(0, step, "probe"), "probe")
        await asyncio.wait_for(finished.wait(), 5)
        await group.close()
    failures = [r for r in caplog.records if "failed; retrying" in r.getMessage()]
    recoveries = [r for r in caplog.records if "recovered after 5" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert len(recoveries) == 1


async def test_a_crashed_task_is_logged_not_lost(caplog: pytest.LogCaptureFixture) -> None:
    async def boom() -> None:
        raise RuntimeError("crash")

    group = TaskGroup()
    with caplog.at_level(logging.ERROR, logger="edgeproxy.runtime.tasks"):
        task = group.spawn(boom(), "boom")
        with pytest.raises(RuntimeError):
            await task
        await asyncio.sleep(0)
    assert any("task boom crashed" in r.getMessage() for r in caplog.records)
    await group.close()


async def test_first_set_returns_on_any_event_and_leaves_no_waiter_behind() -> None:
    stop, reload = asyncio.Event(), asyncio.Event()
    reload.set()
    await first_set(stop, reload)
    # The stop waiter was cancelled *and* awaited: nothing of first_set's is still scheduled.
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert not stop.is_set()


async def test_first_set_cancelled_takes_its_waiters_with_it() -> None:
    stop, reload = asyncio.Event(), asyncio.Event()
    caller = asyncio.create_task(first_set(stop, reload))
    for _ in range(3):  # let the caller start its two waiters
        await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == 4
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert asyncio.all_tasks() == {asyncio.current_task()}
