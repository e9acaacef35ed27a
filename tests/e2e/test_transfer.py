"""Bytes through the whole path (docs/dataplane.md HTTP): large bodies both ways over TLS with flow
control,
keep-alive framing after them, pipelined requests answered in order, forwarding headers."""

from __future__ import annotations

import asyncio
import hashlib
import socket

import pytest

from support.origin import CHUNK, RecordingOrigin, pattern

from .clients import TIMEOUT, aget, connection, exchange, read_until_closed
from .conftest import Running
from .pki import E2ePki

pytestmark = pytest.mark.slow

MIB = 1024 * 1024


def expected_digest(size: int) -> str:
    digest = hashlib.sha256()
    for offset in range(0, size, CHUNK):
        digest.update(pattern(offset, min(CHUNK, size - offset)))
    return digest.hexdigest()


async def test_large_upload_and_download_then_the_connection_is_reused(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    upload = bytes(range(256)) * (4 * MIB // 256)
    conn = connection(pki, node.port, "api.test", pki.alice)
    try:
        sent = await asyncio.to_thread(
            exchange, conn, "/upload", {"Content-Type": "application/octet-stream"}, "POST", upload
        )
        assert sent.status == 200
        seen = origin.last("/upload")
        assert (seen.body_bytes, seen.body_sha256) == (
            len(upload),
            hashlib.sha256(upload).hexdigest(),
        )

        size = 8 * MIB + 123
        received = await asyncio.to_thread(exchange, conn, f"/bytes/{size}")
        assert received.status == 200
        assert len(received.body) == size
        assert hashlib.sha256(received.body).hexdigest() == expected_digest(size)
        socket_before = conn.sock
        assert (await asyncio.to_thread(exchange, conn, "/after-bytes")).status == 200
        assert conn.sock is socket_before
    finally:
        conn.close()


def pipelined(pki: E2ePki, port: int, paths: list[str]) -> bytes:
    """Every request written at once on one TLS connection, the last one closing it."""
    requests = b"".join(
        f"GET {path} HTTP/1.1\r\nHost: api.test\r\n"
        f"{'Connection: close' if i == len(paths) - 1 else 'X-Keep: 1'}\r\n\r\n".encode()
        for i, path in enumerate(paths)
    )
    context = pki.client_context(pki.alice)
    with (
        socket.create_connection(("127.0.0.1", port), TIMEOUT) as sock,
        context.wrap_socket(sock, server_hostname="api.test") as tls,
    ):
        tls.sendall(requests)
        return read_until_closed(tls)


async def test_pipelined_requests_are_answered_in_order(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    paths = [f"/pipe-{i}" for i in range(5)]
    raw = await asyncio.to_thread(pipelined, pki, node.port, paths)
    assert raw.count(b"HTTP/1.1 200 ") == len(paths)
    answered = [raw.index(f'"path": "{p}"'.encode()) for p in paths]
    assert answered == sorted(answered)
    assert [p for p in origin.paths() if p.startswith("/pipe-")] == paths


async def test_origin_learns_the_client_address_and_scheme(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    spoofed = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"}
    assert (await aget(pki, node.port, "api.test", pki.alice, "/fwd", spoofed)).status == 200
    seen = origin.last("/fwd")
    assert seen.one("X-Forwarded-For").split(",")[-1].strip() == "127.0.0.1"
    assert seen.one("X-Forwarded-Proto") == "https"
    assert seen.one("X-Forwarded-Host").startswith("api.test")
    assert seen.all("Via")
