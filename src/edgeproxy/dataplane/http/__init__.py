"""HTTP/1.1 reverse proxying on the decrypted stream (docs/dataplane.md): the sans-IO exchange
machine (exchange.py), the asyncio protocol that drives it (protocol.py), framing, rewriting,
identity, origins."""

from edgeproxy.dataplane.http.context import ProxyContext
from edgeproxy.dataplane.http.exchange import (
    ClientState,
    Exchange,
    HttpConnection,
    IllegalTransition,
    OriginState,
    Pause,
)
from edgeproxy.dataplane.http.identity import ClientIdentity, encode_identity
from edgeproxy.dataplane.http.protocol import ProxyProtocol
from edgeproxy.dataplane.http.records import (
    AccessRecord,
    ConnectionFacts,
    RequestObserver,
)
from edgeproxy.dataplane.http.served import ServedEdge, ServedEdges

__all__ = [
    "AccessRecord",
    "ClientIdentity",
    "ClientState",
    "ConnectionFacts",
    "Exchange",
    "HttpConnection",
    "IllegalTransition",
    "OriginState",
    "Pause",
    "ProxyContext",
    "ProxyProtocol",
    "RequestObserver",
    "ServedEdge",
    "ServedEdges",
    "encode_identity",
]
