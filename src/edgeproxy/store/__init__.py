"""The store: the only state shared by admin processes and edge nodes."""

from __future__ import annotations

from pathlib import Path

from edgeproxy.store.base import Store, StoreUnavailable
from edgeproxy.store.postgres import PostgresStore
from edgeproxy.store.queries import Tx, VersionRecord
from edgeproxy.store.sqlite import SqliteStore

__all__ = ["Store", "StoreUnavailable", "Tx", "VersionRecord", "open_store"]


def open_store(
    url: str,
    *,
    poll_interval: float = 0.05,
    connect_timeout: float = 5.0,
    statement_timeout: float = 5.0,
) -> Store:
    """A store for a normalised URL: sqlite:////absolute/path or postgresql://…"""
    if url.startswith("sqlite:///"):
        return SqliteStore(
            Path(url.removeprefix("sqlite:///")),
            poll_interval=poll_interval,
            statement_timeout=statement_timeout,
        )
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(
            url,
            poll_interval=poll_interval,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
        )
    raise ValueError(f"unsupported store URL scheme: {url.split(':', 1)[0]}")
