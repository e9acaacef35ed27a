"""With the store unreachable the admin API answers 503 store-unavailable, not a 500 trace."""

from __future__ import annotations

import logging

import pytest

from edgeproxy.store import Store
from support.admin import Api


async def test_a_closed_store_gives_503_store_unavailable(
    api: Api, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await api.get("/ca-sets")).status == 200  # the twin: while the store is open
    await store.close()
    with caplog.at_level(logging.WARNING):
        reply = await api.get("/ca-sets")
    assert reply.status == 503
    assert reply.type == "store-unavailable"
    assert reply.headers["Retry-After"] == "5"
    assert not [r for r in caplog.records if r.exc_info]  # an operating condition, no traceback
