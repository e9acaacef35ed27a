"""Where the data plane's events become metrics and access-log lines (§5 access log, §6)."""

from __future__ import annotations

import logging
import time
from typing import Any

from edgeproxy.dataplane.http.context import AccessRecord
from edgeproxy.domain.model import Network
from edgeproxy.logs import AccessSink, json_line
from edgeproxy.metrics import Metrics
from edgeproxy.tls.session import Reason, TlsSession, VerifyResult

access_log = logging.getLogger("edgeproxy.access")
# The `revocation` field of a failed handshake (request lines take it from the AccessRecord).
_REVOCATION = {Reason.REVOKED: "revoked", Reason.OCSP_UNAVAILABLE: "unavailable"}


# Verdicts on the client's certificate. Other failures (a client that refuses *our* certificate,
# a protocol mismatch, an EOF mid-handshake) verified nothing and are handshake failures only.
_CERTIFICATE_REASONS = frozenset(
    {
        Reason.NO_CERTIFICATE,
        Reason.UNKNOWN_CA,
        Reason.EXPIRED,
        Reason.NOT_YET_VALID,
        Reason.REVOKED,
        Reason.OCSP_UNAVAILABLE,
        Reason.BAD_CERTIFICATE,
        Reason.NO_ACTIVE_VERSION,
    }
)


class AccessLine:
    """Writes access-log lines: into the node's batched log stream when `run()` set one up,
    else through the `edgeproxy.access` logger (in-process embedding and tests)."""

    def __init__(self, sink: AccessSink | None) -> None:
        self.sink = sink

    def write(self, message: str, fields: dict[str, Any]) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        line = json_line(access_log.name, message, fields, time.time())
        if self.sink is not None:
            self.sink(line)
        else:
            access_log.info(message, extra={"json_line": line})


def _peer(peer: Any) -> tuple[str | None, int | None]:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return str(peer[0]), int(peer[1])
    return None, None


class HandshakeLog:
    """The TLS adapter's observer: handshake metrics, and one log line per failed handshake."""

    def __init__(self, metrics: Metrics, network: Network, access: AccessLine) -> None:
        self.metrics = metrics
        self.network = network
        self.access = access

    def handshake_done(self, session: TlsSession, duration: float) -> None:
        edge = session.edge.name
        self.metrics.handshake_succeeded(edge, self.network, duration)
        if session.verify_result is VerifyResult.SUCCESS:
            self.metrics.client_cert_verified(edge)
        else:
            # `request` mode: the handshake completed without a valid certificate.
            self.metrics.client_cert_rejected(edge, session.verify_reason or Reason.OTHER)

    def handshake_failed(
        self, reason: Reason, sni: str | None, edge_name: str | None, duration: float, peer: Any
    ) -> None:
        edge = edge_name or ""
        self.metrics.handshake_failed(edge, self.network, reason, duration)
        if edge_name is not None and reason in _CERTIFICATE_REASONS:
            self.metrics.client_cert_rejected(edge, reason)
        address, port = _peer(peer)
        self.access.write(
            "handshake failed",
            {
                "event": "handshake",
                "client_address": address,
                "client_port": port,
                "edge_certificate": edge_name,
                "sni": sni,
                "verify_result": VerifyResult.FAILED.value,
                "verify_reason": reason.value,
                "revocation": _REVOCATION.get(reason, "not_checked"),
                "duration": round(duration, 6),
            },
        )


class RequestLog:
    """The HTTP layer's observer: request metrics and one access-log line per request."""

    def __init__(self, metrics: Metrics, access: AccessLine) -> None:
        self.metrics = metrics
        self.access = access

    def request_done(self, record: AccessRecord) -> None:
        self.metrics.request_done(record.edge_certificate, record.status, record.origin_duration)
        self.access.write("request", {"event": "request", **_fields(record)})


def _fields(record: AccessRecord) -> dict[str, Any]:
    fields = {name: getattr(record, name) for name in _RECORD_FIELDS}
    # The log line has its own `time`; the record's is when the request started.
    fields["started"] = fields.pop("time")
    return fields


_RECORD_FIELDS = tuple(AccessRecord.__dataclass_fields__)
