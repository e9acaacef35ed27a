"""Prometheus metrics of a node (docs/operations.md): one registry object, passed in, never the
global default.

Every label is bounded: `edge_certificate` comes from config, `network` from the `Network` enum,
`result` is success/failure, `reason` a `Reason` value ("" on success), `code` an HTTP status,
`status` one of `OCSP_STATUSES`, `decision` one of `AUTHORIZATION_DECISIONS` and `rule` a rule of
the binding's rules. Never a DN, a serial or anything else a client controls.

Hot-path methods look their labelled child up in a dict keyed by the raw label values; the
prometheus_client `.labels()` call (a lock, string conversion and a dict of its own) runs once per
distinct key, on first use. Keys are bounded as above, so the caches are too.

With `edge.workers` > 1 every worker process writes its values to files in one directory
(prometheus_client's multiprocess mode, `shared_directory`) and the main process's /metrics reads
them all: counters and histograms are summed; each gauge says how its workers' values combine
(`multiprocess_mode`). Gauges use the `live*` modes so a dead worker's values leave with it.
"""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import OpenSSL.SSL
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.registry import Collector

from edgeproxy.dataplane.metrics_shared import RETIRED, new_registry, shared_directory
from edgeproxy.domain.model import Network
from edgeproxy.tls.session import Reason

# Text format 0.0.4: every scraper reads it (prometheus_client >= 0.22 announces 1.0.0, which older
# Prometheus servers do not know), and our names need none of 1.0.0's escaping.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

SUCCESS: Final = "success"
FAILURE: Final = "failure"
# The three certificate statuses of RFC 6960 §2.2, plus "error": no usable response (unreachable
# responder, bad signature, outside its validity window).
OCSP_STATUSES: Final = ("good", "revoked", "unknown", "error")
PROTOCOLS: Final = ("h1", "h2")  # the `protocol` label: HTTP/1.x or HTTP/2

# What a binding's authorization rules decided for a request (report mode: would_deny).
AUTHORIZATION_DECISIONS: Final = ("allow", "deny", "would_deny")

# Why an open connection was closed by the edge after a trust change (a certificate `Reason`: the
# chain no longer verifies, or is revoked), because its edge certificate went away (SIGHUP), or
# because it reached `edge.limits.max_connection_age`.
CLOSE_REASONS: Final = frozenset({*(r.value for r in Reason), "edge_removed", "max_age"})

# A local TLS 1.3 handshake costs ~0.5-2 ms of CPU; a slow client or a deadline ends near 1 s+.
HANDSHAKE_BUCKETS: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
# Origin read timeout defaults to 60 s (docs/dataplane.md).
ORIGIN_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60)
# Target: activation → applied, p99 ≤ 250 ms (docs/performance.md).
APPLY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


# A CA's subject DN as a label: the version's own (validated when uploaded, at most 300 per
# version), cut to a length no scraper minds.
MAX_SUBJECT: Final = 256


def build_labels() -> tuple[str, str, str]:
    """(edgeproxy version, Python version, OpenSSL version) for edgeproxy_build_info."""
    try:
        version = importlib.metadata.version("edgeproxy")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return (
        version,
        platform.python_version(),
        OpenSSL.SSL.OpenSSL_version(OpenSSL.SSL.OPENSSL_VERSION).decode(),
    )


def _outcome(reason: Reason | None) -> tuple[str, str]:
    """(result, reason) label values; None means success. Refuses anything outside `Reason`."""
    if reason is None:
        return SUCCESS, ""
    return FAILURE, Reason(reason).value


class Metrics:
    """Every metric of docs/operations.md, plus `edgeproxy_store_reachable` (static stability,
    docs/architecture.md)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = new_registry() if registry is None else registry
        # Multiprocess mode: this process writes its values for the others to read, and /metrics
        # shows every worker's (the metrics below stay in `registry`, which is not exposed).
        self._shared = shared_directory()
        self._exposition = self.registry if self._shared is None else new_registry(self._shared)
        r = self.registry
        self._handshakes = Counter(
            "edgeproxy_tls_handshakes",
            "TLS handshakes on the edge listener, by outcome.",
            ["edge_certificate", "network", "result", "reason"],
            registry=r,
        )
        self._handshake_seconds = Histogram(
            "edgeproxy_tls_handshake_duration_seconds",
            "Time from the first ClientHello byte to the end of the TLS handshake.",
            buckets=HANDSHAKE_BUCKETS,
            registry=r,
        )
        self._verifications = Counter(
            "edgeproxy_client_cert_verifications",
            "Client certificate verifications, by outcome.",
            ["edge_certificate", "result", "reason"],
            registry=r,
        )
        self._connections = Gauge(
            "edgeproxy_connections_active",
            "Open client connections.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._closed = Counter(
            "edgeproxy_connections_closed",
            "Open connections the edge closed after their in-flight response: a trust change no "
            "longer trusts the client, or the connection reached its maximum age.",
            ["edge_certificate", "reason"],
            registry=r,
        )
        self._lost = Counter(
            "edgeproxy_lost_clients",
            "Clients accepted under an earlier version of a binding and refused by a newer one.",
            ["edge_certificate", "reason"],
            registry=r,
        )
        self._requests = Counter(
            "edgeproxy_http_requests",
            "HTTP requests answered, by status code and protocol (h1: HTTP/1.x, h2: HTTP/2).",
            ["edge_certificate", "code", "protocol"],
            registry=r,
        )
        self._origin_seconds = Histogram(
            "edgeproxy_origin_request_duration_seconds",
            "Time from sending a request to the origin to its response headers.",
            buckets=ORIGIN_BUCKETS,
            registry=r,
        )
        self._active_version = Gauge(
            "edgeproxy_trust_active_version",
            "Active CA set version applied on this node (0: the set has no active version).",
            ["ca_set", "network"],
            registry=r,
            # The workers' newest apply: during an activation some workers are a step behind.
            multiprocess_mode="livemostrecent",
        )
        self._reloads = Counter(
            "edgeproxy_trust_reloads", "Trust state rebuilds, by outcome.", ["result"], registry=r
        )
        self._apply_seconds = Histogram(
            "edgeproxy_trust_apply_latency_seconds",
            "Time from an activation's creation to its trust state being applied here.",
            buckets=APPLY_BUCKETS,
            registry=r,
        )
        self._ca_expiry = Gauge(
            "edgeproxy_ca_certificate_expiry_timestamp_seconds",
            "notAfter (Unix time) of each CA certificate in an applied version.",
            ["ca_set", "version", "fingerprint", "subject"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self._edge_expiry = Gauge(
            "edgeproxy_edge_certificate_expiry_timestamp_seconds",
            "notAfter (Unix time) of the server certificate each edge certificate serves.",
            ["edge_certificate"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self._build_info = Gauge(
            "edgeproxy_build_info",
            "Always 1; the labels say which edgeproxy, Python and OpenSSL this node runs.",
            ["version", "python", "openssl"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self._build_info.labels(*build_labels()).set(1)
        self._ocsp = Counter(
            "edgeproxy_ocsp_responses", "OCSP answers, by status.", ["status"], registry=r
        )
        self._ocsp_cache_hits = Counter(
            "edgeproxy_ocsp_cache_hits", "OCSP lookups answered from the cache.", registry=r
        )
        self._crl_expired = Gauge(
            "edgeproxy_crl_expired",
            "CRLs in force for a CA set that are past their nextUpdate (0: every CRL is current).",
            ["ca_set"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self._crl_stale_accepted = Counter(
            "edgeproxy_crl_stale_accepted",
            "Handshakes accepted past a stale CRL (ocsp.failure_mode soft).",
            ["ca_set"],
            registry=r,
        )
        self._authorization = Counter(
            "edgeproxy_authorization_decisions",
            "Requests judged by a binding's authorization rules, by decision (allow, deny, "
            "would_deny: report mode) and rule (its name or index, default, invalid_path).",
            ["edge_certificate", "decision", "rule"],
            registry=r,
        )
        self._store_reachable = Gauge(
            "edgeproxy_store_reachable",
            "1 while the store answers; 0 while the node runs on its last applied state.",
            registry=r,
            # 0 as soon as any worker runs on its snapshot.
            multiprocess_mode="livemin",
        )

        self._handshake_children: dict[tuple[str, Network, Reason | None], Any] = {}
        self._verification_children: dict[tuple[str, Reason | None], Any] = {}
        self._request_children: dict[tuple[str, int, str], Any] = {}
        self._authorization_children: dict[tuple[str, str, str], Any] = {}
        self._reload_ok = self._reloads.labels(SUCCESS)
        self._reload_failed = self._reloads.labels(FAILURE)
        self._ocsp_children = {s: self._ocsp.labels(s) for s in OCSP_STATUSES}
        # Series published by the last trust_applied(), to remove the ones that disappear.
        self._version_series: set[tuple[str, str]] = set()
        self._expiry_series: set[tuple[str, ...]] = set()
        self._edge_series: set[tuple[str]] = set()
        self._crl_series: set[tuple[str]] = set()

    def prepare(self, edge_certificates: Iterable[str], network: Network) -> None:
        """Publish zero-valued success series up front, so the first increment is not lost to
        `rate()` (a series that appears at 1 has no earlier sample to compare with)."""
        for edge in edge_certificates:
            self._handshake(edge, network, None)
            self._verification(edge, None)

    # -- data plane (hot paths) -----------------------------------------------------------------

    def handshake_succeeded(self, edge: str, network: Network, duration: float) -> None:
        self._handshake(edge, network, None).inc()
        self._handshake_seconds.observe(duration)

    def handshake_failed(
        self, edge: str, network: Network, reason: Reason, duration: float
    ) -> None:
        self._handshake(edge, network, reason).inc()
        self._handshake_seconds.observe(duration)

    def client_cert_verified(self, edge: str) -> None:
        self._verification(edge, None).inc()

    def client_cert_rejected(self, edge: str, reason: Reason) -> None:
        self._verification(edge, reason).inc()

    def lost_client(self, edge: str, reason: Reason) -> None:
        self._lost.labels(edge, reason.value).inc()

    def request_done(
        self, edge: str, code: int, origin_duration: float | None = None, protocol: str = "h1"
    ) -> None:
        """One answered request; `origin_duration` is None when the origin was never asked."""
        child = self._request_children.get((edge, code, protocol))
        if child is None:
            child = self._request(edge, code, protocol)
        child.inc()
        if origin_duration is not None:
            self._origin_seconds.observe(origin_duration)

    def authorization_decided(self, edge: str, decision: str, rule: str) -> None:
        """One request judged by a binding's rules; `rule` is bounded by the binding's rules
        (authz/parse.py MAX_RULES) and names no client."""
        key = (edge, decision, rule)
        child = self._authorization_children.get(key)
        if child is None:
            if decision not in AUTHORIZATION_DECISIONS:
                raise ValueError(f"decision {decision!r} is not one of {AUTHORIZATION_DECISIONS}")
            child = self._authorization_children[key] = self._authorization.labels(*key)
        child.inc()

    def connection_opened(self) -> None:
        self._connections.inc()

    def connection_closed(self) -> None:
        self._connections.dec()

    def connection_retired(self, edge: str, reason: str) -> None:
        """An open connection closed by the edge (not the client): see CLOSE_REASONS."""
        if reason not in CLOSE_REASONS:
            raise ValueError(f"close reason {reason!r} is not one of {sorted(CLOSE_REASONS)}")
        self._closed.labels(edge, reason).inc()

    def ocsp_response(self, status: str) -> None:
        child = self._ocsp_children.get(status)
        if child is None:
            raise ValueError(f"OCSP status {status!r} is not one of {OCSP_STATUSES}")
        child.inc()

    def ocsp_cache_hit(self) -> None:
        self._ocsp_cache_hits.inc()

    def crl_stale_accepted(self, ca_set: str) -> None:
        self._crl_stale_accepted.labels(ca_set).inc()

    # On a cache miss only: validate the label values, resolve the child, remember it.

    def _handshake(self, edge: str, network: Network, reason: Reason | None) -> Any:
        key = (edge, network, reason)
        child = self._handshake_children.get(key)
        if child is None:
            result, label = _outcome(reason)
            child = self._handshakes.labels(edge, Network(network).value, result, label)
            self._handshake_children[key] = child
        return child

    def _verification(self, edge: str, reason: Reason | None) -> Any:
        key = (edge, reason)
        child = self._verification_children.get(key)
        if child is None:
            result, label = _outcome(reason)
            child = self._verification_children[key] = self._verifications.labels(
                edge, result, label
            )
        return child

    def _request(self, edge: str, code: int, protocol: str) -> Any:
        if not 100 <= code <= 599:
            raise ValueError(f"HTTP status {code} is outside 100-599")
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol {protocol!r} is not one of {PROTOCOLS}")
        child = self._requests.labels(edge, str(code), protocol)
        self._request_children[edge, code, protocol] = child
        return child

    # -- trust state ----------------------------------------------------------------------------

    def trust_applied(
        self,
        active: Mapping[str, tuple[int | None, Sequence[tuple[str, float, str]]]],
        network: Network,
        latency_seconds: float | None = None,
        edges: Mapping[str, float | None] | None = None,
    ) -> None:
        """A new trust state is in force. `active` maps each bound CA set to its active version
        (None: none) and that version's certificates as (SHA-256 fingerprint, notAfter Unix time,
        subject DN); `edges` each edge certificate to its server certificate's notAfter (None:
        unknown). Series of sets, versions, certificates and edges no longer there are removed.
        `latency_seconds`: the activation this state applies, timed (None: no activation)."""
        net = Network(network).value
        versions: set[tuple[str, str]] = set()
        expiries: set[tuple[str, ...]] = set()
        for ca_set, (version, certificates) in active.items():
            self._active_version.labels(ca_set, net).set(version or 0)
            versions.add((ca_set, net))
            if version is None:
                continue
            for fingerprint, not_after, subject in certificates:
                key = (ca_set, str(version), fingerprint, subject[:MAX_SUBJECT])
                self._ca_expiry.labels(*key).set(not_after)
                expiries.add(key)
        for gone in self._version_series - versions:
            self._retire(self._active_version, gone)
        for gone_expiry in self._expiry_series - expiries:
            self._retire(self._ca_expiry, gone_expiry)
        self._version_series, self._expiry_series = versions, expiries
        if edges is not None:
            edge_series = {(name,) for name, when in edges.items() if when is not None}
            for name, when in edges.items():
                if when is not None:
                    self._edge_expiry.labels(name).set(when)
            for gone_edge in self._edge_series - edge_series:
                self._retire(self._edge_expiry, gone_edge)
            self._edge_series = edge_series
        self._reload_ok.inc()
        if latency_seconds is not None:
            self._apply_seconds.observe(latency_seconds)

    def _retire(self, gauge: Gauge, labels: tuple[str, ...]) -> None:
        if self._shared is None:
            gauge.remove(*labels)
        else:
            gauge.labels(*labels).set(RETIRED)

    def trust_reload_failed(self) -> None:
        """A rebuild failed; the previous state stays in force (its gauges stay as they are)."""
        self._reload_failed.inc()

    def crl_expired(self, expired: Mapping[str, int]) -> None:
        """Per bound CA set, how many of its CRLs in force are past nextUpdate; series of sets
        no longer in `expired` are removed."""
        series = {(ca_set,) for ca_set in expired}
        for ca_set, count in expired.items():
            self._crl_expired.labels(ca_set).set(count)
        for gone in self._crl_series - series:
            self._retire(self._crl_expired, gone)
        self._crl_series = series

    def store_reachable(self, reachable: bool) -> None:
        self._store_reachable.set(1 if reachable else 0)

    # -- exposition -----------------------------------------------------------------------------

    def register(self, collector: Collector) -> None:
        """Show another role's metrics on this /metrics (the admin role's convergence view)."""
        self._exposition.register(collector)

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its Content-Type."""
        return generate_latest(self._exposition), CONTENT_TYPE
