"""`every`: a failing step is logged once per streak, and the loop keeps going."""

from __future__ import annotations

import asyncio
import logging

import pytest

from edgeproxy.runtime.tasks import TaskGroup, every


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
