"""Metrics (docs/operations.md): names, bounded labels, stale series removal, and a valid
exposition."""

from __future__ import annotations

import importlib.metadata
import subprocess

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.domain.model import Network
from edgeproxy.tls.session import Reason
from support.tools import promtool

FP_A = "aa" * 32
FP_B = "bb" * 32
SUBJECT_A, SUBJECT_B = "CN=Partner A Root,O=Partner A", "CN=Partner B Root,O=Partner B"


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, _ = metrics.render()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


def exercised() -> Metrics:
    m = Metrics()
    m.prepare(["api"], Network.STAGING)
    m.handshake_succeeded("api", Network.STAGING, 0.002)
    m.handshake_failed("api", Network.STAGING, Reason.UNKNOWN_CA, 0.004)
    m.client_cert_verified("api")
    m.client_cert_rejected("api", Reason.EXPIRED)
    m.connection_opened()
    m.connection_opened()
    m.connection_closed()
    m.request_done("api", 200, 0.01)
    m.request_done("api", 403)
    m.trust_applied(
        {"partners": (3, [(FP_A, 1.9e9, SUBJECT_A)])}, Network.STAGING, 0.05, {"api": 2.1e9}
    )
    m.trust_reload_failed()
    m.ocsp_response("good")
    m.ocsp_cache_hit()
    m.store_reachable(True)
    m.authorization_decided("api", "allow", "reads")
    m.authorization_decided("api", "deny", "default")
    m.authorization_decided("api", "deny", "default")
    return m


def test_exposition_has_every_metric_with_its_labels() -> None:
    m = exercised()
    hs = "edgeproxy_tls_handshakes_total"
    edge = {"edge_certificate": "api", "network": "STAGING"}
    assert value(m, hs, **edge, result="success", reason="") == 1
    assert value(m, hs, **edge, result="failure", reason="unknown_ca") == 1
    assert value(m, "edgeproxy_tls_handshake_duration_seconds_count") == 2
    assert value(m, "edgeproxy_tls_handshake_duration_seconds_bucket", le="0.0005") == 0
    assert value(m, "edgeproxy_tls_handshake_duration_seconds_bucket", le="0.005") == 2
    cv = "edgeproxy_client_cert_verifications_total"
    assert value(m, cv, edge_certificate="api", result="success", reason="") == 1
    assert value(m, cv, edge_certificate="api", result="failure", reason="expired") == 1
    assert value(m, "edgeproxy_connections_active") == 1
    assert (
        value(m, "edgeproxy_http_requests_total", edge_certificate="api", code="200", protocol="h1")
        == 1
    )
    assert (
        value(m, "edgeproxy_http_requests_total", edge_certificate="api", code="403", protocol="h1")
        == 1
    )
    # Only the request that reached the origin is timed.
    assert value(m, "edgeproxy_origin_request_duration_seconds_count") == 1
    assert value(m, "edgeproxy_trust_active_version", ca_set="partners", network="STAGING") == 3
    expiry = "edgeproxy_ca_certificate_expiry_timestamp_seconds"
    labels = {"ca_set": "partners", "version": "3", "fingerprint": FP_A, "subject": SUBJECT_A}
    assert value(m, expiry, **labels) == 1.9e9
    assert value(
        m, "edgeproxy_edge_certificate_expiry_timestamp_seconds", edge_certificate="api"
    ) == (2.1e9)
    [(info, build)] = [(k, v) for k, v in samples(m).items() if k[0] == "edgeproxy_build_info"]
    assert build == 1
    assert dict(info[1])["version"] == importlib.metadata.version("edgeproxy")
    assert dict(info[1])["openssl"].startswith("OpenSSL ")
    assert value(m, "edgeproxy_trust_reloads_total", result="success") == 1
    assert value(m, "edgeproxy_trust_reloads_total", result="failure") == 1
    assert value(m, "edgeproxy_trust_apply_latency_seconds_count") == 1
    assert value(m, "edgeproxy_ocsp_responses_total", status="good") == 1
    assert value(m, "edgeproxy_ocsp_responses_total", status="revoked") == 0
    assert value(m, "edgeproxy_ocsp_cache_hits_total") == 1
    assert value(m, "edgeproxy_store_reachable") == 1
    decisions = "edgeproxy_authorization_decisions_total"
    assert value(m, decisions, edge_certificate="api", decision="allow", rule="reads") == 1
    assert value(m, decisions, edge_certificate="api", decision="deny", rule="default") == 2


def test_prepare_publishes_zero_series_before_any_event() -> None:
    m = Metrics()
    m.prepare(["api"], Network.PRODUCTION)
    labels = {"edge_certificate": "api", "network": "PRODUCTION", "result": "success", "reason": ""}
    assert value(m, "edgeproxy_tls_handshakes_total", **labels) == 0
    assert value(m, "edgeproxy_store_reachable") == 0


def test_unprepared_edge_has_no_series() -> None:
    m = Metrics()
    m.prepare(["api"], Network.PRODUCTION)
    labels = {"edge_certificate": "web", "network": "PRODUCTION", "result": "success", "reason": ""}
    assert value(m, "edgeproxy_tls_handshakes_total", **labels) is None


@pytest.mark.parametrize("reason", [*Reason])
def test_every_reason_is_a_label_value(reason: Reason) -> None:
    m = Metrics()
    m.handshake_failed("api", Network.STAGING, reason, 0.01)
    labels = {"edge_certificate": "api", "network": "STAGING", "result": "failure"}
    assert value(m, "edgeproxy_tls_handshakes_total", **labels, reason=reason.value) == 1


@pytest.mark.parametrize("reason", ["CN=Mallory,O=Evil", "", "0x1234"])
def test_labels_outside_the_enum_are_refused(reason: str) -> None:
    m = Metrics()
    with pytest.raises(ValueError, match="Reason"):
        m.client_cert_rejected("api", reason)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Reason"):
        m.handshake_failed("api", Network.STAGING, reason, 0.01)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Network"):
        m.handshake_succeeded("api", "LAB", 0.01)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="OCSP status"):
        m.ocsp_response(reason)
    with pytest.raises(ValueError, match="outside"):
        m.request_done("api", 1234)
    with pytest.raises(ValueError, match="decision"):
        m.authorization_decided("api", reason, "0")
    cv = "edgeproxy_client_cert_verifications_total"
    assert not [k for k, v in samples(m).items() if k[0] == cv and v > 0]


def test_trust_applied_removes_series_of_sets_and_versions_that_are_gone() -> None:
    m = Metrics()
    m.trust_applied(
        {"partners": (1, [(FP_A, 1.0e9, SUBJECT_A)]), "legacy": (2, [(FP_B, 2.0e9, SUBJECT_B)])},
        Network.STAGING,
    )
    m.trust_applied({"partners": (2, [(FP_B, 2.0e9, SUBJECT_B)])}, Network.STAGING, None)
    got = samples(m)
    versions = {
        dict(labels)["ca_set"]: v
        for (name, labels), v in got.items()
        if name == "edgeproxy_trust_active_version"
    }
    assert versions == {"partners": 2}
    expiries = {
        tuple(sorted(labels)): v
        for (name, labels), v in got.items()
        if name == "edgeproxy_ca_certificate_expiry_timestamp_seconds"
    }
    assert expiries == {
        (("ca_set", "partners"), ("fingerprint", FP_B), ("subject", SUBJECT_B), ("version", "2")): (
            2.0e9
        )
    }
    # No latency was passed the second time (a start-up load has no activation to time).
    assert value(m, "edgeproxy_trust_apply_latency_seconds_count") == 0
    assert value(m, "edgeproxy_trust_reloads_total", result="success") == 2


def test_edge_certificate_expiry_series_follow_the_edges() -> None:
    m = Metrics()
    m.trust_applied({}, Network.STAGING, None, {"api": 2.0e9, "www": 2.1e9})
    m.trust_applied({}, Network.STAGING, None, {"api": 2.2e9})  # www left the config
    name = "edgeproxy_edge_certificate_expiry_timestamp_seconds"
    got = {dict(k[1])["edge_certificate"]: v for k, v in samples(m).items() if k[0] == name}
    assert got == {"api": 2.2e9}


def test_failed_reload_keeps_the_previous_series() -> None:
    m = Metrics()
    m.trust_applied({"partners": (1, [(FP_A, 1.0e9, SUBJECT_A)])}, Network.STAGING, 0.1)
    m.trust_reload_failed()
    assert value(m, "edgeproxy_trust_active_version", ca_set="partners", network="STAGING") == 1
    expiry = "edgeproxy_ca_certificate_expiry_timestamp_seconds"
    labels = {"ca_set": "partners", "version": "1", "fingerprint": FP_A, "subject": SUBJECT_A}
    assert value(m, expiry, **labels) == 1.0e9


def test_set_without_active_version_reads_zero_and_has_no_expiry_series() -> None:
    m = Metrics()
    m.trust_applied({"partners": (None, [(FP_A, 1.0e9, SUBJECT_A)])}, Network.PRODUCTION, 0.1)
    assert value(m, "edgeproxy_trust_active_version", ca_set="partners", network="PRODUCTION") == 0
    assert not [k for k in samples(m) if k[0].startswith("edgeproxy_ca_certificate_expiry")]


def test_each_instance_has_its_own_registry_never_the_global_one() -> None:
    a, b = Metrics(), Metrics()
    a.connection_opened()
    assert value(a, "edgeproxy_connections_active") == 1
    assert value(b, "edgeproxy_connections_active") == 0
    assert prometheus_client.REGISTRY.get_sample_value("edgeproxy_connections_active") is None


def test_a_registry_passed_in_is_used() -> None:
    registry = prometheus_client.CollectorRegistry()
    m = Metrics(registry)
    m.connection_opened()
    assert m.registry is registry
    assert registry.get_sample_value("edgeproxy_connections_active") == 1


def test_render_content_type_is_prometheus_text() -> None:
    _, content_type = Metrics().render()
    assert content_type.startswith("text/plain; version=0.0.4")


def test_exposition_passes_promtool_check_metrics() -> None:
    body, _ = exercised().render()
    result = subprocess.run(
        [promtool(), "check", "metrics"], input=body, capture_output=True, timeout=30
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_promtool_rejects_a_broken_exposition() -> None:
    # The twin: proves the check above is able to fail (a counter without _total, a bad value).
    broken = b'# TYPE edgeproxy_broken counter\nedgeproxy_broken{a="1"} not-a-number\n'
    result = subprocess.run(
        [promtool(), "check", "metrics"], input=broken, capture_output=True, timeout=30
    )
    assert result.returncode != 0
