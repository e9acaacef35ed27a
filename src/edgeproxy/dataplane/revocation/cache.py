"""OCSP answers per (issuer key hash, serial): a bounded LRU with coalesced responder requests.

* A trusted answer lives until its nextUpdate (RFC 5019 §6: the responder's own promise), or
  `DEFAULT_TTL` when it has none, and never less than `MIN_TTL` (an answer accepted within the
  clock skew of its nextUpdate would otherwise be fetched again by every connection).
* `unknown` and `unavailable` (no trusted answer) are negative results, kept `NEGATIVE_TTL` at
  most: long enough that a dead responder is asked once per key per period, not once per
  connection; short enough that it is asked again soon after it returns.
* Concurrent lookups of one key share one responder request: the first caller starts it (a named
  task in the owner's TaskGroup), later ones get the same future.
* `revoked_serials` counts the fresh-or-not-yet-dropped "revoked" entries per serial: the verify
  step asks the cache only for a serial listed there, so a handshake pays nothing for OCSP while
  no revoked certificate is cached (the common case), and a dict lookup otherwise.
Expiry runs on the monotonic clock; nextUpdate is converted once, when the answer is stored.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Final

from edgeproxy.revocation.answer import UNAVAILABLE, Answer, CacheKey, Status
from edgeproxy.runtime.tasks import TaskGroup

DEFAULT_TTL: Final = 60.0  # seconds, a trusted answer without nextUpdate
MIN_TTL: Final = 5.0
NEGATIVE_TTL: Final = 10.0


class OcspCache:
    """One binding's answers. Not thread-safe: used from its worker's event loop only."""

    __slots__ = (
        "_clock",
        "_entries",
        "_inflight",
        "_revoked_at",
        "_tasks",
        "_wall",
        "maxsize",
        "revoked_serials",
    )

    def __init__(
        self,
        maxsize: int,
        tasks: TaskGroup,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self._tasks = tasks
        self._clock = clock
        self._wall = wall
        self._entries: OrderedDict[CacheKey, tuple[Status, float]] = OrderedDict()
        self._inflight: dict[CacheKey, asyncio.Future[Status]] = {}
        self.revoked_serials: dict[int, int] = {}  # serial → number of REVOKED entries
        # The revocationTime of each cached "revoked" answer that gave one (the refusal's log line).
        self._revoked_at: dict[CacheKey, datetime] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: CacheKey) -> Status | None:
        """The cached status while fresh, else None (an expired entry is dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        status, expires = entry
        if expires <= self._clock():
            del self._entries[key]
            self._uncount(key, status)
            return None
        self._entries.move_to_end(key)
        return status

    def put(self, key: CacheKey, answer: Answer) -> None:
        old = self._entries.get(key)
        if old is not None:
            self._uncount(key, old[0])
        self._entries[key] = (answer.status, self._clock() + self._ttl(answer))
        self._entries.move_to_end(key)
        if answer.status is Status.REVOKED:
            self.revoked_serials[key[1]] = self.revoked_serials.get(key[1], 0) + 1
            if answer.revoked_at is not None:
                self._revoked_at[key] = answer.revoked_at
        while len(self._entries) > self.maxsize:
            evicted, (status, _) = self._entries.popitem(last=False)
            self._uncount(evicted, status)

    def revoked_at(self, key: CacheKey) -> datetime | None:
        """When a cached "revoked" answer says the certificate was revoked."""
        return self._revoked_at.get(key)

    def _uncount(self, key: CacheKey, status: Status) -> None:
        if status is Status.REVOKED:
            self._revoked_at.pop(key, None)
            left = self.revoked_serials.pop(key[1], 1) - 1
            if left:
                self.revoked_serials[key[1]] = left

    def _ttl(self, answer: Answer) -> float:
        if answer.status is Status.UNAVAILABLE:
            return NEGATIVE_TTL
        if answer.next_update is None:
            ttl = DEFAULT_TTL
        else:
            ttl = (answer.next_update - self._wall()).total_seconds()
        if answer.status is Status.UNKNOWN:
            ttl = min(ttl, NEGATIVE_TTL)
        return max(ttl, MIN_TTL)

    def resolve(
        self, key: CacheKey, fetch: Callable[[], Awaitable[Answer]]
    ) -> asyncio.Future[Status]:
        """The future status of `key`: one responder request however many callers ask at once.

        `fetch` must bound its own duration (the binding's `ocsp.timeout`) and should return
        UNAVAILABLE rather than raise; if it raises anyway, the key is answered UNAVAILABLE.
        """
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._inflight[key] = future
            self._tasks.spawn(self._run(key, future, fetch), "ocsp-fetch")
        return future

    async def _run(
        self, key: CacheKey, future: asyncio.Future[Status], fetch: Callable[[], Awaitable[Answer]]
    ) -> None:
        answer = UNAVAILABLE
        try:
            answer = await fetch()
        finally:  # also on cancellation (shutdown) and crashes: no waiter is left hanging
            if self._inflight.get(key) is future:
                del self._inflight[key]
            self.put(key, answer)
            if not future.done():
                future.set_result(answer.status)
