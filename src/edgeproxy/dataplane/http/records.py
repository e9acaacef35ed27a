"""What one request leaves behind (the access record and its per-connection facts) and what the
HTTP layer is told about revocation: plain types, shared by the sans-IO exchange machine
(exchange.py) and the asyncio shell around it (protocol.py, context.py, observe.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Protocol

from edgeproxy.authz.policy import Decision
from edgeproxy.tls.session import TlsSession


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
        "protocol",
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
        "protocol",
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
        protocol: str = "h1",  # h1 | h2
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
        self.protocol = protocol
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
    # What the binding's authorization rules decided (None: the binding has none, or the request
    # was answered before they were asked).
    authorization: Decision | None = None

    client_address = _from_connection("client_address")
    client_port = _from_connection("client_port")
    edge_certificate = _from_connection("edge_certificate")
    sni = _from_connection("sni")
    tls_version = _from_connection("tls_version")
    protocol = _from_connection("protocol")
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
