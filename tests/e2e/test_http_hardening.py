"""HTTP hardening, as an attacker would try it: raw request bytes over real TLS to a running node,
and exactly what the recording origin received (framing, upgrades, expectations, normalisation,
per-connection request limit)."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count

import pytest

from support.origin import RecordingOrigin

from .clients import TIMEOUT, read_until_closed
from .conftest import MakeFiles, Running, StartNode
from .pki import Client, E2ePki

pytestmark = pytest.mark.slow
SNI = "api.test"
_paths = count()


def new_path(name: str) -> str:
    return f"/hardening-{name}-{next(_paths)}"


@contextmanager
def tls_socket(pki: E2ePki, port: int, client: Client | None) -> Iterator[ssl.SSLSocket]:
    context = pki.client_context(client)
    with (
        socket.create_connection(("127.0.0.1", port), TIMEOUT) as sock,
        context.wrap_socket(sock, server_hostname=SNI) as tls,
    ):
        yield tls


def read_until(sock: ssl.SSLSocket, marker: bytes) -> bytes:
    """Bytes up to and including the first `marker`, bounded in size and time."""
    deadline = time.monotonic() + TIMEOUT
    data = b""
    while marker not in data and len(data) < 1 << 20:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def exchange(pki: E2ePki, port: int, payload: bytes) -> bytes:
    """One connection: write `payload` at once, return everything read until the edge closes."""
    with tls_socket(pki, port, pki.alice) as tls:
        tls.sendall(payload)
        return read_until_closed(tls)


async def send(pki: E2ePki, node: Running, payload: bytes) -> bytes:
    return await asyncio.to_thread(exchange, pki, node.port, payload)


def statuses(raw: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


def get(path: str, extra: str = "", *, close: bool = False, host: str = SNI) -> bytes:
    connection = "Connection: close\r\n" if close else ""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}{connection}\r\n".encode("latin-1")


# -- HTTP/1.0 with Transfer-Encoding ---------------------------------------------------------------


async def test_http10_with_transfer_encoding_is_refused_and_closes(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    first, smuggled = new_path("h10"), new_path("smuggled")
    payload = (
        f"POST {first} HTTP/1.0\r\nHost: {SNI}\r\nConnection: keep-alive\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ).encode() + get(smuggled)
    raw = await send(pki, node, payload)
    assert statuses(raw) == [400]
    assert b"Connection: close" in raw
    assert first not in origin.paths()
    assert smuggled not in origin.paths()


# -- Upgrade ---------------------------------------------------------------------------------------


async def test_only_the_websocket_token_upgrades(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    evil, after = new_path("evil"), new_path("after")
    raw = await send(
        pki,
        node,
        get(evil, "Connection: Upgrade\r\nUpgrade: notwebsocket-evil\r\n") + get(after, close=True),
    )
    assert statuses(raw) == [200, 200]
    seen = origin.last(evil)
    assert seen.all("Upgrade") == []
    assert all("websocket" not in v.lower() for _, v in seen.headers), seen.headers
    assert after in origin.paths()


@pytest.mark.parametrize(
    "offer", ["websocket2", "web socket", "websocket/13, @bad", "x-websocket", "notwebsocket-evil"]
)
async def test_near_websocket_offers_do_not_upgrade(
    node: Running, pki: E2ePki, origin: RecordingOrigin, offer: str
) -> None:
    path = new_path("near")
    raw = await send(
        pki, node, get(path, f"Connection: Upgrade\r\nUpgrade: {offer}\r\n", close=True)
    )
    assert statuses(raw) == [200]
    assert origin.last(path).all("Upgrade") == []


async def test_upgrade_answered_without_101_carries_on_as_http(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    refused, after = new_path("refused"), new_path("after-refused")
    ws = (
        "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    )
    # The second request is pipelined behind the upgrade request: once the origin says 200, it
    # is HTTP, and it is served (not held as tunnel bytes until a timeout).
    raw = await send(pki, node, get(refused, ws) + get(after, close=True))
    assert statuses(raw) == [200, 200]
    assert origin.last(refused).one("Upgrade") == "websocket"
    assert after in origin.paths()


# -- Expect: 100-continue --------------------------------------------------------------------------


def _expecting(pki: E2ePki, port: int, head: bytes, body: bytes) -> tuple[bytes, bytes]:
    with tls_socket(pki, port, pki.alice) as tls:
        tls.sendall(head)
        interim = read_until(tls, b"\r\n\r\n")
        if interim.startswith(b"HTTP/1.1 100 "):
            tls.sendall(body)
        return interim, read_until_closed(tls)


async def test_expect_100_continue_is_answered_by_the_edge(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    path = new_path("expect")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {SNI}\r\nContent-Length: 5\r\n"
        "Expect: 100-continue\r\nConnection: close\r\n\r\n"
    ).encode()
    interim, rest = await asyncio.to_thread(_expecting, pki, node.port, head, b"hello")
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert statuses(rest) == [200]  # and no second 100
    seen = origin.last(path)
    assert seen.all("Expect") == []  # the expectation was met: the origin is not asked again
    assert seen.body_bytes == 5


async def test_no_100_continue_for_a_request_the_edge_refuses(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    path = new_path("expect-refused")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: unknown.example\r\nContent-Length: 5\r\n"
        "Expect: 100-continue\r\n\r\n"
    ).encode()
    interim, _ = await asyncio.to_thread(_expecting, pki, node.port, head, b"hello")
    assert interim.startswith(b"HTTP/1.1 421 ")
    assert path not in origin.paths()


# -- normalisation ---------------------------------------------------------------------------------


async def test_content_length_with_leading_zeros_reaches_the_origin_canonical(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    path = new_path("cl")
    payload = (
        f"POST {path} HTTP/1.1\r\nHost: {SNI}\r\nContent-Length: 0003\r\n"
        "Connection: close\r\n\r\nabc"
    ).encode()
    raw = await send(pki, node, payload)
    assert statuses(raw) == [200]
    seen = origin.last(path)
    assert seen.one("Content-Length") == "3"
    assert seen.body_bytes == 3


async def test_host_with_a_trailing_dot_reaches_the_origin_without_it(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    path = new_path("dot")
    raw = await send(pki, node, get(path, close=True, host=f"{SNI}."))
    assert statuses(raw) == [200]
    seen = origin.last(path)
    assert seen.one("Host") == SNI
    assert seen.one("X-Forwarded-Host") == SNI


@pytest.mark.parametrize("host", ["api..test", f"{SNI}..", f".{SNI}", f"{SNI}..:443", "."])
async def test_host_with_an_empty_label_is_refused(
    node: Running, pki: E2ePki, origin: RecordingOrigin, host: str
) -> None:
    path = new_path("label")
    raw = await send(pki, node, get(path, close=True, host=host))
    assert statuses(raw) == [400]
    assert path not in origin.paths()


@pytest.mark.parametrize(
    "target",
    [
        "http://user:secret@api.test{path}",
        "http://user@api.test{path}",
        "ftp://api.test{path}",
        "file://api.test{path}",
        "ws://api.test{path}",
        "http://api.test..{path}",
    ],
)
async def test_suspicious_absolute_form_targets_are_refused(
    node: Running, pki: E2ePki, origin: RecordingOrigin, target: str
) -> None:
    path = new_path("absolute")
    raw = await send(pki, node, get(target.format(path=path), close=True))
    assert statuses(raw) == [400]
    assert path not in origin.paths()


async def test_plain_absolute_form_still_works(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    path = new_path("absolute-ok")
    raw = await send(pki, node, get(f"https://{SNI}{path}", close=True))
    assert statuses(raw) == [200]
    assert path in origin.paths()


async def test_trace_is_refused(node: Running, pki: E2ePki, origin: RecordingOrigin) -> None:
    path, after = new_path("trace"), new_path("after-trace")
    payload = f"TRACE {path} HTTP/1.1\r\nHost: {SNI}\r\n\r\n".encode() + get(after, close=True)
    raw = await send(pki, node, payload)
    assert statuses(raw) == [405, 200]  # refused, and the connection goes on
    assert path not in origin.paths()


# -- max_requests_per_connection -------------------------------------------------------------------


async def test_a_connection_closes_after_max_requests(
    pki: E2ePki, origin: RecordingOrigin, node_files: MakeFiles, start_node: StartNode
) -> None:
    files = node_files()
    files.limits["max_requests_per_connection"] = 3
    running = await start_node(files)
    await running.admin.publish([pki.ca_a.pem, pki.root.pem])
    paths = [new_path("max") for _ in range(5)]
    raw = await send(pki, running, b"".join(get(p) for p in paths))
    assert statuses(raw) == [200, 200, 200]
    responses = raw.split(b"HTTP/1.1 ")[1:]
    assert [b"Connection: close" in r for r in responses] == [False, False, True]
    assert [p for p in origin.paths() if p in paths] == paths[:3]
