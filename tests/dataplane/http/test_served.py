"""ServedEdges: each edge's host matcher and origin pool, reused across swaps, pruned when gone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import cast

import pytest

from edgeproxy.config.model import EdgeCertificateConfig, EdgeLimits
from edgeproxy.dataplane.http import ServedEdges
from edgeproxy.dataplane.http.h2pool import H2OriginPool
from edgeproxy.dataplane.http.links import ServedOrigin
from edgeproxy.dataplane.http.origin import OriginConnection, OriginOwner, OriginPool

from .edgehttp_support import make_session


@dataclass
class Origin:
    """A loopback origin that counts the connections it saw closed by the edge."""

    server: asyncio.Server
    closed: asyncio.Queue[None]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def origins() -> AsyncIterator[list[Origin]]:
    made: list[Origin] = []
    for _ in range(2):
        closed: asyncio.Queue[None] = asyncio.Queue()

        async def serve(
            reader: asyncio.StreamReader,
            writer: asyncio.StreamWriter,
            q: asyncio.Queue[None] = closed,
        ) -> None:
            await reader.read()  # b"" once the edge closes its side
            q.put_nowait(None)
            writer.close()

        made.append(Origin(await asyncio.start_server(serve, "127.0.0.1", 0), closed))
    yield made
    for origin in made:
        origin.server.close()


class Owner:
    """The client side of one exchange, as far as connecting goes."""

    def __init__(self) -> None:
        self.connected: asyncio.Future[OriginConnection] = asyncio.Future()

    def origin_connected(self, conn: OriginConnection) -> None:
        self.connected.set_result(conn)

    def origin_connect_failed(self, timed_out: bool) -> None:
        self.connected.set_exception(OSError(f"connect failed (timed out: {timed_out})"))


async def idle_connection(pool: ServedOrigin) -> OriginConnection:
    """Open one origin connection and give it back to the pool, as a finished exchange does."""
    assert isinstance(pool, OriginPool)  # an http:// origin
    owner = Owner()
    pool.connect(cast(OriginOwner, owner))
    conn = await asyncio.wait_for(owner.connected, 5)
    pool.release(conn)
    return conn


def edge(name: str, origin: str, *hostnames: str) -> EdgeCertificateConfig:
    return replace(make_session(origin).edge, name=name, hostnames=hostnames or (f"{name}.test",))


async def test_a_removed_edges_pool_is_closed_and_an_unchanged_one_reused(
    origins: list[Origin],
) -> None:
    one, two = origins
    served = ServedEdges(EdgeLimits())
    a, b = edge("a", one.url), edge("b", two.url)
    served.update([a, b])
    kept, gone = served.get(a), served.get(b)
    warm = await idle_connection(kept.pool)
    cold = await idle_connection(gone.pool)

    served.update([a])  # b went away (a SIGHUP removed it)

    assert served.get(a) is kept  # the same matcher and pool, warm connection included
    assert served.pools == {one.url: kept.pool}
    assert cold.closed
    await asyncio.wait_for(two.closed.get(), 5)  # the origin saw its idle connection end
    assert not warm.closed
    assert kept.pool.take() is warm
    kept.pool.release(warm)
    await served.close()
    assert warm.closed
    await asyncio.wait_for(one.closed.get(), 5)


async def test_what_changed_is_rebuilt_and_only_that(origins: list[Origin]) -> None:
    one, two = origins
    served = ServedEdges(EdgeLimits())
    a = edge("a", one.url, "a.test")
    served.update([a, edge("b", one.url)])  # two edges, one origin: one shared pool
    first = served.get(a)
    assert served.get(edge("b", one.url)).pool is first.pool

    renamed = replace(a, hostnames=("a.test", "www.a.test"))
    served.update([renamed, edge("b", one.url)])
    second = served.get(renamed)
    assert second is not first
    assert second.pool is first.pool  # the origin did not change
    assert second.matcher is not first.matcher
    assert second.matcher.matches(b"www.a.test")

    moved = replace(renamed, origin=two.url)
    served.update([moved])
    third = served.get(moved)
    assert third.pool is not first.pool
    assert third.matcher is second.matcher  # the host names did not change
    assert served.pools == {two.url: third.pool}
    await served.close()


async def test_an_edge_removed_while_its_handshake_ran_is_served_without_keep_alive(
    origins: list[Origin],
) -> None:
    served = ServedEdges(EdgeLimits())
    served.update([])
    late = served.get(edge("a", origins[0].url))
    conn = await idle_connection(late.pool)
    assert conn.closed  # released into a retired pool: closed, not kept
    await asyncio.wait_for(origins[0].closed.get(), 5)
    assert served.pools == {}
    await served.close()


def test_an_origin_the_pool_cannot_serve_changes_nothing() -> None:
    served = ServedEdges(EdgeLimits())
    good = edge("a", "http://127.0.0.1:1")
    served.update([good])
    before = served.get(good)
    with pytest.raises(ValueError, match="unsupported origin"):
        served.update([good, edge("b", "https://127.0.0.1:2")])
    assert served.get(good) is before
    assert len(served) == 1


async def test_an_h2c_origin_gets_an_http2_pool_and_an_http_one_keeps_http1() -> None:
    served = ServedEdges(EdgeLimits())
    served.update([edge("a", "h2c://127.0.0.1:1"), edge("b", "http://127.0.0.1:1")])
    assert isinstance(served.pools["h2c://127.0.0.1:1"], H2OriginPool)
    assert isinstance(served.pools["http://127.0.0.1:1"], OriginPool)
    await served.close()
