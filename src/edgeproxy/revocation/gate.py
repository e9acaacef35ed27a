"""One connection's OCSP answer, as the HTTP layer sees it (its `RevocationGate`).

Pending: it wraps the future of the one responder request for that certificate (shared by every
connection asking at the same time). Decided: a fixed status. Either way, `deny_reason` applies the
binding's failure mode: revoked is always refused; unknown and unavailable only under `hard`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from edgeproxy.revocation.cache import Status
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
