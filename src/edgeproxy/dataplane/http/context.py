"""Per-listener state shared by the HTTP connections: origin pools, caches, deadlines, drain.

Deadlines use one coarse sweep per listener instead of a TimerHandle per request: a connection
only stores a float (`deadline`); the sweep, a self-rescheduling `call_later` that runs while any
connection exists, calls `on_deadline` on the ones that are due. Granularity is a quarter of the
shortest timeout (at most 1 s), which is plenty for 15 s / 60 s limits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Protocol
from urllib.parse import urlsplit

from edgeproxy.config.model import EdgeLimits
from edgeproxy.dataplane.http.headers import HostMatcher
from edgeproxy.dataplane.http.identity import IdentityCache
from edgeproxy.dataplane.http.origin import OriginPool
from edgeproxy.tls.session import TlsSession

log = logging.getLogger(__name__)


class ConnectionFacts:
    """The part of every access record that is fixed for a connection's life (docs/dataplane.md
    access log):
    made once per connection, shared by its records.

    Never a key or a full certificate: the client certificate appears as subject, serial and
    SHA-256 fingerprint only.
    """

    __slots__ = (
        "ca_set",
        "ca_set_version",
        "client_address",
        "client_fingerprint_sha256",
        "client_port",
        "client_serial",
        "client_subject",
        "edge_certificate",
        "encoded",
        "sni",
        "tls_version",
        "verify_reason",
        "verify_result",
    )
    # In access-log order.
    FIELDS = (
        "client_address",
        "client_port",
        "edge_certificate",
        "sni",
        "tls_version",
        "client_subject",
        "client_serial",
        "client_fingerprint_sha256",
        "verify_result",
        "verify_reason",
        "ca_set",
        "ca_set_version",
    )

    def __init__(
        self,
        *,
        client_address: str,
        client_port: int,
        edge_certificate: str,
        sni: str | None,
        tls_version: str,
        client_subject: str | None,
        client_serial: str | None,
        client_fingerprint_sha256: str | None,
        verify_result: str,  # SUCCESS | FAILED | NONE
        verify_reason: str | None,
        ca_set: str | None,
        ca_set_version: int | None,
    ) -> None:
        self.client_address = client_address
        self.client_port = client_port
        self.edge_certificate = edge_certificate
        self.sni = sni
        self.tls_version = tls_version
        self.client_subject = client_subject
        self.client_serial = client_serial
        self.client_fingerprint_sha256 = client_fingerprint_sha256
        self.verify_result = verify_result
        self.verify_reason = verify_reason
        self.ca_set = ca_set
        self.ca_set_version = ca_set_version
        # The access log's encoding of these fields, made at the connection's first line: a
        # keep-alive request then encodes only its own fields (a sink's cache, not a fact).
        self.encoded: str | None = None


def _from_connection(name: str) -> property:
    return property(attrgetter(f"connection.{name}"), doc=f"The connection's {name}.")


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """One proxied (or locally answered) request: the access-log line and metric labels
    (docs/dataplane.md, docs/operations.md).

    The per-connection fields live in `connection` (one object per connection, not copied per
    request) and read as attributes of the record too (`record.client_subject`).
    """

    time: float  # wall clock (epoch seconds) when the request's first byte was handled
    connection: ConnectionFacts
    method: str
    path: str
    status: int  # 499: the client went away before the response was complete
    bytes_in: int  # request body bytes received from the client
    bytes_out: int  # response bytes (head and body) written to the client
    duration: float  # seconds, first byte of the request to the end of the response
    origin_duration: float | None  # seconds, request sent to the origin to response end
    # The client certificate's revocation status (docs/dataplane.md): good | revoked | unknown |
    # unavailable |
    # not_checked (OCSP off for the binding, the certificate failed anyway, or no answer yet).
    revocation: str = "not_checked"

    client_address = _from_connection("client_address")
    client_port = _from_connection("client_port")
    edge_certificate = _from_connection("edge_certificate")
    sni = _from_connection("sni")
    tls_version = _from_connection("tls_version")
    client_subject = _from_connection("client_subject")
    client_serial = _from_connection("client_serial")
    client_fingerprint_sha256 = _from_connection("client_fingerprint_sha256")
    verify_result = _from_connection("verify_result")
    verify_reason = _from_connection("verify_reason")
    ca_set = _from_connection("ca_set")
    ca_set_version = _from_connection("ca_set_version")


class RequestObserver(Protocol):
    """Receives one record per request (the access log and metrics plug in here)."""

    def request_done(self, record: AccessRecord) -> None: ...


class Tracked(Protocol):
    """What the context needs of a connection."""

    deadline: float

    def on_deadline(self, now: float) -> None: ...
    def drain(self) -> None: ...
    def close_if_idle(self) -> bool: ...
    def abort(self) -> None: ...


SessionProvider = Callable[[asyncio.BaseTransport], "TlsSession | None"]


class RevocationGate(Protocol):
    """One connection's OCSP answer (revocation.check.RevocationCheck): awaited by the first
    request while pending; decided, it either denies (a reason) or lets requests through."""

    @property
    def done(self) -> bool: ...
    @property
    def status(self) -> str: ...
    @property
    def deny_reason(self) -> str | None: ...
    def subscribe(self, callback: Callable[[Any], None]) -> None: ...
    def unsubscribe(self, callback: Callable[[Any], None]) -> None: ...


class RevocationProvider(Protocol):
    """The worker's revocation service, asked once per connection whose certificate verified on
    a binding with OCSP enabled: (access-log status, gate to await or None when settled)."""

    def start(
        self, session: TlsSession, fingerprint: str | None
    ) -> tuple[str, RevocationGate | None]: ...


def session_from_transport(transport: asyncio.BaseTransport) -> TlsSession | None:
    """The default: the TLS adapter publishes the session as `get_extra_info("tls_session")`."""
    session = transport.get_extra_info("tls_session")
    return session if isinstance(session, TlsSession) else None


class ProxyContext:
    """Everything a listener's `ProxyProtocol` instances share; one per listener and event loop."""

    def __init__(
        self,
        limits: EdgeLimits,
        *,
        observer: RequestObserver | None = None,
        session_provider: SessionProvider = session_from_transport,
        max_idle_per_origin: int = 64,
        revocation: RevocationProvider | None = None,
    ) -> None:
        self.limits = limits
        self.observer = observer
        self.session_provider = session_provider
        self.revocation = revocation  # None: no OCSP anywhere (the HTTP layer never asks)
        self.max_idle_per_origin = max_idle_per_origin
        self.identities = IdentityCache()
        self.draining = False
        self._pools: dict[str, OriginPool] = {}
        self._matchers: dict[tuple[str, ...], HostMatcher] = {}
        self._connections: set[Tracked] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._emptied: asyncio.Event | None = None
        shortest = min(limits.header_timeout, limits.idle_timeout, limits.origin_read_timeout)
        self.tick = max(0.01, min(1.0, shortest / 4))

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def pool_for(self, origin: str) -> OriginPool:
        pool = self._pools.get(origin)
        if pool is None:
            url = urlsplit(origin)
            if url.scheme != "http" or not url.hostname:
                raise ValueError(f"unsupported origin {origin!r}: only http://host:port")
            pool = OriginPool(
                url.hostname,
                url.port or 80,
                connect_timeout=self.limits.origin_connect_timeout,
                max_idle=self.max_idle_per_origin,
            )
            self._pools[origin] = pool
        return pool

    def host_matcher(self, hostnames: tuple[str, ...]) -> HostMatcher:
        matcher = self._matchers.get(hostnames)
        if matcher is None:
            matcher = self._matchers[hostnames] = HostMatcher(hostnames)
        return matcher

    def register(self, conn: Tracked) -> None:
        self._connections.add(conn)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.tick, self._sweep)

    def unregister(self, conn: Tracked) -> None:
        self._connections.discard(conn)
        if not self._connections and self._emptied is not None:
            self._emptied.set()

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        try:
            for conn in [c for c in self._connections if c.deadline <= now]:
                try:
                    conn.on_deadline(now)
                except Exception:  # one broken connection must not stop every deadline
                    log.exception("deadline handling failed for %r", conn)
                    conn.abort()
        finally:
            self._timer = loop.call_later(self.tick, self._sweep) if self._connections else None

    def close_idle(self) -> int:
        """Close keep-alive connections waiting for a request, and idle origin connections."""
        closed = sum(1 for conn in list(self._connections) if conn.close_if_idle())
        for pool in self._pools.values():
            pool.close_idle()
        return closed

    async def drain(self, grace: float | None = None) -> int:
        """Graceful stop (SIGTERM): finish in-flight requests, close the rest.

        New requests on open connections are answered with `Connection: close`. Returns how many
        connections had to be aborted when `grace` (default: limits.drain_timeout) ran out.
        The listener stops accepting before calling this.
        """
        self.draining = True
        self._emptied = asyncio.Event()
        for conn in list(self._connections):
            conn.drain()
        if self._connections:
            try:
                async with asyncio.timeout(self.limits.drain_timeout if grace is None else grace):
                    await self._emptied.wait()
            except TimeoutError:
                pass
        left = list(self._connections)
        for conn in left:
            conn.abort()
        await self.close()
        return len(left)

    async def close(self) -> None:
        """Release the origin pools (after the connections are gone)."""
        if self._timer is not None and not self._connections:
            self._timer.cancel()
            self._timer = None
        for pool in self._pools.values():
            await pool.close()
