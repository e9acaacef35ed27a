"""What the TLS port does with unusual first flights, over real sockets on 127.0.0.1: large
ClientHellos, hellos that are not hellos, odd server names, ALPN offers, plain HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import Any

from edgeproxy.config.model import EdgeLimits
from edgeproxy.tls.clienthello import MAX_CLIENT_HELLO
from edgeproxy.tls.session import Reason

from .aio import Server
from .conftest import API, Pki
from .test_clienthello import ext, hello_body, records


def alert(description: int) -> bytes:
    return bytes((21, 3, 3, 0, 2, 2, description))


async def send_raw(server: Server, data: bytes) -> bytes:
    """Write `data` on a plain TCP connection and read until the edge closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(data)
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def big_alpn_client(pki: Pki, protocols: int) -> ssl.SSLContext:
    """A real client whose ClientHello grows with its ALPN list: `protocols` names of ~254 bytes,
    then http/1.1 (which the edge selects)."""
    ctx = pki.client_context(pki.good)
    ctx.set_alpn_protocols([f"p{i:03d}".ljust(254, "x") for i in range(protocols)] + ["http/1.1"])
    return ctx


async def test_a_clienthello_over_several_records_is_accepted(
    pki: Pki, start: Callable[..., Any]
) -> None:
    """~38 KiB of ClientHello in three records, from a stdlib client: nginx takes it, so do we."""
    server = await start()
    ctx = big_alpn_client(pki, 150)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, ssl=ctx, server_hostname=API
    )
    try:
        writer.write(b"hello")
        async with asyncio.timeout(5):
            assert await reader.readexactly(5) == b"hello"
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    [(session, _)] = server.observer.done
    assert session.sni == API
    assert server.observer.failed == []


async def test_a_clienthello_over_the_bound_gets_an_alert_and_its_own_reason(
    pki: Pki, start: Callable[..., Any]
) -> None:
    server = await start()
    # The first record of a longer hello: the handshake header already announces the length.
    message = b"\x01" + (MAX_CLIENT_HELLO + 5000).to_bytes(3) + hello_body(None)
    first_record = b"\x16\x03\x01" + (2**14).to_bytes(2) + message.ljust(2**14, b"\0")
    assert await send_raw(server, first_record) == alert(47)  # illegal_parameter
    await server.observer.wait_failed()
    [(reason, sni, edge, _, _)] = server.observer.failed
    assert (reason, sni, edge) == (Reason.CLIENT_HELLO_TOO_LARGE, None, None)


async def test_a_large_clienthello_still_has_a_deadline(
    pki: Pki, start: Callable[..., Any]
) -> None:
    limits = EdgeLimits(client_hello_timeout=0.2, handshake_timeout=3.0)
    server = await start(limits=limits)
    body = hello_body(ext(0xFFFF, bytes(40_000)))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(records(body)[: 2 * (5 + 2**14)])  # two records of three, then silence
    async with asyncio.timeout(5):
        with contextlib.suppress(ConnectionResetError):
            assert await reader.read() == b""
    writer.close()
    [(reason, _, _, duration, _)] = server.observer.failed
    assert reason is Reason.TIMEOUT
    assert duration >= limits.client_hello_timeout
