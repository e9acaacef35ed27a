"""What the TLS port does with unusual first flights, over real sockets on 127.0.0.1: large
ClientHellos, hellos that are not hellos, odd server names, ALPN offers, plain HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
from collections.abc import Callable
from typing import Any

import pytest
from OpenSSL import SSL

from edgeproxy.config.model import EdgeLimits
from edgeproxy.tls.clienthello import MAX_CLIENT_HELLO
from edgeproxy.tls.reasons import error_text
from edgeproxy.tls.session import Reason
from edgeproxy.tls.trust import TrustState

from .aio import Server
from .conftest import API, Pki
from .test_clienthello import ext, hello_body, records, sni_ext, versions_ext
from .test_external_peers import run


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


def pyopenssl_handshake(port: int, server_name: bytes | None) -> str:
    """A pyOpenSSL client that sends `server_name` as is (stdlib clients refuse odd names).
    Returns the protocol version, or OpenSSL's error text."""
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        # Blocking, as OpenSSL reads the descriptor itself; the edge's handshake deadline (FAST)
        # ends any stall.
        sock.setblocking(True)
        conn = SSL.Connection(ctx, sock)
        if server_name is not None:
            conn.set_tlsext_host_name(server_name)
        conn.set_connect_state()
        try:
            conn.do_handshake()
        except SSL.Error as exc:
            return error_text(exc)
        return conn.get_protocol_version_name()


async def test_a_first_message_that_is_not_a_clienthello_is_unexpected(
    pki: Pki, start: Callable[..., Any]
) -> None:
    server = await start()
    for msg_type in (2, 11, 20):  # ServerHello, Certificate, Finished
        assert await send_raw(server, records(hello_body(), msg_type=msg_type)) == alert(10)
    await server.observer.wait_failed(3)
    assert {f[0] for f in server.observer.failed} == {Reason.NOT_TLS}


@pytest.mark.parametrize("name", [b"bad name", b"caf\xc3\xa9.example", b"a" * 254, b"x;y", b"*"])
async def test_a_server_name_that_is_not_a_host_name_gets_the_default_edge(
    pki: Pki, start: Callable[..., Any], state_for: Callable[..., TrustState], name: bytes
) -> None:
    server = await start(state_for(mode="request", default=True))
    assert await asyncio.to_thread(pyopenssl_handshake, server.port, name) == "TLSv1.3"
    async with asyncio.timeout(5):
        while not server.observer.done:
            await server.observer.changed.wait()
            server.observer.changed.clear()
    [(session, _)] = server.observer.done
    assert (session.edge.name, session.sni) == ("api", None)


@pytest.mark.parametrize("name", [b"bad name", b"a" * 254, b"caf\xc3\xa9.example"])
async def test_a_server_name_that_is_not_a_host_name_is_unrecognized_without_a_default(
    pki: Pki, start: Callable[..., Any], state_for: Callable[..., TrustState], name: bytes
) -> None:
    server = await start(state_for(mode="request"))
    outcome = await asyncio.to_thread(pyopenssl_handshake, server.port, name)
    assert "unrecognized name" in outcome
    await server.observer.wait_failed()
    [(reason, sni, edge, _, _)] = server.observer.failed
    assert (reason, sni, edge) == (Reason.SNI_MISMATCH, None, None)


@pytest.mark.parametrize("name", [b"a" * 256, b"nul\0.example"])
async def test_a_server_name_openssl_cannot_take_is_unrecognized_even_with_a_default(
    pki: Pki, start: Callable[..., Any], state_for: Callable[..., TrustState], name: bytes
) -> None:
    """pyOpenSSL will not send a NUL byte, so this hello is built by hand."""
    server = await start(state_for(mode="request", default=True))
    hello = records(hello_body(sni_ext(name) + versions_ext(0x0304)))
    assert await send_raw(server, hello) == alert(112)
    await server.observer.wait_failed()
    [(reason, sni, edge, _, _)] = server.observer.failed
    assert (reason, sni, edge) == (Reason.SNI_MISMATCH, None, None)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
async def test_the_server_name_is_acknowledged(
    pki: Pki, start: Callable[..., Any], state_for: Callable[..., TrustState], version: str
) -> None:
    """RFC 6066 §3: a server that used the name sends an empty server_name extension back (in
    EncryptedExtensions under TLS 1.3); s_client -tlsextdebug lists what the server sent."""
    server = await start(state_for(mode="request", alpn=("http/1.1",)))
    code, out = await run(
        "openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-servername", API,
        "-tlsextdebug", version,
    )  # fmt: skip
    assert code == 0, out
    assert 'TLS server extension "server name" (id=0), len=0' in out


async def alpn_handshake(server: Server, ctx: ssl.SSLContext) -> str | None:
    """Handshake, one echo, and the protocol the client saw selected."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, ssl=ctx, server_hostname=API
    )
    try:
        writer.write(b"ping")
        async with asyncio.timeout(5):
            assert await reader.readexactly(4) == b"ping"
        ssl_object = writer.get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject)
        return ssl_object.selected_alpn_protocol()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


@pytest.mark.parametrize(
    ("offer", "chosen"),
    [
        (["http/1.1"], "http/1.1"),
        (["h2", "http/1.1"], "h2"),
        (["http/1.1", "h2"], "h2"),  # the server's preference wins (RFC 7301 section 3.2)
        (["spdy/3", "http/1.1"], "http/1.1"),
        (["h2"], "h2"),
    ],
)
async def test_alpn_selects_by_the_edges_preference(
    pki: Pki, start: Callable[..., Any], offer: list[str], chosen: str
) -> None:
    server = await start()
    ctx = pki.client_context(pki.good)
    ctx.set_alpn_protocols(offer)
    assert await alpn_handshake(server, ctx) == chosen
    [(session, _)] = server.observer.done
    assert session.alpn == chosen


async def test_no_alpn_offer_is_http_1_1(pki: Pki, start: Callable[..., Any]) -> None:
    server = await start()
    assert await alpn_handshake(server, pki.client_context(pki.good)) is None
    [(session, _)] = server.observer.done
    assert session.alpn is None


@pytest.mark.parametrize("offer", [["h2"], ["h2", "h3"], ["x" * 200]])
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_an_offer_without_http_1_1_is_refused_by_an_http_1_1_edge(
    pki: Pki,
    start: Callable[..., Any],
    state_for: Callable[..., TrustState],
    offer: list[str],
    version: ssl.TLSVersion,
) -> None:
    server = await start(state_for(alpn=("http/1.1",)))
    ctx = pki.client_context(pki.good, tls=version)
    ctx.set_alpn_protocols(offer)
    with pytest.raises(ssl.SSLError, match="no application protocol"):
        await alpn_handshake(server, ctx)
    await server.observer.wait_failed()
    [(reason, sni, edge, _, _)] = server.observer.failed
    assert (reason, sni, edge) == (Reason.NO_APPLICATION_PROTOCOL, API, "api")
    assert server.apps == []


@pytest.mark.parametrize("offer", [None, ["http/1.1"]])
async def test_an_h2_only_edge_refuses_http_1_1_and_no_alpn(
    pki: Pki,
    start: Callable[..., Any],
    state_for: Callable[..., TrustState],
    offer: list[str] | None,
) -> None:
    server = await start(state_for(alpn=("h2",)))
    ctx = pki.client_context(pki.good)
    if offer is not None:
        ctx.set_alpn_protocols(offer)
    with pytest.raises(ssl.SSLError, match="no application protocol"):
        await alpn_handshake(server, ctx)
    await server.observer.wait_failed()
    assert [f[0] for f in server.observer.failed] == [Reason.NO_APPLICATION_PROTOCOL]


@pytest.mark.parametrize(
    "request_head",
    [b"GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n", b"POST /x HTTP/1.0\r\n\r\n", b"HEAD / "],
)
async def test_plain_http_gets_a_plain_400(
    pki: Pki, start: Callable[..., Any], request_head: bytes
) -> None:
    server = await start()
    answer = await send_raw(server, request_head)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"\r\nConnection: close\r\n" in head + b"\r\n"
    assert f"\r\nContent-Length: {len(body)}".encode() in head
    assert body == b"This port speaks TLS: use https://\n"
    await server.observer.wait_failed()
    [(reason, sni, edge, _, _)] = server.observer.failed
    assert (reason, sni, edge) == (Reason.PLAIN_HTTP, None, None)
    assert server.apps == []


@pytest.mark.parametrize("junk", [b"SSH-2.0-OpenSSH_9.6\r\n", b"GETS\r\n", b"\x00" * 16])
async def test_other_bytes_are_not_tls_and_get_nothing(
    pki: Pki, start: Callable[..., Any], junk: bytes
) -> None:
    server = await start()
    assert await send_raw(server, junk) == b""
    await server.observer.wait_failed()
    assert [f[0] for f in server.observer.failed] == [Reason.NOT_TLS]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize(("offer", "selected"), [("h2,http/1.1", True), ("h2", False)])
async def test_s_client_alpn(
    pki: Pki, start: Callable[..., Any], state_for: Callable[..., TrustState], offer: str,
    selected: bool,
) -> None:  # fmt: skip
    server = await start(state_for(mode="request", alpn=("http/1.1",)))
    code, out = await run(
        "openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-servername", API,
        "-alpn", offer,
    )  # fmt: skip
    if selected:
        assert code == 0, out
        assert "ALPN protocol: http/1.1" in out
    else:
        assert code != 0
        assert "no application protocol" in out
