"""What the edge enforces on every request of one client connection, whatever its protocol.

HTTP/1.1 (exchange.HttpConnection) and HTTP/2 (h2server.Http2Connection, one exchange per stream)
both hold one `ClientPolicy` per connection and ask it the same questions in the same order, so a
client gets the same answer over either protocol (docs/dataplane.md "HTTP/2"):

* `admit`: does the Host (and an absolute-form or `:authority` authority) name this edge
  certificate (else 421), and may this client be forwarded at all (else 403, the binding's
  deny/forward decision, made once per connection from the TLS session);
* `authorize`: what the binding's authorization rules say of this request (authorization.py);
* `rev_check`: the per-request OCSP gate, pending until the answer is in (`settle`);
* `identity`: the identity block appended to every origin-bound request (identity.py);
* `record`: the access record of a finished exchange, with the connection's facts.
"""

from __future__ import annotations

import logging
import time
from time import perf_counter
from typing import Protocol

from edgeproxy.authz.policy import Decision, PeerPolicy, Policy
from edgeproxy.config.model import EdgeLimits
from edgeproxy.dataplane.http.authorization import connection_policy, refusal_status
from edgeproxy.dataplane.http.headers import HostMatcher
from edgeproxy.dataplane.http.identity import ClientIdentity, IdentityCache
from edgeproxy.dataplane.http.parser import RequestHead
from edgeproxy.dataplane.http.records import (
    AccessRecord,
    ConnectionFacts,
    RequestObserver,
    RevocationGate,
    RevocationProvider,
)
from edgeproxy.tls.session import Reason, TlsSession, VerifyResult

log = logging.getLogger(__name__)


class Shared(Protocol):
    """What a connection reads of its listener (context.ProxyContext)."""

    limits: EdgeLimits
    observer: RequestObserver | None
    identities: IdentityCache
    revocation: RevocationProvider | None
    draining: bool


class Recordable(Protocol):
    """What `ClientPolicy.record` reads of an exchange (exchange.Exchange)."""

    head: RequestHead | None
    authz: Decision | None
    bytes_in: int
    bytes_out: int
    t0: float
    t_origin: float


class ClientPolicy:
    """One connection's enforcement: decided once from the TLS session, asked per request."""

    __slots__ = (
        "_ctx",
        "_facts",
        "_identity",
        "_last_host",
        "_matcher",
        "_peer",
        "_session",
        "authz",
        "deny",
        "protocol",
        "rev_check",
        "rev_status",
    )

    def __init__(
        self,
        context: Shared,
        session: TlsSession,
        peer: tuple[str, int],
        matcher: HostMatcher,
        protocol: str,
    ) -> None:
        self._ctx = context
        self._session = session
        self._peer = peer
        self._matcher = matcher
        self.protocol = protocol  # "h1" | "h2": the access log's and the metrics' label
        self._last_host = b""  # the last Host that matched: one bytes compare per request
        self._identity: ClientIdentity | None = None
        self._facts: ConnectionFacts | None = None
        auth = session.edge.mutual_authentication
        self.deny = session.verify_result is not VerifyResult.SUCCESS and not auth.forwards_failures
        # OCSP (docs/dataplane.md): a pending or denying check, None once settled (the keep-alive
        # fast path); the status goes to every access record of the connection.
        self.rev_check: RevocationGate | None = None
        self.rev_status = "not_checked"
        reason = session.verify_reason
        if reason is Reason.REVOKED:  # on a CRL, or a cached OCSP answer (request mode)
            self.rev_status = "revoked"
        elif reason is Reason.OCSP_UNAVAILABLE:  # a stale CRL under hard (request mode)
            self.rev_status = "unavailable"
        elif (
            auth.ocsp.enabled
            and context.revocation is not None
            and session.verify_result is VerifyResult.SUCCESS
        ):
            # Asked now, not at the first request: the answer may be in before the request is.
            fingerprint = self.identity().fingerprint_sha256
            self.rev_status, self.rev_check = context.revocation.start(session, fingerprint)
        # The binding's authorization rules paired with this client, judged per request.
        self.authz: PeerPolicy | None = None
        if auth.authorization is not None:
            self.authz = connection_policy(auth.authorization, session, self.identity())

    def authorization_changed(self, policy: Policy | None) -> None:
        """A reload changed the binding's rules: the connection's next requests are judged by
        `policy` (dataplane/connections.py); the request in flight keeps its decision."""
        self.authz = connection_policy(policy, self._session, self.identity())

    def admit(self, host: bytes | None, authority: bytes | None) -> int:
        """0: the request may go on; else the status the edge answers (421 or 403)."""
        if host != self._last_host:
            if host is None or not self._matcher.matches(host):
                return 421
            self._last_host = host
        if authority is not None and not self._matcher.matches(authority):
            return 421
        return 403 if self.deny else 0

    def authorize(self, ex: Recordable, method: bytes, target: bytes) -> int:
        """The binding's authorization rules on one request (only asked when `authz` is set):
        0, or the refusal's status (`refusal_reason` names why). The decision goes on the
        exchange, for its access record."""
        assert self.authz is not None
        decision = ex.authz = self.authz.decide(method, target)
        return 0 if decision.forward else refusal_status(decision)

    @staticmethod
    def refusal_reason(ex: Recordable) -> str | None:
        return None if ex.authz is None else ex.authz.reason

    def serves(self, authority: bytes) -> bool:
        """Does this authority name the connection's edge certificate (HTTP/2 reuse)?"""
        return self._matcher.matches(authority)

    def settle(self, check: RevocationGate) -> str | None:
        """The OCSP answer is in: the reason to deny with, or None (then the gate is dropped and
        later requests take the fast path)."""
        self.rev_status = check.status
        reason = check.deny_reason
        if reason is None:
            self.rev_check = None
        return reason

    def deny_reason(self, reason: str | None = None) -> str:
        """The `reason` of a 403 problem document."""
        return reason or self._session.verify_reason or "other"

    def identity(self) -> ClientIdentity:
        identity = self._identity
        if identity is None:  # once per connection: the TLS session does not change
            identity = self._identity = self._ctx.identities.get(self._session)
        return identity

    def facts(self) -> ConnectionFacts:
        facts = self._facts
        if facts is None:  # once per connection: the TLS session does not change
            session = self._session
            identity = self.identity()
            facts = self._facts = ConnectionFacts(
                client_address=self._peer[0],
                client_port=self._peer[1],
                edge_certificate=session.edge.name,
                sni=session.sni,
                tls_version=session.tls_version,
                protocol=self.protocol,
                client_subject=identity.subject,
                client_serial=identity.serial,
                client_fingerprint_sha256=identity.fingerprint_sha256,
                verify_result=session.verify_result.value,
                verify_reason=session.verify_reason,
                ca_set=session.ca_set,
                ca_set_version=session.ca_set_version,
            )
        return facts

    def record(self, ex: Recordable, status: int) -> None:
        """One access record (the access log and metrics) for a finished exchange."""
        observer = self._ctx.observer
        req = ex.head
        if observer is None or req is None:
            return
        # Durations on perf_counter: uvloop's loop.time() ticks in whole milliseconds.
        now = perf_counter()
        t_origin = ex.t_origin
        record = AccessRecord(
            time.time() - (now - ex.t0),
            self._facts or self.facts(),
            req.method.decode("latin-1"),
            req.target.decode("latin-1"),
            status,
            ex.bytes_in,
            ex.bytes_out,
            now - ex.t0,
            now - t_origin if t_origin else None,
            self.rev_status,
            ex.authz,
        )
        try:
            observer.request_done(record)
        except Exception:  # a broken log or metrics sink must not break proxying
            log.exception("request observer failed")
