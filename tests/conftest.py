"""Fixtures every test package may use; a package's own conftest may override them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from edgeproxy.store import Store, open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh SQLite store in the test's directory (tests/store runs both back ends itself)."""
    opened = open_store(f"sqlite:///{tmp_path / 'edgeproxy.db'}")
    await opened.open()
    yield opened
    await opened.close()
