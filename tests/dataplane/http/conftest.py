"""Fixtures: a recording aiohttp origin, the proxy on plain TCP with an injected TLS session."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from edgeproxy.config.model import EdgeLimits
from edgeproxy.dataplane.http import ProxyContext, ProxyProtocol, ServedEdges
from edgeproxy.tls.session import TlsSession
from support.origin import RecordingOrigin

from .edgehttp_origin import Proxy, Recorder, StartProxy
from .edgehttp_support import ClientPki, RawClient, make_client_pki, make_session, serve_edges


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while RawClient.opened:
        await RawClient.opened.pop().close()


@pytest.fixture(scope="session")
def pki() -> ClientPki:
    return make_client_pki()


@pytest.fixture
async def origin() -> AsyncIterator[RecordingOrigin]:
    rec = await RecordingOrigin().start()
    yield rec
    await rec.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def start_proxy(pki: ClientPki) -> AsyncIterator[StartProxy]:
    """Start `ProxyProtocol` on 127.0.0.1 with a fixed TlsSession, as the TLS adapter would."""
    servers: list[tuple[asyncio.Server, ProxyContext, ServedEdges]] = []

    async def start(
        origin_url: str,
        *,
        session: TlsSession | None = None,
        limits: EdgeLimits | None = None,
        **session_args: object,
    ) -> Proxy:
        if session is None:
            session = make_session(origin_url, pki.chain_der, **session_args)  # type: ignore[arg-type]
        recorder = Recorder()
        ctx = ProxyContext(limits or EdgeLimits(), observer=recorder)
        served = serve_edges(session, limits=limits)
        edge = served.get(session.edge)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: ProxyProtocol(ctx, session, edge), "127.0.0.1", 0)
        servers.append((server, ctx, served))
        return Proxy(server.sockets[0].getsockname()[1], ctx, recorder.records)

    yield start
    while RawClient.opened:  # clients first, so lingering closes end at once
        await RawClient.opened.pop().close()
    for server, ctx, served in servers:
        server.close()
        await ctx.drain(grace=0.5)
        await served.close()
