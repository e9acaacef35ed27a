"""`close_after_response`: the hook the edge uses to retire a connection (a trust change no longer
trusts its client, or it reached its maximum age): the response in flight still arrives, with
`Connection: close`; no further request reaches the origin."""

from __future__ import annotations

import asyncio

from edgeproxy.dataplane.http.exchange import HttpConnection
from support.origin import RecordingOrigin

from .edgehttp_origin import Proxy, StartProxy
from .edgehttp_support import RawClient


def only_connection(proxy: Proxy) -> HttpConnection:
    (conn,) = list(proxy.context._connections)
    assert isinstance(conn, HttpConnection)
    return conn


async def test_an_idle_connection_closes_at_once(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    assert (await client.request("/first")).status == 200
    only_connection(proxy).close_after_response()
    assert await client.at_eof()
    assert origin.paths() == ["/first"]


async def test_the_response_in_flight_arrives_with_connection_close_and_nothing_after_it(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    # /slow, then a pipelined request that must never be forwarded.
    await client.send(
        b"GET /slow HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
        b"GET /after HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
    )
    await asyncio.wait_for(origin.slow_started.wait(), 10)
    only_connection(proxy).close_after_response()
    response = await client.response()
    assert response.status == 200
    assert response.header("connection") == "close"
    assert await client.at_eof()
    assert origin.paths() == ["/slow"]


async def test_a_connection_left_alone_keeps_serving(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    """The twin: without the hook the same pipelined pair is served in full."""
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    await client.send(
        b"GET /slow HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
        b"GET /after HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
    )
    first, second = await client.response(), await client.response()
    assert (first.status, second.status) == (200, 200)
    assert first.header("connection") != "close"
    assert origin.paths() == ["/slow", "/after"]
