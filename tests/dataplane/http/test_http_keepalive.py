"""Connection reuse on both sides: keep-alive, pipelining, the origin pool, close, drain."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import pytest

from edgeproxy.config.model import EdgeLimits
from support.origin import RecordingOrigin

from .edgehttp_origin import Proxy, StartProxy
from .edgehttp_support import RawClient


async def idle_client(proxy: Proxy) -> RawClient:
    """A client connection that has had its answer and now sits idle."""
    idle = await RawClient.connect(proxy.port)
    assert (await idle.request("/")).status == 200
    return idle


async def busy_client(proxy: Proxy, origin_sleep: float, settle: float = 0.1) -> RawClient:
    """A client connection whose request the origin holds for `origin_sleep` seconds, given
    `settle` seconds to get there."""
    busy = await RawClient.connect(proxy.port)
    head = f"GET /?sleep={origin_sleep} HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
    await busy.send(head.encode())
    await asyncio.sleep(settle)
    return busy


async def test_keep_alive_serves_many_requests_over_one_origin_connection(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    for i in range(5):
        resp = await client.request(f"/{i}")
        assert resp.status == 200
        assert resp.header("connection") is None
    second = await RawClient.connect(proxy.port)  # another client reuses the pooled connection
    assert (await second.request("/other")).status == 200
    assert origin.accepts == 1
    assert len(origin.requests) == 6
    await client.close()
    await second.close()


async def test_origin_connection_close_is_not_reused(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    for _ in range(3):
        assert (await client.request("/?close=1")).status == 200
    assert origin.accepts == 3  # the client connection stayed up; origin ones were not pooled
    await client.close()


async def test_client_connection_close_is_honoured(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    resp = await client.request("/", headers="Connection: close\r\n")
    assert resp.status == 200
    assert resp.header("connection") == "close"
    assert await client.at_eof()


async def test_pipelined_requests_are_answered_in_order(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    await client.send(
        b"GET /1?sleep=0.05 HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 4\r\n\r\nbody"
        b"GET /3 HTTP/1.1\r\nHost: evil.example\r\n\r\n"
        b"GET /4 HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
    )
    responses = [await client.response() for _ in range(4)]
    assert [r.status for r in responses] == [200, 200, 421, 200]
    assert [json.loads(r.body)["path"] for r in responses if r.status == 200] == [
        "/1?sleep=0.05",
        "/2",
        "/4",
    ]
    assert json.loads(responses[1].body)["length"] == 4
    assert [r.path for r in origin.requests] == ["/1?sleep=0.05", "/2", "/4"]
    await client.close()


async def test_head_response_has_no_body_and_the_connection_goes_on(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    resp = await client.request("/h", method="HEAD")
    assert resp.status == 200
    assert int(resp.header("content-length") or 0) > 0
    assert (await client.request("/after")).status == 200
    assert origin.accepts == 1
    await client.close()


async def test_idle_keep_alive_connections_are_closed(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url, limits=EdgeLimits(idle_timeout=0.3))
    client = await RawClient.connect(proxy.port)
    for _ in range(3):  # within the idle window: served
        assert (await client.request("/")).status == 200
        await asyncio.sleep(0.1)
    assert await client.at_eof(timeout=2)  # then idle past it: closed without a response


async def test_drain_finishes_in_flight_requests_and_closes_idle_ones(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    idle = await idle_client(proxy)
    busy = await busy_client(proxy, 0.3)
    drain = asyncio.create_task(proxy.context.drain(grace=5))
    assert await idle.at_eof(timeout=1)
    resp = await busy.response()
    assert resp.status == 200
    assert resp.header("connection") == "close"
    assert await busy.at_eof()
    await busy.close()
    assert await drain == 0


async def test_drain_aborts_what_outlives_the_grace_period(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    busy = await busy_client(proxy, 0.6)
    assert await proxy.context.drain(grace=0.2) == 1
    assert await busy.at_eof(timeout=1)


# A raw origin for behaviour aiohttp will not produce.

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], "asyncio.Future[None] | object"]


@pytest.fixture
async def raw_origin() -> AsyncIterator[Callable[[Handler], asyncio.Future[str]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start  # type: ignore[misc]
    for server in servers:
        server.close()


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def test_close_delimited_origin_body_is_rechunked_for_http11_clients(
    raw_origin: Callable[[Handler], asyncio.Future[str]], start_proxy: StartProxy
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    proxy = await start_proxy(await raw_origin(handler))
    client = await RawClient.connect(proxy.port)
    resp = await client.request("/")
    assert resp.header("transfer-encoding") == "chunked"
    assert resp.body == b"until the end"
    assert (await client.request("/")).body == b"until the end"  # the client connection lives on
    await client.send(b"GET / HTTP/1.0\r\nHost: api.example.com\r\n\r\n")
    old = await client.response()
    assert old.body == b"until the end"
    assert old.header("transfer-encoding") is None
    assert await client.at_eof()


async def test_stale_pooled_connection_is_retried_for_bodyless_requests_only(
    raw_origin: Callable[[Handler], asyncio.Future[str]], start_proxy: StartProxy
) -> None:
    accepts = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Answers one request per connection, then drops the connection on the next one, as
        # an origin whose keep-alive timer fires just as a request arrives.
        nonlocal accepts
        accepts += 1
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.abort()

    proxy = await start_proxy(await raw_origin(handler))
    client = await RawClient.connect(proxy.port)
    assert (await client.request("/")).status == 200
    assert (await client.request("/")).status == 200  # retried on a fresh connection
    assert accepts == 2
    assert (await client.request("/", method="POST", body=b"x")).status == 502  # not replayed
    await client.close()
