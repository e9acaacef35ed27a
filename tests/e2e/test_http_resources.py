"""Slow clients must not hold origin connections: request bodies are buffered up to
`request_buffer_bytes` before an origin connection is taken, every body has a whole-body deadline
and a minimum rate (408), and a client that stops reading its response is cut off after
`send_timeout`. Raw bytes over real TLS; a counting origin says which connections it was given.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from .clients import TIMEOUT, read_until_closed
from .conftest import MakeFiles, Running, StartNode
from .pki import E2ePki

pytestmark = pytest.mark.slow
SNI = "api.test"
BIG = 64 << 20  # far larger than every socket buffer on the way, even autotuned under load


@dataclass
class CountingOrigin:
    """An origin that counts TCP connections, records complete request heads, and answers
    `GET /big` with BIG bytes (noting whether the edge let it finish)."""

    port: int = 0
    connections: int = 0
    heads: list[bytes] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)  # a connection went away
    big_cut_short: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                match = re.search(rb"\r\ncontent-length: *(\d+)", head.lower())
                if match:
                    await reader.readexactly(int(match.group(1)))
                self.heads.append(head)
                if head.startswith(b"GET /big "):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG)
                    try:
                        for _ in range(BIG >> 16):
                            writer.write(b"x" * 65536)
                            await writer.drain()
                    except ConnectionError:
                        self.big_cut_short.set()
                        return
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self.closed.set()
            writer.close()


@pytest.fixture
async def counting() -> AsyncIterator[CountingOrigin]:
    origin = CountingOrigin()
    server = await asyncio.start_server(origin.serve, "127.0.0.1", 0)
    origin.port = server.sockets[0].getsockname()[1]
    yield origin
    server.close()


LIMITS = {
    "request_buffer_bytes": 1024,
    "body_timeout": 1.0,
    "body_min_rate": 1024,
    "header_timeout": 1.0,
    "send_timeout": 1.0,
}


@pytest.fixture
async def edge(
    pki: E2ePki, counting: CountingOrigin, node_files: MakeFiles, start_node: StartNode
) -> Running:
    files = node_files()
    files.origin_url = counting.url
    files.limits.update(LIMITS)
    running = await start_node(files)
    await running.admin.publish([pki.ca_a.pem, pki.root.pem])
    return running


@contextmanager
def tls_socket(pki: E2ePki, port: int) -> Iterator[ssl.SSLSocket]:
    context = pki.client_context(pki.alice)
    with (
        socket.create_connection(("127.0.0.1", port), TIMEOUT) as sock,
        context.wrap_socket(sock, server_hostname=SNI) as tls,
    ):
        yield tls


def statuses(raw: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


def post_head(path: str, length: int) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: {SNI}\r\nContent-Length: {length}\r\n\r\n".encode()


def _stalled_body(pki: E2ePki, port: int, length: int, sent: int) -> bytes:
    """Send a head and part of the body, then nothing: what comes back until the edge closes."""
    with tls_socket(pki, port) as tls:
        tls.sendall(post_head("/stalled", length) + b"a" * sent)
        return read_until_closed(tls)


async def test_a_stalled_small_body_never_takes_an_origin_connection(
    edge: Running, pki: E2ePki, counting: CountingOrigin
) -> None:
    raw = await asyncio.to_thread(_stalled_body, pki, edge.port, 512, 100)
    assert statuses(raw) == [408]
    assert counting.connections == 0  # buffered: the origin was never asked
    assert counting.heads == []


async def test_a_stalled_large_body_is_cut_and_its_origin_connection_freed(
    edge: Running, pki: E2ePki, counting: CountingOrigin
) -> None:
    raw = await asyncio.to_thread(_stalled_body, pki, edge.port, 1 << 20, 4096)
    assert statuses(raw) == [408]
    assert counting.connections == 1  # streamed: larger than request_buffer_bytes
    await asyncio.wait_for(counting.closed.wait(), TIMEOUT)
    assert counting.heads == []  # the origin never got a complete request


def _two_posts(pki: E2ePki, port: int) -> bytes:
    with tls_socket(pki, port) as tls:
        tls.sendall(post_head("/small", 600) + b"s" * 600)
        tls.sendall(post_head("/large", 5000) + b"l" * 5000)
        tls.sendall(f"GET /end HTTP/1.1\r\nHost: {SNI}\r\nConnection: close\r\n\r\n".encode())
        return read_until_closed(tls)


async def test_complete_bodies_reach_the_origin_whole(
    edge: Running, pki: E2ePki, counting: CountingOrigin
) -> None:
    raw = await asyncio.to_thread(_two_posts, pki, edge.port)
    assert statuses(raw) == [200, 200, 200]
    assert [h.split(b" ")[1] for h in counting.heads] == [b"/small", b"/large", b"/end"]
    assert b"Content-Length: 600\r\n" in counting.heads[0]


def _never_reads(pki: E2ePki, port: int, gave_up: threading.Event) -> bytes:
    with tls_socket(pki, port) as tls:
        tls.sendall(f"GET /big HTTP/1.1\r\nHost: {SNI}\r\n\r\n".encode())
        # Not a byte read until the origin saw the edge give up; then drain what is left.
        gave_up.wait(TIMEOUT)
        return read_until_closed(tls, limit=BIG * 2)


async def test_a_client_that_stops_reading_is_cut_off_and_frees_the_origin(
    edge: Running, pki: E2ePki, counting: CountingOrigin
) -> None:
    gave_up = threading.Event()
    reading = asyncio.gather(asyncio.to_thread(_never_reads, pki, edge.port, gave_up))
    try:
        await asyncio.wait_for(counting.big_cut_short.wait(), TIMEOUT)
    finally:
        gave_up.set()
    [raw] = await reading
    assert len(raw) < BIG  # the response was cut short, not delivered whole
