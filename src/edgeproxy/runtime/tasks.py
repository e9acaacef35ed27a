"""Background tasks that are named, referenced, and whose crashes are logged (never lost).

The one place in the package that creates tasks (ruff bans `asyncio.create_task` elsewhere): a task
nobody holds can be garbage-collected mid-flight, and one nobody awaits loses its exception.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskGroup:
    """Owns long-running tasks of a component; `close()` cancels and awaits them all."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        """Tasks still running."""
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s crashed", task.get_name(), exc_info=task.exception())

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def first_set(*events: asyncio.Event) -> None:
    """Return once any of `events` is set. The waiters live only inside this call: the others are
    cancelled and awaited before it returns, and all of them when the caller is cancelled."""
    async with asyncio.TaskGroup() as group:
        waiters = [group.create_task(event.wait()) for event in events]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()


async def every(interval: float, step: Callable[[], Awaitable[None]], what: str) -> None:
    """Run `step` forever, `interval` seconds apart; a failing step is logged, not fatal.

    A streak of failures (the store is down, say) is logged once with its trace, and its end
    once, instead of a trace every interval.
    """
    failing = 0
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            failing += 1
            if failing == 1:
                log.exception("%s failed; retrying every %.1fs", what, interval)
        else:
            if failing:
                log.info("%s recovered after %d failed attempts", what, failing)
            failing = 0
        await asyncio.sleep(interval)
