"""Bodies stream both ways with backpressure, and WebSocket upgrades become a byte pipe."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket

import aiohttp
import pytest

from support.origin import RecordingOrigin

from .edgehttp_origin import StartProxy
from .edgehttp_support import RawClient

MIB = 1 << 20
PIECE = bytes(range(256)) * 256  # 64 KiB


async def send_body(
    client: RawClient, origin: RecordingOrigin, total: int, *, chunked: bool
) -> str:
    """Send a `total`-byte body of PIECEs, as chunks or as is; return its SHA-256.

    Streaming, not store-and-forward: by 2 MiB sent the origin must have its first MiB.
    """
    digest = hashlib.sha256()
    for sent in range(0, total, len(PIECE)):
        if sent == 2 * MIB:
            await asyncio.wait_for(origin.got_first_mib.wait(), 5)
        await client.send(b"%x\r\n" % len(PIECE) + PIECE + b"\r\n" if chunked else PIECE)
        digest.update(PIECE)
    if chunked:
        await client.send(b"0\r\n\r\n")
    return digest.hexdigest()


async def test_20_mib_chunked_request_reaches_origin_before_it_is_fully_sent(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    await client.send(
        b"POST /up HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    total = 20 * MIB
    digest = await send_body(client, origin, total, chunked=True)
    resp = await client.response()
    assert resp.status == 200
    assert json.loads(resp.body)["length"] == total
    assert origin.requests[0].body_sha256 == digest
    assert proxy.records[0].bytes_in == total
    await client.close()


async def test_content_length_request_body_is_streamed_too(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    total = 4 * MIB
    await client.send(
        f"PUT /up HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: {total}\r\n\r\n".encode()
    )
    await send_body(client, origin, total, chunked=False)
    resp = await client.response()
    assert resp.status == 200
    assert json.loads(resp.body)["length"] == total
    assert origin.requests[0].one("Content-Length") == str(total)
    await client.close()


async def test_20_mib_chunked_response_reaches_client_before_origin_finishes(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    total = 20 * MIB
    await client.send(
        f"GET /?stream={total}&gate=1 HTTP/1.1\r\nHost: api.example.com\r\n\r\n".encode()
    )
    head = await client.reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Transfer-Encoding: chunked" in head
    received, digest = 0, hashlib.sha256()
    async with asyncio.timeout(20):
        while True:
            size = int((await client.reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                await client.reader.readuntil(b"\r\n")
                break
            chunk = await client.reader.readexactly(size)
            await client.reader.readexactly(2)
            received += size
            digest.update(chunk)
            if received >= MIB:
                origin.release_rest.set()  # the origin holds the rest until we saw the first MiB
    assert received == total
    assert digest.hexdigest() == hashlib.sha256(PIECE * (total // len(PIECE))).hexdigest()
    assert (await client.request("/next")).status == 200  # framing intact: keep-alive goes on
    await client.close()


async def _stalls(value: object, attr: str) -> int:
    """Wait until getattr(value, attr) stops growing; return where it stopped."""
    last = -1
    for _ in range(50):
        await asyncio.sleep(0.1)
        now = getattr(value, attr)
        if now == last and now > 0:
            return now
        last = now
    return last


async def test_slow_client_pauses_the_origin(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect(("127.0.0.1", proxy.port))
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    total = 64 * MIB
    writer.write(f"GET /?stream={total} HTTP/1.1\r\nHost: api.example.com\r\n\r\n".encode())
    stalled_at = await _stalls(origin, "stream_sent")
    assert 0 < stalled_at < total // 2  # the proxy stopped reading: nothing piles up in it
    assert await reader.read(1024)
    writer.close()


async def test_slow_origin_pauses_the_client(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    total = 64 * MIB
    head = f"POST /?hold=1 HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: {total}\r\n\r\n"
    client.writer.write(head.encode())
    written = 0
    stalled = False
    while written < total and not stalled:
        client.writer.write(PIECE * 4)
        written += len(PIECE) * 4
        try:
            await asyncio.wait_for(client.writer.drain(), 0.5)
        except TimeoutError:
            stalled = True
    assert stalled
    assert written < total // 2
    origin.release_rest.set()
    await client.close()


async def test_websocket_upgrade_is_piped_both_ways(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"http://127.0.0.1:{proxy.port}/ws", headers={"Host": "api.example.com"}
        ) as ws,
    ):
        for i in range(3):
            await ws.send_str(f"hello {i}")
            assert await ws.receive_str(timeout=5) == f"echo:hello {i}"
        await ws.send_bytes(b"\x00\x01binary")
        assert await ws.receive_bytes(timeout=5) == b"yranib\x01\x00"
    assert [r.status for r in proxy.records] == [101]


async def test_websocket_upgrade_refused_by_host_or_origin(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(
                f"http://127.0.0.1:{proxy.port}/ws", headers={"Host": "evil.example"}
            )
        assert info.value.status == 421
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(  # not a WebSocket endpoint: a plain 200 comes back
                f"http://127.0.0.1:{proxy.port}/plain", headers={"Host": "api.example.com"}
            )
        assert info.value.status == 200
    assert [r.path for r in origin.requests] == ["/plain"]
