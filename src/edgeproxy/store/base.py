"""The store contract: what both back ends (SQLite, PostgreSQL) provide to the service."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from edgeproxy.store.queries import Tx


class StoreUnavailable(Exception):
    """The store cannot be reached: not open (it was down at start), or a connection refused."""


class Store(Protocol):
    """The only shared state. Every use case runs in one transaction."""

    dialect: str

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None: ...

    def transaction(self, *, write: bool) -> AbstractAsyncContextManager[Tx]:
        """A transaction; write transactions are serialised store-wide."""

    async def revision(self) -> int:
        """The current store revision: cheap, for pollers."""

    async def wait_for_change(self, known: int, max_wait: float) -> int:
        """Return the revision once it differs from `known`, or after `max_wait` seconds."""
