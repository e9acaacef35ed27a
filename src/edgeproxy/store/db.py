"""The connection seam between the shared queries and each back end's driver."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class Db(Protocol):
    """One connection inside one transaction. SQL uses `$1`-style parameters in both dialects."""

    async def fetch(self, sql: str, *args: Any) -> Sequence[Mapping[str, Any]]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Mapping[str, Any] | None: ...

    async def fetchval(self, sql: str, *args: Any) -> Any: ...

    async def execute(self, sql: str, *args: Any) -> None: ...

    async def notify(self, revision: int) -> None:
        """Tell other processes the revision moved (delivered at commit; a no-op on SQLite)."""
