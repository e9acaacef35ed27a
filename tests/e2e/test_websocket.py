"""WebSocket upgrade passthrough over the mTLS edge (docs/dataplane.md), with a real aiohttp
client."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from support.origin import RecordingOrigin

from .conftest import Running
from .pki import Client, E2ePki

pytestmark = pytest.mark.slow


class Loopback(AbstractResolver):
    """Every name resolves to 127.0.0.1: the URL's host is still the SNI and the Host."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host, host="127.0.0.1", port=port, family=socket.AF_INET, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


@pytest.fixture
async def wss() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(resolver=Loopback(), force_close=True)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=10)
    ) as session:
        yield session


async def echo(
    session: aiohttp.ClientSession, pki: E2ePki, port: int, host: str, client: Client | None
) -> str:
    url = f"wss://{host}:{port}/ws"
    async with session.ws_connect(url, ssl=pki.client_context(client)) as ws:
        await ws.send_str("hello through the edge")
        message = await ws.receive(timeout=10)
        await ws.close()
        assert message.type is aiohttp.WSMsgType.TEXT
        return str(message.data)


async def test_websocket_upgrade_passes_through_with_the_identity(
    node: Running, pki: E2ePki, origin: RecordingOrigin, wss: aiohttp.ClientSession
) -> None:
    assert await echo(wss, pki, node.port, "api.test", pki.alice) == "echo:hello through the edge"
    assert origin.last("/ws").one("X-Client-Cert-Verify") == "SUCCESS"


async def test_websocket_upgrade_is_denied_like_any_request(
    node: Running, pki: E2ePki, origin: RecordingOrigin, wss: aiohttp.ClientSession
) -> None:
    # `other` is request mode with deny: the handshake completes, the upgrade gets 403.
    with pytest.raises(aiohttp.WSServerHandshakeError) as denied:
        await echo(wss, pki, node.port, "other.test", None)
    assert denied.value.status == 403
    assert "/ws" not in origin.paths()
