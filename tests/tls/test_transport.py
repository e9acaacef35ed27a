"""The asyncio adapter on 127.0.0.1 with real peers: stdlib clients, raw sockets, curl, s_client."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from edgeproxy.config.model import EdgeLimits
from edgeproxy.dataplane import tls_transport
from edgeproxy.tls.engine import PLAIN_HTTP_ANSWER
from edgeproxy.tls.session import Reason
from edgeproxy.tls.trust import TrustState

from .aio import FAST, Server, start_server
from .conftest import API, Pki


@contextlib.asynccontextmanager
async def tls_client(
    server: Server, ctx: ssl.SSLContext, sni: str = API
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, ssl=ctx, server_hostname=sni
    )
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def roundtrip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> bytes:
    writer.write(data)
    async with asyncio.timeout(5):
        return await reader.readexactly(len(data))


class RawTls:
    """A stdlib SSLObject driven over a plain TCP stream, for byte-exact control of flights."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        obj: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
    ) -> None:
        self.reader, self.writer, self.obj = reader, writer, obj
        self.incoming, self.outgoing = incoming, outgoing

    @classmethod
    async def open(cls, server: Server, ctx: ssl.SSLContext) -> RawTls:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        return cls(
            reader,
            writer,
            ctx.wrap_bio(incoming, outgoing, server_hostname=API),
            incoming,
            outgoing,
        )

    async def handshake(self) -> None:
        async with asyncio.timeout(5):
            while True:
                try:
                    self.obj.do_handshake()
                    return  # Finished is in self.outgoing, not sent yet
                except ssl.SSLWantReadError:
                    self.writer.write(self.outgoing.read())
                    self.incoming.write(await self.reader.read(65536))

    def flush(self) -> None:
        self.writer.write(self.outgoing.read())

    async def read(self) -> bytes:
        async with asyncio.timeout(5):
            while True:
                try:
                    return self.obj.read(65536)
                except ssl.SSLWantReadError:
                    data = await self.reader.read(65536)
                    if not data:
                        self.incoming.write_eof()
                    self.incoming.write(data)


async def test_echo_over_a_real_socket(pki: Pki, start: Callable[..., Any]) -> None:
    server = await start()
    async with tls_client(server, pki.client_context(pki.good)) as (reader, writer):
        assert await roundtrip(reader, writer, b"hello") == b"hello"
        [app] = server.apps
        session = app.session
        assert session.edge.name == "api"
        assert session.verify_header_value == "SUCCESS"
        assert app.transport.get_extra_info("peername") == writer.get_extra_info("sockname")
        [(done, duration)] = server.observer.done
        assert done is session
        assert 0 <= duration < 5
    async with asyncio.timeout(5):
        assert await app.lost is None
    assert server.observer.failed == []


async def test_garbage_is_closed_without_affecting_a_good_connection(
    pki: Pki, start: Callable[..., Any]
) -> None:
    server = await start()
    async with tls_client(server, pki.client_context(pki.good)) as (reader, writer):
        assert await roundtrip(reader, writer, b"one") == b"one"
        for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x00", bytes(300)):
            raw_reader, raw_writer = await asyncio.open_connection("127.0.0.1", server.port)
            raw_writer.write(junk)
            async with asyncio.timeout(5):
                answer = await raw_reader.read()
            assert answer in (b"", b"\x15\x03\x03\x00\x02\x022", PLAIN_HTTP_ANSWER)
            raw_writer.close()
        assert await roundtrip(reader, writer, b"two") == b"two"
    await server.observer.wait_failed(3)
    reasons = [f[0] for f in server.observer.failed]
    assert reasons == [Reason.PLAIN_HTTP, Reason.NOT_TLS, Reason.NOT_TLS]
    assert server.observer.failed[0][4][0] == "127.0.0.1"


async def test_a_port_probe_is_not_a_failed_handshake(pki: Pki, start: Callable[..., Any]) -> None:
    """Connect and close without a byte (a health check): nothing to count. Its twin, a client
    that sends part of a ClientHello and leaves, is a failed handshake."""
    server = await start()
    for sent in (b"", b"\x16"):
        _, raw_writer = await asyncio.open_connection("127.0.0.1", server.port)
        raw_writer.write(sent)
        raw_writer.close()
        await raw_writer.wait_closed()
    # The partial one is reported; had the probe been reported too, it would be first.
    await server.observer.wait_failed(1)
    async with tls_client(server, pki.client_context(pki.good)) as (reader, writer):
        assert await roundtrip(reader, writer, b"after") == b"after"
    assert [f[0] for f in server.observer.failed] == [Reason.OTHER]


async def test_stalled_clienthello_times_out(pki: Pki, start: Callable[..., Any]) -> None:
    limits = EdgeLimits(client_hello_timeout=0.2, handshake_timeout=3.0)
    server = await start(limits=limits)
    raw_reader, raw_writer = await asyncio.open_connection("127.0.0.1", server.port)
    raw_writer.write(b"\x16\x03\x01")  # a ClientHello that never finishes
    async with asyncio.timeout(5):
        with contextlib.suppress(ConnectionResetError):
            assert await raw_reader.read() == b""
    raw_writer.close()
    [(reason, sni, edge, duration, _peer)] = server.observer.failed
    assert (reason, sni, edge) == (Reason.TIMEOUT, None, None)
    assert limits.client_hello_timeout <= duration < limits.handshake_timeout


async def test_stalled_handshake_times_out(pki: Pki, start: Callable[..., Any]) -> None:
    server = await start()
    client = await RawTls.open(server, pki.client_context(pki.good))
    with pytest.raises(ssl.SSLWantReadError):
        client.obj.do_handshake()
    client.flush()  # the ClientHello, then silence
    await server.observer.wait_failed()
    [(reason, sni, edge, duration, _peer)] = server.observer.failed
    assert (reason, sni, edge) == (Reason.TIMEOUT, API, "api")
    assert duration >= FAST.handshake_timeout
    client.writer.close()


async def test_request_pipelined_with_the_last_flight(pki: Pki, start: Callable[..., Any]) -> None:
    server = await start()
    client = await RawTls.open(server, pki.client_context(pki.good))
    await client.handshake()
    client.obj.write(b"early request")
    client.flush()  # client Finished + application data in one TCP write
    assert await client.read() == b"early request"
    client.writer.close()


async def test_server_close_sends_close_notify(pki: Pki, start: Callable[..., Any]) -> None:
    server = await start()
    client = await RawTls.open(server, pki.client_context(pki.good))
    await client.handshake()
    client.obj.write(b"close")
    client.flush()
    # b"" from SSLObject.read is close_notify; a bare TCP EOF would raise SSLEOFError.
    assert await client.read() == b""
    async with asyncio.timeout(5):
        assert await server.apps[0].lost is None
    client.writer.close()


async def test_client_close_notify_reaches_the_app(pki: Pki, start: Callable[..., Any]) -> None:
    server = await start()
    client = await RawTls.open(server, pki.client_context(pki.good))
    await client.handshake()
    client.flush()
    assert await roundtrip_raw(client, b"x") == b"x"
    with pytest.raises(ssl.SSLWantReadError):
        client.obj.unwrap()
    client.flush()
    async with asyncio.timeout(5):
        await server.apps[0].lost
    assert server.apps[0].eof
    client.writer.close()


async def roundtrip_raw(client: RawTls, data: bytes) -> bytes:
    client.obj.write(data)
    client.flush()
    return await client.read()


async def test_unknown_sni_is_refused(pki: Pki, start: Callable[..., Any]) -> None:
    server = await start()
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        async with tls_client(server, pki.client_context(pki.good), sni="other.example.com"):
            pass
    await server.observer.wait_failed()
    assert server.observer.failed[0][:3] == (Reason.SNI_MISMATCH, "other.example.com", None)


async def test_require_failure_is_reported(pki: Pki, start: Callable[..., Any]) -> None:
    server = await start()
    with contextlib.suppress(ssl.SSLError, ConnectionError, asyncio.IncompleteReadError):
        async with tls_client(server, pki.client_context(pki.expired)) as (reader, writer):
            await roundtrip(reader, writer, b"x")
    await server.observer.wait_failed()
    assert server.observer.failed[0][:3] == (Reason.EXPIRED, API, "api")
    assert server.apps == []


async def test_a_connection_keeps_its_trust_for_life(
    pki: Pki, start: Callable[..., Any], state_for: Callable[..., TrustState]
) -> None:
    server = await start()
    ctx = pki.client_context(pki.good)
    async with tls_client(server, ctx) as (reader, writer):
        assert await roundtrip(reader, writer, b"a") == b"a"
        server.state[0] = state_for(anchors=pki.anchors(version=2))  # the reload swaps a reference
        async with tls_client(server, ctx) as (reader2, writer2):
            assert await roundtrip(reader2, writer2, b"b") == b"b"
        assert await roundtrip(reader, writer, b"c") == b"c"
    old, new = (app.session for app in server.apps)
    assert (old.ca_set_version, new.ca_set_version) == (1, 2)


async def test_pause_writing_follows_the_tcp_buffer(pki: Pki, start: Callable[..., Any]) -> None:
    server = await start()
    async with tls_client(server, pki.client_context(pki.good)) as (reader, writer):
        writer.write(b"flood")
        async with asyncio.timeout(5):
            while not server.apps:
                await asyncio.sleep(0.01)
            app = server.apps[0]
            await app.paused_writing.wait()  # the client's reader is full: TCP backs up
            while not app.resumed_writing.is_set():
                assert await reader.read(1 << 20)
        assert app.transport.get_write_buffer_size() <= tls_transport.LOW_WATER


async def test_app_ignoring_backpressure_is_cut_off(
    pki: Pki, start: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tls_transport, "MAX_WRITE_BUFFER", 1 << 20)
    server = await start()
    async with tls_client(server, pki.client_context(pki.good)) as (reader, writer):
        assert await roundtrip(reader, writer, b"x") == b"x"
        server.apps[0].flood_ignoring_pause = True
        writer.write(b"flood")
        async with asyncio.timeout(5):
            await server.apps[0].lost
        assert server.apps[0].transport.is_closing()


async def test_one_large_write_is_not_cut_off(
    pki: Pki, start: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tls_transport, "MAX_WRITE_BUFFER", 1 << 20)
    server = await start()
    async with tls_client(server, pki.client_context(pki.good)) as (reader, writer):
        writer.write(b"big")
        async with asyncio.timeout(5):
            assert await reader.readexactly(3 << 20) == bytes(3 << 20)


async def test_pause_reading_holds_data_back(pki: Pki, start: Callable[..., Any]) -> None:
    server = await start()
    async with tls_client(server, pki.client_context(pki.good)) as (reader, writer):
        writer.write(b"pause")
        async with asyncio.timeout(5):
            while not server.apps or not server.apps[0].received:
                await asyncio.sleep(0.01)
        app = server.apps[0]
        assert not app.transport.is_reading()
        writer.write(b"held back")
        await writer.drain()
        await asyncio.sleep(0.1)
        assert bytes(app.received) == b"pause"
        app.transport.resume_reading()
        assert await reader.readexactly(9) == b"held back"
        assert bytes(app.received) == b"pauseheld back"


def test_under_uvloop(pki: Pki, state_for: Callable[..., TrustState]) -> None:
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        srv, server = await start_server(state_for())
        async with tls_client(server, pki.client_context(pki.good)) as (reader, writer):
            assert await roundtrip(reader, writer, b"uv") == b"uv"
            raw_reader, raw_writer = await asyncio.open_connection("127.0.0.1", server.port)
            raw_writer.write(b"GET / HTTP/1.0\r\n\r\n")
            assert await raw_reader.read() == PLAIN_HTTP_ANSWER
            raw_writer.close()
        await server.observer.wait_failed()
        assert server.observer.failed[0][0] is Reason.PLAIN_HTTP
        srv.close()
        await srv.wait_closed()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())
