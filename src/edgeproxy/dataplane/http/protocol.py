"""The asyncio protocol that drives the HTTP exchange machine on the decrypted stream.

`ProxyProtocol` is what the TLS adapter (dataplane/tls_transport.py) creates once a handshake
completes, handing it the connection's `TlsSession` and its edge certificate's `ServedEdge`
(served.py). It builds one `HttpConnection` (exchange.py), plugs the transport, that edge's host
matcher and origin pool and the loop clock into it, and from then on passes every socket event
in: bytes, EOF, loss, and the transport's write-buffer backpressure. Deadlines are the listener's
sweep (context.py), which calls the machine directly. The origin side's sockets are
origin.OriginConnection, which report to the machine too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ClassVar, Protocol, cast

from edgeproxy.authz.policy import Policy
from edgeproxy.dataplane.http.context import ProxyContext, Tracked
from edgeproxy.dataplane.http.exchange import HttpConnection
from edgeproxy.dataplane.http.headers import HostMatcher
from edgeproxy.dataplane.http.links import ClientStream, OriginSource
from edgeproxy.dataplane.http.policy import Shared
from edgeproxy.dataplane.http.served import ServedEdge
from edgeproxy.tls.session import TlsSession


class Machine(Tracked, Protocol):
    """A connection's sans-IO machine, as the protocol drives it: exchange.HttpConnection for
    HTTP/1.1, h2server.Http2Connection for HTTP/2."""

    def receive(self, data: bytes) -> None: ...
    def receive_eof(self) -> bool | None: ...
    def connection_lost(self) -> None: ...
    def client_blocked(self, blocked: bool) -> None: ...
    def close_after_response(self) -> None: ...
    def authorization_changed(self, policy: Policy | None) -> None: ...


class MachineType(Protocol):
    def __call__(
        self,
        context: Shared,
        session: TlsSession,
        stream: ClientStream,
        *,
        peer: tuple[str, int],
        matcher: HostMatcher,
        pool: OriginSource,
        clock: Callable[[], float],
    ) -> Machine: ...


class ProxyProtocol(asyncio.Protocol):
    """Serves HTTP/1.1 on one client connection; `ProxyProtocol(context, session, served)`.
    Subclasses name another `machine` (h2protocol.Http2Protocol)."""

    __slots__ = ("_conn", "_ctx", "_served", "_session")
    machine: ClassVar[MachineType] = HttpConnection
    # Set by connection_made, which asyncio runs before any other callback of the protocol.
    _conn: Machine

    def __init__(self, context: ProxyContext, session: TlsSession, served: ServedEdge) -> None:
        self._ctx = context
        self._session = session
        self._served = served

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, '_conn', None)!r}>"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ctx = self._ctx
        served = self._served
        peer = transport.get_extra_info("peername") or ("", 0)
        conn = self._conn = self.machine(
            ctx,
            self._session,
            # A stream transport; uvloop's does not subclass asyncio.Transport, so no isinstance.
            self.client_stream(cast(asyncio.Transport, transport)),
            peer=(str(peer[0]), int(peer[1])),
            matcher=served.matcher,
            pool=served.pool,
            clock=asyncio.get_running_loop().time,
        )
        ctx.register(conn)

    def client_stream(self, transport: asyncio.Transport) -> ClientStream:
        """What the machine writes to: HTTP/1.1 writes once per response, to the transport."""
        return transport

    def close_after_response(self) -> None:
        """The edge no longer wants this connection (a trust change, its age): no further
        request; the in-flight response ends with `Connection: close`, or HTTP/2's GOAWAY
        (dataplane/connections.py)."""
        self._conn.close_after_response()

    def authorization_changed(self, policy: Policy | None) -> None:
        """A reload changed the binding's rules (dataplane/connections.py): the connection's
        next requests are judged by `policy`."""
        self._conn.authorization_changed(policy)

    def data_received(self, data: bytes) -> None:
        self._conn.receive(data)

    def eof_received(self) -> bool | None:
        return self._conn.receive_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        conn: Machine | None = getattr(self, "_conn", None)
        if conn is not None:  # None: connection_made raised before it built the machine
            self._ctx.unregister(conn)
            conn.connection_lost()

    def pause_writing(self) -> None:
        self._conn.client_blocked(True)

    def resume_writing(self) -> None:
        self._conn.client_blocked(False)
