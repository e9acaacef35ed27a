"""A closed connection is freed when it closes, by reference counting. Objects left in reference
cycles wait for a full garbage collection; the benchmark saw such collections of a few thousand
closed connections stall the event loop for up to 0.46 s."""

from __future__ import annotations

import gc
from collections import Counter

import pytest

from support.nodes import poll

from .clients import aget
from .conftest import Running
from .pki import E2ePki

pytestmark = pytest.mark.slow

# Whose objects count: ours and the per-connection C wrappers we hold (asyncio's own selector
# transport keeps a bound-method cycle of its own; uvloop, used in production, does not).
_OURS = ("edgeproxy", "OpenSSL", "httptools")


async def _closed_connections_garbage(node: Running, pki: E2ePki, requests: int) -> Counter[str]:
    async def all_closed() -> bool:
        return (await node.status.metrics()).value("edgeproxy_connections_active") == 0

    assert (await aget(pki, node.port, "api.test", pki.alice, "/warm")).status == 200
    await poll(all_closed, "connections to close")
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(requests):
            response = await aget(pki, node.port, "api.test", pki.alice, "/gc")
            assert response.status == 200
        await poll(all_closed, "connections to close")
        gc.collect()
        return Counter(
            type(o).__qualname__ for o in gc.garbage if type(o).__module__.startswith(_OURS)
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_closed_connections_leave_nothing_for_the_cycle_collector(
    node: Running, pki: E2ePki
) -> None:
    assert await _closed_connections_garbage(node, pki, requests=5) == Counter()


async def test_the_check_sees_a_connection_kept_in_a_cycle(
    node: Running, pki: E2ePki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The twin: with the parser's detach undone, the same traffic leaves cycles behind."""
    from edgeproxy.dataplane.http.parser import RequestReader

    monkeypatch.setattr(RequestReader, "detach", lambda self: None)
    garbage = await _closed_connections_garbage(node, pki, requests=5)
    assert garbage["HttpConnection"] == 5
    assert garbage["RequestReader"] == 5
