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
from typing import cast

from edgeproxy.dataplane.http.context import ProxyContext
from edgeproxy.dataplane.http.exchange import HttpConnection
from edgeproxy.dataplane.http.served import ServedEdge
from edgeproxy.tls.session import TlsSession


class ProxyProtocol(asyncio.Protocol):
    """Serves HTTP/1.1 on one client connection; `ProxyProtocol(context, session, served)`."""

    __slots__ = ("_conn", "_ctx", "_served", "_session")
    # Set by connection_made, which asyncio runs before any other callback of the protocol.
    _conn: HttpConnection

    def __init__(self, context: ProxyContext, session: TlsSession, served: ServedEdge) -> None:
        self._ctx = context
        self._session = session
        self._served = served

    def __repr__(self) -> str:
        return f"<ProxyProtocol {getattr(self, '_conn', None)!r}>"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ctx = self._ctx
        served = self._served
        peer = transport.get_extra_info("peername") or ("", 0)
        conn = self._conn = HttpConnection(
            ctx,
            self._session,
            # A stream transport; uvloop's does not subclass asyncio.Transport, so no isinstance.
            cast(asyncio.Transport, transport),
            peer=(str(peer[0]), int(peer[1])),
            matcher=served.matcher,
            pool=served.pool,
            clock=asyncio.get_running_loop().time,
        )
        ctx.register(conn)

    def close_after_response(self) -> None:
        """The edge no longer wants this connection (a trust change, its age): no further
        request; the in-flight response ends with `Connection: close` (dataplane/connections.py)."""
        if self._conn is not None:
            self._conn.close_after_response()

    def data_received(self, data: bytes) -> None:
        self._conn.receive(data)

    def eof_received(self) -> bool | None:
        return self._conn.receive_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        conn: HttpConnection | None = getattr(self, "_conn", None)
        if conn is not None:  # None: connection_made raised before it built the machine
            self._ctx.unregister(conn)
            conn.connection_lost()

    def pause_writing(self) -> None:
        self._conn.client_blocked(True)

    def resume_writing(self) -> None:
        self._conn.client_blocked(False)
