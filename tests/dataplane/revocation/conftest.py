"""Fixtures: the PKI (shared with tests/revocation), responders, an origin and in-process edges,
all torn down after each test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edgeproxy.config.model import OcspConfig
from edgeproxy.dataplane.http import ProxyContext
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.revocation.check import Revocation
from edgeproxy.dataplane.revocation.client import OcspClient
from support.ocsp import Backend, Responder
from support.revocation_pki import Pki
from support.revocation_pki import pki as pki  # the session fixture

from .harness import Clock, Edge, Origin, StartEdgeClocked, start_edge


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    found = await Origin().start()
    yield found
    await found.close()


StartResponder = Callable[[Backend], Awaitable[Responder]]


@pytest.fixture
async def responder() -> AsyncIterator[StartResponder]:
    started: list[Responder] = []

    async def start(backend: Backend) -> Responder:
        started.append(await Responder(backend).start())
        return started[-1]

    yield start
    for r in started:
        await r.close()


StartEdge = Callable[..., Awaitable[Edge]]
Running = list[tuple[asyncio.Server, ProxyContext, Edge]]


async def _stop(running: Running, session: aiohttp.ClientSession) -> None:
    for server, ctx, found in running:
        server.close()
        await ctx.drain(grace=0.5)
        await found.watch.close()
        await found.served.close()
        await found.revocation.close()
    await session.close()


@pytest.fixture
async def edge(pki: Pki, origin: Origin) -> AsyncIterator[StartEdge]:
    """edge(ocsp=OcspConfig(...), mode=..., crls=...): an in-process edge on 127.0.0.1."""
    session = aiohttp.ClientSession(auto_decompress=False)
    running: Running = []

    def revocation_for(metrics: Metrics) -> Revocation:
        return Revocation(metrics, client=OcspClient(session))

    async def start(ocsp: OcspConfig | None = None, **kw: Any) -> Edge:
        found = await start_edge(pki, origin, revocation_for, ocsp=ocsp or OcspConfig(), **kw)
        running.append(found)
        return found[2]

    yield start
    await _stop(running, session)


@pytest.fixture
async def edge_with_clock(pki: Pki, origin: Origin) -> AsyncIterator[StartEdgeClocked]:
    """Like `edge`, with the OCSP cache on a clock the test moves."""
    session = aiohttp.ClientSession(auto_decompress=False)
    running: Running = []

    async def start(ocsp: OcspConfig, **kw: Any) -> tuple[Edge, Clock]:
        clock = Clock()

        def revocation_for(metrics: Metrics) -> Revocation:
            return Revocation(metrics, client=OcspClient(session), clock=clock)

        found = await start_edge(pki, origin, revocation_for, ocsp=ocsp, **kw)
        running.append(found)
        return found[2], clock

    yield start
    await _stop(running, session)
