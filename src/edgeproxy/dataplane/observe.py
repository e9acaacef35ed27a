"""Where the data plane's events become metrics and access-log lines (docs/dataplane.md access log,
docs/operations.md)."""

from __future__ import annotations

import hashlib
import logging
import time
from json.encoder import encode_basestring_ascii as _string
from typing import Any

from edgeproxy.authz.policy import Decision
from edgeproxy.dataplane.clients import ClientRecorder
from edgeproxy.dataplane.http.records import AccessRecord, ConnectionFacts
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.sampling import Sampler
from edgeproxy.domain.model import Network
from edgeproxy.runtime.logs import AccessSink, encode_json, json_line, utc_iso
from edgeproxy.tls.refusal import Refusal, describe
from edgeproxy.tls.session import CERTIFICATE_VERDICTS, Reason, TlsSession, VerifyResult

access_log = logging.getLogger("edgeproxy.access")
# Request lines only (`log.access = false` turns this one off); their lines still say
# "edgeproxy.access".
request_log = logging.getLogger("edgeproxy.access.request")
# The `revocation` field of a failed handshake (request lines take it from the AccessRecord).
_REVOCATION = {Reason.REVOKED: "revoked", Reason.OCSP_UNAVAILABLE: "unavailable"}


class AccessLine:
    """Writes access-log lines: into the node's batched log stream when `run()` set one up,
    else through the `edgeproxy.access` logger (in-process embedding and tests)."""

    def __init__(self, sink: AccessSink | None) -> None:
        self.sink = sink

    def write(self, message: str, fields: dict[str, Any]) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        self.write_line(json_line(access_log.name, message, fields, time.time()), message)

    def write_line(self, line: str, message: str) -> None:
        """Write a line already in the json_line shape."""
        if self.sink is not None:
            self.sink(line)
        else:
            access_log.info(message, extra={"json_line": line})


def _peer(peer: Any) -> tuple[str | None, int | None]:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return str(peer[0]), int(peer[1])
    return None, None


class HandshakeLog:
    """The TLS adapter's observer: handshake metrics, and one log line per refused handshake that
    says who was refused and why (`tls/refusal.py`); identical refusals are sampled."""

    def __init__(
        self,
        metrics: Metrics,
        network: Network,
        access: AccessLine,
        sampler: Sampler | None = None,
        clients: ClientRecorder | None = None,
    ) -> None:
        self.metrics = metrics
        self.network = network
        self.access = access
        self.sampler = sampler or Sampler()
        self.clients = clients  # None: edge.client_records.enabled is false

    def handshake_done(self, session: TlsSession, duration: float) -> None:
        if self.clients is not None:
            self.clients.handshake(session)
        edge = session.edge.name
        self.metrics.handshake_succeeded(edge, self.network, duration)
        if session.verify_result is VerifyResult.SUCCESS:
            self.metrics.client_cert_verified(edge)
        else:
            # `request` mode: the handshake completed without a valid certificate.
            self.metrics.client_cert_rejected(edge, session.verify_reason or Reason.OTHER)

    def handshake_failed(self, refusal: Refusal, duration: float, peer: Any) -> None:
        reason, edge_name = refusal.reason, refusal.edge_name
        edge = edge_name or ""
        self.metrics.handshake_failed(edge, self.network, reason, duration)
        if edge_name is not None and reason in CERTIFICATE_VERDICTS:
            self.metrics.client_cert_rejected(edge, reason)
        clients = self.clients
        if clients is not None and edge_name is not None and refusal.certificate is not None:
            der = refusal.certificate_der()
            assert der is not None
            clients.refused(edge_name, reason, der, refusal.ca_set_version)
        if not access_log.isEnabledFor(logging.INFO):
            return
        address, port = _peer(peer)
        der = refusal.certificate_der()
        # Identical: the same refusal of the same certificate, or of the same address when no
        # certificate was judged.
        who = address if der is None else hashlib.sha256(der).digest()
        repeated = self.sampler.admit((reason, edge_name, refusal.sni, who))
        if repeated is None:
            return
        described = describe(refusal, der)
        self.access.write(
            "handshake failed",
            {
                "event": "handshake",
                "client_address": address,
                "client_port": port,
                "edge_certificate": edge_name,
                "sni": refusal.sni,
                "verify_result": VerifyResult.FAILED.value,
                "verify_reason": reason.value,
                "detail": described.pop("detail"),
                **described,
                "revocation": _REVOCATION.get(reason, "not_checked"),
                "duration": round(duration, 6),
                "repeated": repeated,
            },
        )


class RequestLog:
    """The HTTP layer's observer: request metrics and one access-log line per request."""

    def __init__(
        self, metrics: Metrics, access: AccessLine, clients: ClientRecorder | None = None
    ) -> None:
        self.metrics = metrics
        self.access = access
        self.clients = clients

    def request_done(self, record: AccessRecord) -> None:
        facts = record.connection
        if self.clients is not None:
            self.clients.request(facts.edge_certificate, facts.client_fingerprint_sha256)
        self.metrics.request_done(
            facts.edge_certificate, record.status, record.origin_duration, facts.protocol
        )
        decision = record.authorization
        if decision is not None:
            self.metrics.authorization_decided(
                facts.edge_certificate, decision.decision, decision.rule
            )
        if not request_log.isEnabledFor(logging.INFO):
            return
        encoded = facts.encoded
        if encoded is None:
            encoded = facts.encoded = _connection_part(facts)
        self.access.write_line(request_line(encoded, record, time.time()), "request")


# The access line of a request is the JsonFormatter shape (logs.json_line) with these fields:
# "event", the connection's fields, the request's (the authorization decision, rule and reason
# null when the binding has no rules), and "started" (the record's `time`: the log line has its
# own). A keep-alive connection's lines share everything up to "method", so that
# part is encoded once per connection (ConnectionFacts.encoded) and each request encodes only
# its own nine values: one generic encode of ~25 fields was a tenth of a request's CPU.
_LINE_HEAD = encode_json(
    {"level": "info", "logger": access_log.name, "message": "request", "event": "request"}
)[1:-1]


def _connection_part(facts: ConnectionFacts) -> str:
    fields = {name: getattr(facts, name) for name in ConnectionFacts.FIELDS}
    return f"{_LINE_HEAD}, {encode_json(fields)[1:-1]}, "


_NO_AUTHORIZATION = (
    '"authorization": null, "authorization_rule": null, "authorization_reason": null, '
)


def _authorization_part(decision: Decision | None) -> str:
    if decision is None:
        return _NO_AUTHORIZATION
    encoded = decision.encoded
    if encoded is None:
        reason = decision.reason
        encoded = decision.encoded = (
            f'"authorization": {_string(decision.decision)}, '
            f'"authorization_rule": {_string(decision.rule)}, '
            f'"authorization_reason": {"null" if reason is None else _string(reason)}, '
        )
    return encoded


def request_line(connection_part: str, record: AccessRecord, created: float) -> str:
    """`json_line(access_log.name, "request", {"event": "request", **fields}, created)`, built
    from the connection's encoded part (tests check the two agree)."""
    # Numbers as json writes them (int and float repr); durations are finite clock differences.
    origin = record.origin_duration
    return (
        f'{{"time": "{utc_iso(created)}", {connection_part}'
        f'"method": {_string(record.method)}, "path": {_string(record.path)}, '
        f'"status": {record.status:d}, "bytes_in": {record.bytes_in:d}, '
        f'"bytes_out": {record.bytes_out:d}, "duration": {record.duration!r}, '
        f'"origin_duration": {"null" if origin is None else repr(origin)}, '
        f'"revocation": {_string(record.revocation)}, '
        f"{_authorization_part(record.authorization)}"
        f'"started": {record.time!r}}}'
    )
