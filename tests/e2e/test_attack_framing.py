"""The attacker's catalogue for request framing (request smuggling): raw bytes over real TLS, and
what the recording origin received.

Every case is a request whose framing an origin could read differently from the edge, followed on
the same connection by a request the attacker hopes to slip past the edge. What must hold: the
edge answers the ambiguous request itself (400, or 405/501 where the method is the problem) and
closes, so neither it nor anything after it reaches the origin; or, where the framing is in fact
unambiguous, the origin receives one request with one body and the edge's own framing.
"""

from __future__ import annotations

import asyncio
import re
import socket
from itertools import count

import pytest

from support.origin import RecordingOrigin

from .clients import TIMEOUT, read_until_closed
from .conftest import Running
from .pki import E2ePki

pytestmark = pytest.mark.slow
SNI = "api.test"
_ids = count()


def exchange(pki: E2ePki, port: int, payload: bytes) -> bytes:
    context = pki.client_context(pki.alice)
    with (
        socket.create_connection(("127.0.0.1", port), TIMEOUT) as sock,
        context.wrap_socket(sock, server_hostname=SNI) as tls,
    ):
        tls.sendall(payload)
        return read_until_closed(tls)


def statuses(raw: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


def smuggled(marker: str) -> bytes:
    return f"GET /smuggled-{marker} HTTP/1.1\r\nHost: {SNI}\r\n\r\n".encode()


def post(path: str, fields: str) -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: {SNI}\r\n{fields}\r\n".encode("latin-1")


# name -> (head fields, body bytes up to where the smuggled request starts)
AMBIGUOUS = {
    "cl-te": ("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    "te-cl": ("Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", b"0\r\n\r\n"),
    "cl-cl-different": ("Content-Length: 0\r\nContent-Length: 44\r\n", b""),
    "cl-cl-same": ("Content-Length: 0\r\nContent-Length: 0\r\n", b""),
    "cl-list": ("Content-Length: 0, 44\r\n", b""),
    "cl-plus": ("Content-Length: +0\r\n", b""),
    "cl-negative": ("Content-Length: -1\r\n", b""),
    "cl-hex": ("Content-Length: 0x0\r\n", b""),
    "cl-space-inside": ("Content-Length: 0 0\r\n", b""),
    "te-xchunked": ("Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n"),
    "te-chunked-identity": ("Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n"),
    "te-identity": ("Transfer-Encoding: identity\r\n", b""),
    "te-twice": ("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", b"0\r\n\r\n"),
    "te-space-before-colon": ("Transfer-Encoding : chunked\r\n", b"0\r\n\r\n"),
    "te-tab-before-colon": ("Transfer-Encoding\t: chunked\r\n", b"0\r\n\r\n"),
    "te-vertical-tab": ("Transfer-Encoding: \x0bchunked\r\n", b"0\r\n\r\n"),
    "te-obs-fold": ("Transfer-Encoding: identity\r\n chunked\r\n", b"0\r\n\r\n"),
    "te-obs-fold-name": ("X-Padding: a\r\n\tTransfer-Encoding: chunked\r\n", b"0\r\n\r\n"),
    "te-quoted": ('Transfer-Encoding: "chunked"\r\n', b"0\r\n\r\n"),
    "te-nul": ("Transfer-Encoding: chunked\x00\r\n", b"0\r\n\r\n"),
    "nul-in-value": ("X-Note: a\x00b\r\nContent-Length: 0\r\n", b""),
    "nul-in-name": ("X-No\x00te: a\r\nContent-Length: 0\r\n", b""),
    "bare-lf-field": ("Content-Length: 0\nX-Other: 1\r\n", b""),
    "bare-cr-field": ("Content-Length: 0\rX-Other: 1\r\n", b""),
    "chunk-size-junk": ("Transfer-Encoding: chunked\r\n", b"zz\r\nabc\r\n0\r\n\r\n"),
    "chunk-size-negative": ("Transfer-Encoding: chunked\r\n", b"-3\r\nabc\r\n0\r\n\r\n"),
    "chunk-size-0x": ("Transfer-Encoding: chunked\r\n", b"0x3\r\nabc\r\n0\r\n\r\n"),
    "chunk-size-overflow": ("Transfer-Encoding: chunked\r\n", b"1" + b"0" * 20 + b"\r\nabc\r\n"),
    "chunk-size-space": ("Transfer-Encoding: chunked\r\n", b"3 \x00\r\nabc\r\n0\r\n\r\n"),
    "chunk-bare-lf": ("Transfer-Encoding: chunked\r\n", b"3\nabc\n0\n\n"),
    "chunk-data-too-long": ("Transfer-Encoding: chunked\r\n", b"3\r\nabcdef\r\n0\r\n\r\n"),
    "chunk-extension-huge": (
        "Transfer-Encoding: chunked\r\n",
        b"3;" + b"x" * 70000 + b"\r\nabc\r\n0\r\n\r\n",
    ),
    "http10-te": (None, b"0\r\n\r\n"),  # see below: the request line is HTTP/1.0
}


@pytest.mark.parametrize("case", sorted(AMBIGUOUS))
async def test_ambiguous_framing_is_answered_by_the_edge_and_closes(
    node: Running, pki: E2ePki, origin: RecordingOrigin, case: str
) -> None:
    fields, body = AMBIGUOUS[case]
    marker = f"{case}-{next(_ids)}"
    path = f"/ambiguous-{marker}"
    if fields is None:
        head = (
            f"POST {path} HTTP/1.0\r\nHost: {SNI}\r\nConnection: keep-alive\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
    else:
        head = post(path, fields)
    raw = await asyncio.to_thread(exchange, pki, node.port, head + body + smuggled(marker))
    assert statuses(raw) in ([400], [413], [431]), raw[:300]
    assert f"/smuggled-{marker}" not in origin.paths()
    assert path not in origin.paths()  # not even a truncated copy was taken for a request


async def test_a_bad_request_behind_a_good_one_stops_the_connection(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    marker = f"behind-{next(_ids)}"
    good = f"GET /good-{marker} HTTP/1.1\r\nHost: {SNI}\r\n\r\n".encode()
    bad = post(f"/bad-{marker}", "Content-Length: 1\r\nContent-Length: 2\r\n") + b"xx"
    raw = await asyncio.to_thread(exchange, pki, node.port, good + bad + smuggled(marker))
    assert statuses(raw) == [200, 400]
    assert f"/good-{marker}" in origin.paths()
    assert f"/bad-{marker}" not in origin.paths()
    assert f"/smuggled-{marker}" not in origin.paths()


async def test_body_that_looks_like_a_request_stays_a_body(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    """Unambiguous framing: the bytes inside the body are the body, byte for byte."""
    marker = f"inside-{next(_ids)}"
    inner = smuggled(marker)
    chunked = b"%x\r\n" % len(inner) + inner + b"\r\n0\r\n\r\n"
    payload = (
        post(f"/cl-{marker}", f"Content-Length: {len(inner)}\r\n")
        + inner
        + post(f"/te-{marker}", "Transfer-Encoding: chunked\r\nConnection: close\r\n")
        + chunked
    )
    raw = await asyncio.to_thread(exchange, pki, node.port, payload)
    assert statuses(raw) == [200, 200]
    assert origin.last(f"/cl-{marker}").body_bytes == len(inner)
    assert origin.last(f"/te-{marker}").body_bytes == len(inner)
    assert f"/smuggled-{marker}" not in origin.paths()


async def test_pipelined_requests_after_a_body_the_edge_refused(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    """A request refused before its body was read (421) must not leave the body to be parsed
    as the next request."""
    marker = f"refused-body-{next(_ids)}"
    inner = smuggled(marker)
    payload = (
        f"POST /x-{marker} HTTP/1.1\r\nHost: elsewhere.example\r\n"
        f"Content-Length: {len(inner)}\r\n\r\n"
    ).encode() + inner
    raw = await asyncio.to_thread(exchange, pki, node.port, payload)
    assert statuses(raw) == [421]
    assert f"/smuggled-{marker}" not in origin.paths()


async def test_a_transfer_encoding_spelled_with_underscore_frames_nothing(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    """`Transfer_Encoding` is no Transfer-Encoding to the edge, which frames by Content-Length,
    and it must not reach an origin that would fold `_` into `-` and frame by it."""
    marker = f"underscore-{next(_ids)}"
    body = b"0\r\n\r\n"
    payload = (
        post(f"/u-{marker}", f"Transfer_Encoding: chunked\r\nContent-Length: {len(body)}\r\n")
        + body
    )
    payload += f"GET /next-{marker} HTTP/1.1\r\nHost: {SNI}\r\nConnection: close\r\n\r\n".encode()
    raw = await asyncio.to_thread(exchange, pki, node.port, payload)
    assert statuses(raw) == [200, 200]
    seen = origin.last(f"/u-{marker}")
    assert seen.body_bytes == len(body)
    assert [k for k, _ in seen.headers if "transfer" in k.lower()] == []
    assert f"/next-{marker}" in origin.paths()  # a request the edge saw and checked itself
