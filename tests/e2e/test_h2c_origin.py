"""HTTP/2 origins (`h2c://`, docs/dataplane.md "HTTP/2 origins"): real clients through a whole
node to an h2c origin; the same rewriting as towards HTTP/1.1 origins; flow control, trailers,
resets, connection loss and GOAWAY from the origin."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest
from h2.events import DataReceived, StreamEnded, StreamReset

from support.h2c_origin import H2cOrigin, patterned
from support.h2raw import H2Raw
from support.nodes import EdgeSpec

from .clients import curl
from .conftest import AccessLog, MakeFiles, Running, StartNode
from .pki import E2ePki

pytestmark = pytest.mark.slow
BIG = 3 * 1024 * 1024 + 5  # past every window on the way (128 KiB streams, 1 MiB connections)


@pytest.fixture
async def h2c() -> AsyncIterator[H2cOrigin]:
    origin = H2cOrigin()
    await origin.start()
    yield origin
    await origin.stop()


@pytest.fixture
async def h2c_node(
    pki: E2ePki, node_files: MakeFiles, start_node: StartNode, h2c: H2cOrigin
) -> Running:
    edges = [EdgeSpec("api", ("api.test",), identity_headers=("xfcc",), origin=h2c.url)]
    running = await start_node(node_files(edges=edges))
    running.set_id, running.version = await running.admin.publish([pki.ca_a.pem])
    return running


def _client(pki: E2ePki, port: int, http2: bool = True) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        http2=http2,
        http1=not http2,
        verify=pki.client_context(pki.alice),
        base_url=f"https://127.0.0.1:{port}",
        headers={"Host": "api.test"},
        timeout=15,
    )


_SNI = {"sni_hostname": "api.test"}


async def test_httpx_http2_reaches_the_h2c_origin_with_the_identity(
    h2c_node: Running, h2c: H2cOrigin, pki: E2ePki, access_log: AccessLog
) -> None:
    async with _client(pki, h2c_node.port) as client:
        answer = await client.get(
            "/hello?x=1",
            headers={"X-Forwarded-Client-Cert": "forged", "x_client_cert_verify": "forged"},
            extensions=_SNI,
        )
    assert (answer.http_version, answer.status_code) == ("HTTP/2", 200)
    assert answer.content == b"ok:/hello?x=1"
    [seen] = h2c.requests
    headers = seen.headers
    assert (headers[b":method"], headers[b":path"]) == (b"GET", b"/hello?x=1")
    assert headers[b":authority"] == b"api.test"
    assert headers[b"te"] == b"trailers"
    assert pki.alice.subject.split(",")[0].encode() in headers[b"x-forwarded-client-cert"]
    assert b"forged" not in b"".join(headers.values())
    assert not any(name.startswith(b"x_") for name in headers)
    [line] = [r for r in access_log.records("request") if r.path == "/hello?x=1"]
    assert (line.protocol, line.status) == ("h2", 200)


async def test_curl_http2_through_to_the_h2c_origin(
    h2c_node: Running, h2c: H2cOrigin, pki: E2ePki
) -> None:
    run, status, body = await curl(
        pki, h2c_node.port, "api.test", pki.alice, "/curl", extra=("--http2",)
    )
    assert status == 200, run
    assert body == b"ok:/curl"
    assert h2c.paths() == [b"/curl"]


async def test_large_bodies_stream_both_ways_within_the_windows(
    h2c_node: Running, h2c: H2cOrigin, pki: E2ePki
) -> None:
    sent = patterned(BIG)
    async with _client(pki, h2c_node.port) as client:
        echoed = await client.post("/echo", content=sent, extensions=_SNI)
        big = await client.get(f"/big/{BIG}", extensions=_SNI)
    assert (echoed.status_code, big.status_code) == (200, 200)
    assert echoed.content == sent
    assert big.content == sent
    assert h2c.requests[0].body == sent


async def test_an_http1_client_gets_the_origin_trailers_in_its_chunked_body(
    h2c_node: Running, h2c: H2cOrigin, pki: E2ePki
) -> None:
    ctx = pki.client_context(pki.alice)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", h2c_node.port, ssl=ctx, server_hostname="api.test"
    )
    writer.write(
        b"GET /one HTTP/1.1\r\nHost: api.test\r\nTE: trailers\r\nConnection: close\r\n\r\n"
    )
    raw = await asyncio.wait_for(reader.read(-1), 15)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body == b"7\r\nok:/one\r\n0\r\nx-origin-trailer: done\r\n\r\n"
    async with _client(pki, h2c_node.port, http2=False) as client:
        big = await client.get(f"/big/{BIG}", extensions=_SNI)
    assert (big.http_version, big.status_code) == ("HTTP/1.1", 200)
    assert big.content == patterned(BIG)


async def _raw(pki: E2ePki, node: Running) -> H2Raw:
    ctx = pki.client_context(pki.alice)
    return await H2Raw.connect(node.port, ctx, "api.test")


async def test_trailers_pass_both_ways_and_identity_trailers_are_dropped(
    h2c_node: Running, h2c: H2cOrigin, pki: E2ePki
) -> None:
    raw = await _raw(pki, h2c_node)
    sid = raw.h2.get_next_available_stream_id()
    raw.h2.send_headers(
        sid,
        [(":method", "POST"), (":scheme", "https"), (":authority", "api.test"), (":path", "/echo")],
    )
    raw.h2.send_data(sid, b"body")
    raw.h2.send_headers(
        sid, [("x-request-trailer", "yes"), ("x-client-cert-verify", "SUCCESS")], end_stream=True
    )
    await raw.flush()
    events = await raw.read(until=StreamEnded)
    await raw.close()
    [seen] = h2c.requests
    assert seen.body == b"body"
    assert seen.trailers == {b"x-request-trailer": b"yes"}
    trailers = [e for e in events if type(e).__name__ == "TrailersReceived"]
    assert [dict(t.headers) for t in trailers] == [{b"x-origin-trailer": b"done"}]  # type: ignore[attr-defined]


async def test_a_client_reset_reaches_the_origin(
    h2c_node: Running, h2c: H2cOrigin, pki: E2ePki, access_log: AccessLog
) -> None:
    raw = await _raw(pki, h2c_node)
    sid = raw.request("api.test", "/echo", end=False, extra=[("content-type", "text/plain")])
    raw.h2.send_data(sid, b"first part")
    await raw.flush()
    for _ in range(100):  # bounded: the request must reach the origin before the reset
        if h2c.requests and h2c.requests[0].body:
            break
        await asyncio.sleep(0.05)
    raw.h2.reset_stream(sid)
    await raw.flush()
    for _ in range(100):
        if h2c.requests[0].reset:
            break
        await asyncio.sleep(0.05)
    await raw.close()
    assert h2c.requests[0].reset


async def test_an_origin_reset_resets_the_client_stream_and_before_a_head_is_502(
    h2c_node: Running, h2c: H2cOrigin, pki: E2ePki
) -> None:
    raw = await _raw(pki, h2c_node)
    sid = raw.request("api.test", "/reset")
    await raw.flush()
    events = await raw.read(until=StreamReset)
    # The head and the reset may come in one read from the origin: then only the reset is sent.
    assert [e.stream_id for e in events if isinstance(e, StreamReset)] == [sid]
    assert not any(isinstance(e, StreamEnded) for e in events)
    await raw.close()
    async with _client(pki, h2c_node.port) as client:
        early = await client.get("/reset-early", extensions=_SNI)
        after = await client.get("/after-reset", extensions=_SNI)
    assert early.status_code == 502
    assert after.status_code == 200


async def test_origin_connection_loss_resets_the_stream_and_the_next_request_is_served(
    h2c_node: Running, h2c: H2cOrigin, pki: E2ePki
) -> None:
    raw = await _raw(pki, h2c_node)
    raw.request("api.test", "/drop")
    await raw.flush()
    events = await raw.read(until=StreamReset)
    await raw.close()
    assert any(isinstance(e, StreamReset) for e in events)
    assert b"".join(e.data or b"" for e in events if isinstance(e, DataReceived)) == b"partial"
    async with _client(pki, h2c_node.port) as client:
        after = await client.get("/after-drop", extensions=_SNI)
    assert after.status_code == 200
    assert [r.connection for r in h2c.requests] == [0, 1]


async def test_an_origin_goaway_moves_later_requests_to_a_new_connection(
    h2c_node: Running, h2c: H2cOrigin, pki: E2ePki
) -> None:
    async with _client(pki, h2c_node.port) as client:
        first = await client.get("/goaway", extensions=_SNI)
        second = await client.get("/second", extensions=_SNI)
    assert (first.status_code, first.content) == (200, b"ok:/goaway")
    assert (second.status_code, second.content) == (200, b"ok:/second")
    assert [r.connection for r in h2c.requests] == [0, 1]


async def test_an_unreachable_h2c_origin_is_502(
    pki: E2ePki, node_files: MakeFiles, start_node: StartNode
) -> None:
    edges = [EdgeSpec("api", ("api.test",), origin="h2c://127.0.0.1:9")]
    node = await start_node(node_files(edges=edges))
    await node.admin.publish([pki.ca_a.pem])
    async with _client(pki, node.port) as client:
        answer = await client.get("/nowhere", extensions=_SNI)
    assert answer.status_code == 502
    assert isinstance(pki.client_context(pki.alice), ssl.SSLContext)
