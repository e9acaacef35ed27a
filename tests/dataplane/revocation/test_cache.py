"""The OCSP cache alone: lifetimes, bounds, negative caching, coalescing (no I/O)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from edgeproxy.dataplane.revocation.cache import DEFAULT_TTL, MIN_TTL, NEGATIVE_TTL, OcspCache
from edgeproxy.revocation.answer import UNAVAILABLE, Answer, Status
from edgeproxy.runtime.tasks import TaskGroup

WALL = datetime(2030, 1, 1, tzinfo=UTC)
KEY = (b"k" * 20, 1)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def tasks() -> AsyncIterator[TaskGroup]:
    group = TaskGroup()
    yield group
    await group.close()


def make(tasks: TaskGroup, size: int = 8) -> tuple[OcspCache, Clock]:
    clock = Clock()
    return OcspCache(size, tasks, clock=clock, wall=lambda: WALL), clock


@pytest.mark.parametrize(
    ("answer", "lifetime"),
    [
        (Answer(Status.GOOD, WALL + timedelta(minutes=30)), 1800.0),  # until nextUpdate
        (Answer(Status.REVOKED, WALL + timedelta(hours=2)), 7200.0),
        (Answer(Status.GOOD), DEFAULT_TTL),  # no nextUpdate: a short default
        (Answer(Status.GOOD, WALL - timedelta(minutes=1)), MIN_TTL),  # within the skew
        (Answer(Status.UNKNOWN, WALL + timedelta(hours=1)), NEGATIVE_TTL),
        (UNAVAILABLE, NEGATIVE_TTL),
    ],
)
async def test_entry_lives_until_its_lifetime(
    tasks: TaskGroup, answer: Answer, lifetime: float
) -> None:
    cache, clock = make(tasks)
    cache.put(KEY, answer)
    clock.t += lifetime - 0.5
    assert cache.peek(KEY) is answer.status
    clock.t += 1.0
    assert cache.peek(KEY) is None
    assert len(cache) == 0


async def test_bounded_lru_evicts_the_least_recently_used(tasks: TaskGroup) -> None:
    cache, _ = make(tasks, size=2)
    a, b, c = (b"i" * 20, 1), (b"i" * 20, 2), (b"i" * 20, 3)
    cache.put(a, Answer(Status.GOOD))
    cache.put(b, Answer(Status.GOOD))
    assert cache.peek(a) is Status.GOOD  # a is now the most recent
    cache.put(c, Answer(Status.GOOD))
    assert cache.peek(b) is None
    assert cache.peek(a) is Status.GOOD
    assert len(cache) == 2


async def test_concurrent_lookups_make_one_request(tasks: TaskGroup) -> None:
    cache, _ = make(tasks)
    calls = 0
    release = asyncio.Event()

    async def fetch() -> Answer:
        nonlocal calls
        calls += 1
        await release.wait()
        return Answer(Status.REVOKED)

    futures = [cache.resolve(KEY, fetch) for _ in range(10)]
    assert len({id(f) for f in futures}) == 1
    release.set()
    assert await futures[0] is Status.REVOKED
    assert calls == 1
    assert cache.peek(KEY) is Status.REVOKED
    other = cache.resolve(KEY, fetch)  # a new request once the first has finished
    assert other is not futures[0]
    await other
    assert calls == 2


async def test_a_crashing_fetch_answers_unavailable_and_is_cached_briefly(
    tasks: TaskGroup,
) -> None:
    cache, clock = make(tasks)

    async def fetch() -> Answer:
        raise RuntimeError("bug")

    assert await cache.resolve(KEY, fetch) is Status.UNAVAILABLE
    assert cache.peek(KEY) is Status.UNAVAILABLE
    clock.t += NEGATIVE_TTL
    assert cache.peek(KEY) is None


async def test_shutdown_releases_waiters(tasks: TaskGroup) -> None:
    cache, _ = make(tasks)

    async def fetch() -> Answer:
        await asyncio.Event().wait()  # a responder that never answers
        raise AssertionError("unreachable")

    future = cache.resolve(KEY, fetch)
    await asyncio.sleep(0)
    await tasks.close()
    assert await future is Status.UNAVAILABLE


async def test_revoked_serials_index_follows_the_entries(tasks: TaskGroup) -> None:
    """The verify step's pre-check: a serial is listed exactly while a REVOKED entry holds it."""
    cache, clock = make(tasks, size=2)
    a, b, c = (b"a" * 20, 7), (b"b" * 20, 7), (b"c" * 20, 9)
    cache.put(a, Answer(Status.REVOKED))
    cache.put(b, Answer(Status.REVOKED))  # same serial, another issuer
    assert cache.revoked_serials == {7: 2}
    cache.put(a, Answer(Status.GOOD))  # replaced
    assert cache.revoked_serials == {7: 1}
    cache.put(c, Answer(Status.GOOD))  # evicts b, the least recently used
    assert cache.revoked_serials == {}
    cache.put(c, Answer(Status.REVOKED))
    clock.t += DEFAULT_TTL + 1
    assert cache.peek(c) is None  # expired and dropped
    assert cache.revoked_serials == {}
