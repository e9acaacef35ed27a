"""The asyncio protocol of an HTTP/2 client connection, and the choice between the two protocols
by ALPN (the TLS adapter's application factory, dataplane/edge.py)."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from edgeproxy.dataplane.http.coalesce import CoalescedWrites
from edgeproxy.dataplane.http.h2server import Http2Connection
from edgeproxy.dataplane.http.links import ClientStream
from edgeproxy.dataplane.http.protocol import MachineType, ProxyProtocol
from edgeproxy.tls.session import TlsSession


class Http2Protocol(ProxyProtocol):
    """Serves HTTP/2 on one client connection: the same shell, the h2server machine."""

    __slots__ = ()
    machine: ClassVar[MachineType] = Http2Connection

    def client_stream(self, transport: asyncio.Transport) -> ClientStream:
        """Streams' responses that complete in the same turn of the loop leave together."""
        return CoalescedWrites(transport, asyncio.get_running_loop())


def protocol_for(session: TlsSession) -> type[ProxyProtocol]:
    """HTTP/2 where ALPN chose `h2`, else HTTP/1.1."""
    return Http2Protocol if session.alpn == "h2" else ProxyProtocol
