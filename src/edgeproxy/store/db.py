"""The connection seam between the shared queries and each back end's driver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Record(Protocol):
    """One result row, read by column name (or position). Both drivers' rows fit: sqlite3.Row and
    asyncpg.Record. Neither is a Mapping: iterating either yields values, not column names."""

    def __getitem__(self, key: int | str, /) -> Any: ...


class Db(Protocol):
    """One connection inside one transaction. SQL uses `$1`-style parameters in both dialects."""

    async def fetch(self, sql: str, *args: Any) -> Sequence[Record]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Record | None: ...

    async def fetchval(self, sql: str, *args: Any) -> Any: ...

    async def execute(self, sql: str, *args: Any) -> None: ...

    async def notify(self, revision: int) -> None:
        """Tell other processes the revision moved (delivered at commit; a no-op on SQLite)."""
