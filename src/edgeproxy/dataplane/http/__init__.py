"""HTTP/1.1 reverse proxying on the decrypted stream (docs/dataplane.md): framing, rewriting,
identity, origins."""

from edgeproxy.dataplane.http.connection import State
from edgeproxy.dataplane.http.context import (
    AccessRecord,
    ConnectionFacts,
    ProxyContext,
    RequestObserver,
    SessionProvider,
    session_from_transport,
)
from edgeproxy.dataplane.http.identity import ClientIdentity, encode_identity
from edgeproxy.dataplane.http.proxy import ProxyProtocol

__all__ = [
    "AccessRecord",
    "ClientIdentity",
    "ConnectionFacts",
    "ProxyContext",
    "ProxyProtocol",
    "RequestObserver",
    "SessionProvider",
    "State",
    "encode_identity",
    "session_from_transport",
]
