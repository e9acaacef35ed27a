"""The protocol behind a TLS-adapter-shaped transport, and interim (1xx) responses."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from edgeproxy.config.model import EdgeLimits
from edgeproxy.dataplane.http import ProxyContext, ProxyProtocol, ServedEdges
from edgeproxy.tls.session import TlsSession
from support.origin import RecordingOrigin

from .edgehttp_origin import StartProxy
from .edgehttp_support import ClientPki, RawClient, make_session, serve_edges


class AdapterTransport(asyncio.Transport):
    """Only what the TLS adapter promises: no write_eof."""

    def __init__(self, inner: asyncio.Transport) -> None:
        super().__init__()
        self._inner = inner

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._inner.write(data)

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def can_write_eof(self) -> bool:
        return False


class Adapter(asyncio.Protocol):
    """Stands where the TLS adapter stands: between the socket and `ProxyProtocol`."""

    def __init__(self, app: ProxyProtocol) -> None:
        self.app = app

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.app.connection_made(AdapterTransport(transport))  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.app.data_received(data)

    def eof_received(self) -> None:
        self.app.eof_received()  # TLS: EOF always closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.app.connection_lost(exc)

    def pause_writing(self) -> None:
        self.app.pause_writing()

    def resume_writing(self) -> None:
        self.app.resume_writing()


async def _serve(ctx: ProxyContext, session: TlsSession, served: ServedEdges) -> asyncio.Server:
    edge = served.get(session.edge)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: Adapter(ProxyProtocol(ctx, session, edge)), "127.0.0.1", 0
    )


async def test_behind_a_transport_that_cannot_half_close(
    origin: RecordingOrigin, pki: ClientPki
) -> None:
    ctx = ProxyContext(EdgeLimits())
    session = make_session(origin.url, pki.chain_der)
    served = serve_edges(session)
    server = await _serve(ctx, session, served)
    client = await RawClient.connect(server.sockets[0].getsockname()[1])
    assert (await client.request("/a")).status == 200
    assert origin.requests[0].one("X-Client-Cert-Verify") == "SUCCESS"
    resp = await client.request("/b", headers="Connection: close\r\n")
    assert resp.status == 200
    assert await client.at_eof()
    server.close()
    await ctx.drain(grace=1)
    await served.close()


async def test_expect_100_continue_is_relayed(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    await client.send(
        b"POST /e HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 5\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    interim = await client.response()
    assert interim.status == 100
    await client.send(b"hello")
    final = await client.response()
    assert final.status == 200
    assert json.loads(final.body)["length"] == 5


async def test_http10_client_gets_no_interim_response(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    await client.send(
        b"POST /e HTTP/1.0\r\nHost: api.example.com\r\nContent-Length: 5\r\n"
        b"Expect: 100-continue\r\n\r\nhello"
    )
    resp = await client.response()
    assert resp.status == 200
    assert json.loads(resp.body)["length"] == 5
    assert await client.at_eof()


def test_under_uvloop(pki: ClientPki) -> None:
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> list[int]:
        async def origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while not reader.at_eof():
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                    if b"chunked" in head:
                        await reader.readuntil(b"0\r\n\r\n")
                except asyncio.IncompleteReadError:
                    break
                writer.write(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
                )

        server = await asyncio.start_server(origin, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        ctx = ProxyContext(EdgeLimits())
        session = make_session(url)
        served = serve_edges(session)
        edge = served.get(session.edge)
        loop = asyncio.get_running_loop()
        proxy = await loop.create_server(lambda: ProxyProtocol(ctx, session, edge), "127.0.0.1", 0)
        client = await RawClient.connect(proxy.sockets[0].getsockname()[1])
        await client.send(
            b"GET /1 HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
            b"POST /2 HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n"
            b"GET /3 HTTP/1.1\r\nHost: evil.example\r\n\r\n"
        )
        statuses = [(await client.response()).status for _ in range(3)]
        await client.close()
        RawClient.opened.clear()
        proxy.close()
        await ctx.drain(grace=1)
        await served.close()
        server.close()
        return statuses

    assert uvloop.run(scenario()) == [200, 200, 421]
