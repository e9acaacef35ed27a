"""Hostile or broken peers (docs/dataplane.md limits, docs/security.md bounded buffers and
deadlines): each is closed or
answered, counted with its reason, and never disturbs a good connection."""

from __future__ import annotations

import asyncio
import os

import pytest

from support.nodes import poll
from support.origin import RecordingOrigin

from .clients import aget, connection, exchange, send_raw
from .conftest import Running
from .pki import E2ePki

pytestmark = pytest.mark.slow

CLEAR_TEXT = b"GET / HTTP/1.1\r\nHost: api.test\r\nConnection: keep-alive\r\n\r\n"


async def test_garbage_is_closed_while_a_concurrent_good_connection_keeps_working(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    before = await node.status.metrics()
    good = connection(pki, node.port, "api.test", pki.alice)
    try:
        assert (await asyncio.to_thread(exchange, good, "/before")).status == 200
        socket_before = good.sock
        noise, clear = await asyncio.gather(
            asyncio.to_thread(send_raw, node.port, os.urandom(4096)),
            asyncio.to_thread(send_raw, node.port, CLEAR_TEXT),
        )
        # Random bytes get at most one TLS alert record; clear-text HTTP a plain 400.
        assert noise == b"" or (noise[:1] == b"\x15" and len(noise) == 7), noise
        assert clear.startswith(b"HTTP/1.1 400 Bad Request\r\n"), clear
        assert b"This port speaks TLS" in clear
        assert (await asyncio.to_thread(exchange, good, "/after")).status == 200
        assert good.sock is socket_before
    finally:
        good.close()
    after = await node.status.metrics()
    assert after.handshakes("not_tls") >= before.handshakes("not_tls") + 1
    assert after.handshakes("plain_http") == before.handshakes("plain_http") + 1
    assert "/" not in origin.paths()

    async def all_closed() -> bool:
        metrics = await node.status.metrics()
        return metrics.value("edgeproxy_connections_active") == 0

    await poll(all_closed, "edgeproxy_connections_active to return to 0")


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x16\x03\x01\x02\x00\x01"],  # nothing; a record header promising 512 bytes, then 1
    ids=["silent", "partial-hello"],
)
async def test_stalled_client_hello_is_closed_with_reason_timeout(
    node: Running, payload: bytes
) -> None:
    before = (await node.status.metrics()).handshakes("timeout")
    # client_hello_timeout is 1 s in the node config; send_raw waits at most 10 s for the close.
    assert await asyncio.to_thread(send_raw, node.port, payload) == b""
    assert (await node.status.metrics()).handshakes("timeout") == before + 1


async def test_established_connection_outlives_the_client_hello_deadline(
    node: Running, pki: E2ePki
) -> None:
    conn = connection(pki, node.port, "api.test", pki.alice)
    try:
        assert (await asyncio.to_thread(exchange, conn, "/idle-1")).status == 200
        await asyncio.sleep(1.5)  # past client_hello_timeout (1 s): that deadline is not idle time
        assert (await asyncio.to_thread(exchange, conn, "/idle-2")).status == 200
    finally:
        conn.close()


# 6 KiB, not more: the aiohttp origin refuses header lines over 8 KiB itself.
@pytest.mark.parametrize(("size", "status"), [(6 * 1024, 200), (20 * 1024, 431)])
async def test_request_header_size_limit(
    node: Running, pki: E2ePki, origin: RecordingOrigin, size: int, status: int
) -> None:
    response = await aget(pki, node.port, "api.test", pki.alice, "/big", {"X-Big": "a" * size})
    assert response.status == status
    assert ("/big" in origin.paths()) is (status == 200)
    if status != 200:
        assert response.headers["content-type"] == "application/problem+json"


async def test_origin_down_is_502_and_origin_up_is_200(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    assert (await aget(pki, node.port, "api.test", pki.alice, "/up")).status == 200
    await origin.stop()
    response = await aget(pki, node.port, "api.test", pki.alice, "/down")
    assert response.status == 502
    assert response.json()["status"] == 502
    metrics = await node.status.metrics()
    assert (
        metrics.value(
            "edgeproxy_http_requests_total", edge_certificate="api", code="502", protocol="h1"
        )
        == 1
    )
