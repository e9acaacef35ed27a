"""The node's trust work, on one thread that yields the processor to the event loop.

Trust builds (PEM parsing, SSL contexts) and the re-check of open connections after a swap run off
the loop so it keeps serving; but on a node pinned to one core an executor thread at the loop's
priority takes half the core while it runs, and every handshake in flight meanwhile takes twice
as long. This thread runs `BACKGROUND_NICENESS` steps nicer than the process, so the scheduler
gives the loop the core whenever both want it and the trust work the rest: a 300-certificate
version is applied a little later under full load instead of slowing the handshakes in flight.
Linux schedules threads, not processes, so `setpriority` on the thread's own id lowers only that
thread; elsewhere it keeps the process's priority.

Only that work runs here, in the order it was asked for (build, swap, re-check): file writes and
other chores stay on the default executor, so none of them queues ahead of a re-check that must
close a connection no longer trusted.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

T = TypeVar("T")

# CFS weight 110 against the loop's 1024: about a tenth of a contended core, all of an idle one.
BACKGROUND_NICENESS: Final = 10
_MAX_NICENESS: Final = 19


def _lower_own_priority() -> None:
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + BACKGROUND_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, _MAX_NICENESS))
    except OSError:
        pass  # a sandbox that forbids it: the work still runs, at the loop's priority


@functools.cache
def _background() -> ThreadPoolExecutor:
    """Made on first use, by the loop's thread only."""
    return ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="edgeproxy-background", initializer=_lower_own_priority
    )


async def run_in_background(work: Callable[[], T]) -> T:
    """`work()` on the background thread; the loop goes on meanwhile."""
    return await asyncio.get_running_loop().run_in_executor(_background(), work)
