"""The edge in-process (TLS adapter + HTTP proxy + revocation service), a counting origin, and a
stdlib `ssl` client speaking HTTP/1.1 keep-alive to it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from edgeproxy.config.model import (
    EdgeCertificateConfig,
    EdgeLimits,
    EnforcementMode,
    MutualAuthConfig,
    OcspConfig,
)
from edgeproxy.dataplane.connections import ConnectionWatch, WatchedTlsProtocol
from edgeproxy.dataplane.http import (
    AccessRecord,
    OriginState,
    ProxyContext,
    ProxyProtocol,
    ServedEdges,
)
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.observe import AccessLine, HandshakeLog, RequestLog
from edgeproxy.dataplane.revocation.check import Revocation
from edgeproxy.domain.model import Network
from edgeproxy.tls.contexts import build_state
from edgeproxy.tls.session import TlsSession
from edgeproxy.tls.trust import TrustAnchors, TrustState
from support.loopback import serve_app
from support.revocation_pki import API, Pki

LIMITS = EdgeLimits(client_hello_timeout=2.0, handshake_timeout=2.0, drain_timeout=1.0)


class Origin:
    def __init__(self) -> None:
        self.hits = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        body = await request.read()
        return web.Response(text=f"got {len(body)}" if body else "ok")

    async def start(self) -> Origin:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.port = await serve_app(app)
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@dataclass
class Records:
    metrics: Metrics
    records: list[AccessRecord] = field(default_factory=list)

    def request_done(self, record: AccessRecord) -> None:
        self.records.append(record)
        RequestLog(self.metrics, AccessLine(None)).request_done(record)


class Listening(Protocol):
    """An edge a client connects to: this harness's `Edge` or a real `EdgeRole`."""

    @property
    def port(self) -> int: ...


@dataclass
class Edge:
    pki: Pki
    port: int
    metrics: Metrics
    revocation: Revocation
    records: Records
    holder: list[TrustState]
    edge: EdgeCertificateConfig
    proxy: ProxyContext
    watch: ConnectionWatch
    served: ServedEdges

    def waiting_for_revocation(self) -> int:
        """Connections whose request waits for an OCSP answer (the exchange's origin side)."""
        return sum(
            c.ex.origin is OriginState.GATED  # type: ignore[attr-defined]
            for c in list(self.proxy._connections)
        )

    def sample(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def handshake_failures(self, reason: str) -> float:
        return self.sample(
            "edgeproxy_tls_handshakes_total",
            edge_certificate="api",
            network="STAGING",
            result="failure",
            reason=reason,
        )

    def swap(self, crls: tuple[bytes, ...] = ()) -> None:
        """Build a new trust state aside (new CRLs) and swap the one reference
        (docs/architecture.md reload)."""
        self.install(TrustAnchors("partners", 1, (self.pki.ca.der,), False, crls))

    def install(self, anchors: TrustAnchors) -> None:
        """What the trust sync does with a new state: build from the one in force, swap, let the
        revocation service prune and learn the anchors."""
        previous = self.holder[0]
        revocation = self.revocation
        state = build_state(
            [self.edge],
            {"partners": anchors},
            previous=previous,
            ocsp={self.edge.name: revocation.ocsp_lookup(self.edge)},
            stale_accepted=revocation.crl_stale_accepted,
        )
        self.served.update(p.edge for p in state.edges.values())
        self.holder[0] = state
        revocation.retain(state, previous)
        self.watch.trust_changed(state, previous)


def edge_config(
    pki: Pki, origin: Origin, ocsp: OcspConfig, mode: EnforcementMode
) -> EdgeCertificateConfig:
    auth = MutualAuthConfig(ca_set="partners", mode=mode, ocsp=ocsp)
    return EdgeCertificateConfig(
        name="api",
        hostnames=(API,),
        certificate=pki.server_pem,
        private_key=pki.server_pem,
        origin=f"http://127.0.0.1:{origin.port}",
        mutual_authentication=auth,
    )


async def start_edge(
    pki: Pki,
    origin: Origin,
    revocation_for: Callable[[Metrics], Revocation],
    *,
    ocsp: OcspConfig,
    mode: EnforcementMode = "require",
    crls: tuple[bytes, ...] = (),
) -> tuple[asyncio.Server, ProxyContext, Edge]:
    metrics = Metrics()
    revocation = revocation_for(metrics)
    edge_cfg = edge_config(pki, origin, ocsp, mode)
    records = Records(metrics)
    ctx = ProxyContext(LIMITS, observer=records, revocation=revocation)
    observer = HandshakeLog(metrics, Network.STAGING, AccessLine(None))
    holder = [TrustState()]
    # As the edge role wires it: open connections judged again on trust and OCSP changes.
    watch = ConnectionWatch(metrics, lambda: holder[0], LIMITS)
    revocation.revoked_listeners.append(watch.revoked)
    served = ServedEdges(LIMITS)
    edge = Edge(pki, 0, metrics, revocation, records, holder, edge_cfg, ctx, watch, served)
    edge.swap(crls)

    def http(session: TlsSession) -> ProxyProtocol:
        return ProxyProtocol(ctx, session, served.get(session.edge))

    def connection() -> WatchedTlsProtocol:
        protocol = WatchedTlsProtocol(lambda: holder[0], http, LIMITS, observer)
        protocol.watch = watch
        return protocol

    loop = asyncio.get_running_loop()
    server = await loop.create_server(connection, "127.0.0.1", 0)
    edge.port = server.sockets[0].getsockname()[1]
    return server, ctx, edge


class Refused(Exception):
    """The TLS handshake (or the connection right after it) was refused."""


class Clock:
    """A monotonic clock the test moves (OCSP cache lifetimes)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


StartEdgeClocked = Callable[..., Awaitable[tuple[Edge, Clock]]]


class Client:
    """One TLS connection to the edge, sending keep-alive GETs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, edge: Listening, ctx: ssl.SSLContext) -> Client:
        try:
            async with asyncio.timeout(5):
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", edge.port, ssl=ctx, server_hostname=API
                )
        except (ssl.SSLError, ConnectionError) as exc:
            raise Refused(str(exc)) from exc
        return cls(reader, writer)

    async def get(self, path: str = "/", body: bytes = b"") -> tuple[int, bytes, bool]:
        """(status, body, closed by the server after it); a POST when `body` is given."""
        method = (
            f"POST {path} HTTP/1.1\r\nContent-Length: {len(body)}"
            if body
            else f"GET {path} HTTP/1.1"
        )
        self.writer.write(f"{method}\r\nHost: {API}\r\n\r\n".encode() + body)
        try:
            async with asyncio.timeout(5):
                head = await self.reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                body = await self.reader.readexactly(int(headers.get("Content-Length", "0")))
        except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError) as exc:
            raise Refused(str(exc)) from exc
        return int(lines[0].split()[1]), body, headers.get("Connection") == "close"

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


async def get_once(edge: Listening, ctx: ssl.SSLContext, path: str = "/") -> tuple[int, bytes]:
    client = await Client.open(edge, ctx)
    try:
        status, body, _ = await client.get(path)
    finally:
        await client.close()
    return status, body
