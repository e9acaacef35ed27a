"""One connection's OCSP answer, as the HTTP layer sees it (its `RevocationGate`).

Pending: it wraps the future of the one responder request for that certificate (shared by every
connection asking at the same time), or with `ocsp.check_intermediates` a future that settles when
every certificate's lookup has (`all_settled`). Decided: a fixed status. Either way, `deny_reason`
applies the binding's failure mode: revoked is always refused; unknown and unavailable only under
`hard`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from edgeproxy.revocation.answer import Status
from edgeproxy.tls.session import Reason


class RevocationCheck:
    __slots__ = ("_future", "_hard", "_status")

    def __init__(
        self, hard: bool, status: Status | None = None, future: asyncio.Future[Status] | None = None
    ) -> None:
        self._hard = hard
        self._status = status
        self._future = future

    @property
    def done(self) -> bool:
        return self._future is None or self._future.done()

    @property
    def status(self) -> str:
        """The access-log value; `not_checked` while the answer is pending."""
        future = self._future
        if future is not None and future.done():
            return future.result().value
        return (self._status or Status.NOT_CHECKED).value

    @property
    def deny_reason(self) -> str | None:
        """Why the request must get 403 (a `Reason` value), or None to forward it."""
        status = self.status
        if status == Status.REVOKED:
            return Reason.REVOKED.value
        if self._hard and (status == Status.UNKNOWN or status == Status.UNAVAILABLE):
            return Reason.OCSP_UNAVAILABLE.value
        return None

    def subscribe(self, callback: Callable[[Any], None]) -> None:
        """Call `callback(future)` once the answer is in (never synchronously)."""
        assert self._future is not None
        self._future.add_done_callback(callback)

    def unsubscribe(self, callback: Callable[[Any], None]) -> None:
        if self._future is not None:
            self._future.remove_done_callback(callback)


def worst(statuses: Iterable[Status]) -> Status:
    """A chain's status: any revoked -> revoked; else the first unknown or unavailable from the
    leaf up (both follow the failure mode alike); else good."""
    found = Status.GOOD
    for status in statuses:
        if status is Status.REVOKED:
            return status
        if found is Status.GOOD:
            found = status
    return found


def all_settled(
    known: Sequence[Status], pending: Sequence[asyncio.Future[Status]]
) -> asyncio.Future[Status]:
    """A new future: `worst` of `known` and `pending` once every pending lookup has settled.

    Not `asyncio.gather`: cancelling a gather cancels its children, and these are the cache's
    futures, shared with other connections.
    """
    combined: asyncio.Future[Status] = asyncio.get_running_loop().create_future()
    left = [len(pending)]

    def settled(_: asyncio.Future[Status]) -> None:
        left[0] -= 1
        if not left[0] and not combined.done():
            combined.set_result(worst([*known, *(f.result() for f in pending)]))

    for future in pending:
        future.add_done_callback(settled)
    return combined
