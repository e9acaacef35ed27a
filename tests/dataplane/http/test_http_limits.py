"""Limits and failures, each with its accepted twin: 413, 431, 408, 400, 405, 502, 504."""

from __future__ import annotations

import asyncio
import json
import socket

from edgeproxy.config.model import EdgeLimits
from support.origin import RecordingOrigin

from .edgehttp_origin import StartProxy
from .edgehttp_support import RawClient

SMALL = EdgeLimits(max_body_bytes=1000, max_header_bytes=2048, header_timeout=0.3)


def problem_type(body: bytes) -> str:
    return json.loads(body)["type"].rsplit("/", 1)[1]


async def test_declared_body_over_the_limit_is_413_up_front(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url, limits=SMALL)
    client = await RawClient.connect(proxy.port)
    await client.send(b"POST / HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 1001\r\n\r\n")
    resp = await client.response()
    assert resp.status == 413
    assert problem_type(resp.body) == "content-too-large"
    assert resp.header("connection") == "close"
    assert await client.at_eof()
    assert origin.requests == []


async def test_body_at_the_limit_is_proxied(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url, limits=SMALL)
    client = await RawClient.connect(proxy.port)
    resp = await client.request("/", method="POST", body=b"x" * 1000)
    assert resp.status == 200
    assert json.loads(resp.body)["length"] == 1000
    await client.close()


async def post_chunked(client: RawClient, total: int, piece: int = 100) -> None:
    """POST / with a `total`-byte body in chunks of `piece` bytes."""
    await client.send(
        b"POST / HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    body = b""
    while total > 0:
        n = min(piece, total)
        body += b"%x\r\n" % n + b"c" * n + b"\r\n"
        total -= n
    await client.send(body + b"0\r\n\r\n")


async def test_chunked_body_is_counted_413(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url, limits=SMALL)
    client = await RawClient.connect(proxy.port)
    await post_chunked(client, 1500)
    resp = await client.response()
    assert resp.status == 413
    assert await client.at_eof()
    assert all(r.body_bytes <= 1000 for r in origin.requests)  # never the whole body


async def test_chunked_body_within_the_limit_is_streamed(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url, limits=SMALL)
    client = await RawClient.connect(proxy.port)
    await post_chunked(client, 900)
    resp = await client.response()
    assert resp.status == 200
    assert json.loads(resp.body)["length"] == 900
    assert origin.requests[0].one("Transfer-Encoding") == "chunked"
    await client.close()


async def test_oversized_head_is_431_and_a_large_one_within_limit_passes(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url, limits=SMALL)
    client = await RawClient.connect(proxy.port)
    assert (await client.request("/", headers=f"X-Big: {'b' * 1500}\r\n")).status == 200
    resp = await client.request("/", headers=f"X-Big: {'b' * 4000}\r\n")
    assert resp.status == 431
    assert problem_type(resp.body) == "request-header-fields-too-large"
    assert await client.at_eof()
    assert len(origin.requests) == 1


async def test_slow_head_is_408_and_a_prompt_one_passes(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url, limits=SMALL)
    prompt = await RawClient.connect(proxy.port)
    await prompt.send(b"GET / HTTP/1.1\r\nHost: api")
    await asyncio.sleep(0.1)
    await prompt.send(b".example.com\r\n\r\n")
    assert (await prompt.response()).status == 200
    slow = await RawClient.connect(proxy.port)
    await slow.send(b"GET / HTTP/1.1\r\nHost: api")
    resp = await slow.response(timeout=3)
    assert resp.status == 408
    assert problem_type(resp.body) == "request-timeout"
    assert await slow.at_eof()
    assert len(origin.requests) == 1
    assert [r.status for r in proxy.records] == [200, 408]
    await prompt.close()


async def test_garbage_is_400_then_close(origin: RecordingOrigin, start_proxy: StartProxy) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    await client.send(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
    resp = await client.response()
    assert resp.status == 400
    assert resp.header("connection") == "close"
    assert await client.at_eof()
    assert origin.requests == []


async def test_connect_and_upgrade_with_body_are_refused(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    await client.send(b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
    assert (await client.response()).status == 405
    client = await RawClient.connect(proxy.port)
    await client.send(
        b"POST / HTTP/1.1\r\nHost: api.example.com\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
        b"Content-Length: 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n\r\n"
    )
    assert (await client.response()).status == 400
    assert origin.requests == []


async def test_origin_down_is_502_and_the_client_connection_survives(
    start_proxy: StartProxy, closed_port: int
) -> None:
    proxy = await start_proxy(f"http://127.0.0.1:{closed_port}")
    client = await RawClient.connect(proxy.port)
    for _ in range(2):
        resp = await client.request("/")
        assert resp.status == 502
        assert problem_type(resp.body) == "origin-unavailable"
    assert proxy.records[0].origin_duration is None
    await client.close()


async def test_origin_sending_garbage_is_502(start_proxy: StartProxy) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await reader.read()  # until the proxy gives up on us
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    proxy = await start_proxy(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    client = await RawClient.connect(proxy.port)
    assert (await client.request("/")).status == 502
    await client.close()
    server.close()


async def test_slow_origin_is_504_and_a_prompt_one_passes(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url, limits=EdgeLimits(origin_read_timeout=0.3))
    client = await RawClient.connect(proxy.port)
    assert (await client.request("/?sleep=0.05")).status == 200
    resp = await client.request("/?sleep=1")
    assert resp.status == 504
    assert problem_type(resp.body) == "origin-timeout"
    assert await client.at_eof()


async def test_origin_connect_timeout_is_504(start_proxy: StartProxy) -> None:
    # A listener whose accept queue is full drops further SYNs: connects hang (Linux).
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        fillers = [socket.socket() for _ in range(3)]
        for sock in fillers:
            sock.setblocking(False)
            sock.connect_ex(listener.getsockname())
        port = listener.getsockname()[1]
        limits = EdgeLimits(origin_connect_timeout=0.3)
        proxy = await start_proxy(f"http://127.0.0.1:{port}", limits=limits)
        client = await RawClient.connect(proxy.port)
        resp = await client.request("/")
        assert resp.status == 504
        assert problem_type(resp.body) == "origin-timeout"
        for sock in fillers:
            sock.close()


async def test_origin_with_endless_headers_is_502(start_proxy: StartProxy) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        try:
            for _ in range(100):  # 100 KiB of one header value, never finished
                writer.write(b"e" * 1024)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    proxy = await start_proxy(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    client = await RawClient.connect(proxy.port)
    assert (await client.request("/")).status == 502
    server.close()
