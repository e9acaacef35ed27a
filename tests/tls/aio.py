"""asyncio helpers for the socket tests: a recording observer, an echo application, a server."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from edgeproxy.config.model import EdgeLimits
from edgeproxy.dataplane import tls_transport
from edgeproxy.dataplane.tls_transport import TlsServerProtocol
from edgeproxy.tls.refusal import Refusal
from edgeproxy.tls.session import Reason, TlsSession
from edgeproxy.tls.trust import TrustState

HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
FAST = EdgeLimits(client_hello_timeout=0.3, handshake_timeout=0.6)


@dataclass
class Recorder:
    """A HandshakeObserver that remembers what it was told."""

    done: list[tuple[TlsSession, float]] = field(default_factory=list)
    failed: list[tuple[Reason, str | None, str | None, float, Any]] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def handshake_done(self, session: TlsSession, duration: float) -> None:
        self.done.append((session, duration))
        self.changed.set()

    def handshake_failed(self, refusal: Refusal, duration: float, peer: Any) -> None:
        self.failed.append((refusal.reason, refusal.sni, refusal.edge_name, duration, peer))
        self.refusals.append(refusal)
        self.changed.set()

    async def wait_failed(self, n: int = 1) -> None:
        async with asyncio.timeout(5):
            while len(self.failed) < n:
                self.changed.clear()
                await self.changed.wait()


class Echo(asyncio.Protocol):
    """Echoes; `close` closes, `flood` writes until paused, `pause` pauses reading."""

    def __init__(self, session: TlsSession) -> None:
        self.session = session  # handed over by the adapter when it made this protocol
        self.transport: asyncio.Transport
        self.received = bytearray()
        self.eof = False
        self.paused_writing = asyncio.Event()
        self.resumed_writing = asyncio.Event()
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.flood_ignoring_pause = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, tls_transport.TlsTransport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += data
        if data == b"close":
            self.transport.close()
        elif data == b"pause":
            self.transport.pause_reading()
        elif data == b"big":
            self.transport.write(bytes(3 << 20))  # one write far above the hard cap
        elif data == b"flood":
            for _ in range(64):
                if self.paused_writing.is_set() and not self.flood_ignoring_pause:
                    break
                self.transport.write(bytes(256 * 1024))
        elif data.startswith(b"GET "):
            self.transport.write(HTTP_OK)
            self.transport.close()
        else:
            self.transport.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        return False

    def pause_writing(self) -> None:
        self.paused_writing.set()

    def resume_writing(self) -> None:
        self.resumed_writing.set()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)


@dataclass
class Server:
    port: int
    observer: Recorder
    apps: list[Echo]
    state: list[TrustState]  # [current]: swapped by tests


async def start_server(
    state: TrustState, limits: EdgeLimits = FAST
) -> tuple[asyncio.Server, Server]:
    holder = [state]
    observer = Recorder()
    apps: list[Echo] = []

    def app(session: TlsSession) -> Echo:
        apps.append(Echo(session))
        return apps[-1]

    loop = asyncio.get_running_loop()
    srv = await loop.create_server(
        lambda: TlsServerProtocol(lambda: holder[0], app, limits, observer), "127.0.0.1", 0
    )
    return srv, Server(srv.sockets[0].getsockname()[1], observer, apps, holder)
