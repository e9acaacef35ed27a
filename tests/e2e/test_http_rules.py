"""HTTP-level rules of the edge (docs/dataplane.md): identity headers are the proxy's alone, SNI
and Host agree,
and `request`-mode bindings deny or forward per request."""

from __future__ import annotations

import base64
import hashlib

import pytest

from support.origin import RecordingOrigin

from .clients import aget, curl
from .conftest import AccessLog, Running
from .pki import E2ePki

pytestmark = pytest.mark.slow

SPOOFED = {
    "X-Forwarded-Client-Cert": "Hash=evil",
    "Client-Cert": ":ZXZpbA==:",
    "Client-Cert-Chain": ":ZXZpbA==:",
    "X-Client-Cert-Verify": "SUCCESS",
}


async def test_spoofed_identity_headers_never_reach_the_origin(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    response = await aget(pki, node.port, "api.test", pki.alice, "/spoof", SPOOFED)
    assert response.status == 200
    seen = origin.last("/spoof")
    assert seen.one("X-Forwarded-Client-Cert").startswith(
        "Hash=" + hashlib.sha256(pki.alice.der).hexdigest() + ";"
    )
    assert seen.one("Client-Cert") == pki.alice.rfc9440
    # The chain that validated alice (CA A), not the client's ":ZXZpbA==:".
    assert seen.one("Client-Cert-Chain") == ":" + base64.b64encode(pki.ca_a.cert_der).decode() + ":"
    assert seen.one("X-Client-Cert-Verify") == "SUCCESS"
    assert all("evil" not in value and "ZXZpbA" not in value for _, value in seen.headers)


async def test_spoofed_identity_without_a_certificate_is_stripped_not_forwarded(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    # curl this time, on the `forward` binding: the request reaches the origin without a cert.
    run, status, _ = await curl(pki, node.port, "forward.test", None, "/spoof-none", SPOOFED)
    assert status == 200, run.stderr
    seen = origin.last("/spoof-none")
    assert seen.all("X-Forwarded-Client-Cert") == []
    assert seen.all("Client-Cert") == []
    assert seen.all("Client-Cert-Chain") == []
    assert seen.one("X-Client-Cert-Verify") == "NONE"


@pytest.mark.parametrize("host", ["api.test", "www.api.test", "API.test"])
async def test_host_naming_the_sni_edge_is_proxied(
    node: Running, pki: E2ePki, origin: RecordingOrigin, host: str
) -> None:
    response = await aget(pki, node.port, "api.test", pki.alice, "/host-ok", {"Host": host})
    assert response.status == 200
    assert origin.last("/host-ok").one("Host").lower() == host.lower()


@pytest.mark.parametrize("host", ["other.test", "a.b.api.test", "evil.test"])
async def test_host_of_another_edge_is_misdirected(
    node: Running, pki: E2ePki, origin: RecordingOrigin, access_log: AccessLog, host: str
) -> None:
    response = await aget(pki, node.port, "api.test", pki.alice, "/misdirected", {"Host": host})
    assert response.status == 421
    assert response.headers["content-type"] == "application/problem+json"
    assert "/misdirected" not in origin.paths()
    (record,) = [r for r in access_log.records("request") if r.path == "/misdirected"]
    assert (record.status, record.edge_certificate) == (421, "api")


@pytest.mark.parametrize(
    ("client_name", "reason"), [(None, "no_certificate"), ("bob", "unknown_ca")]
)
async def test_request_mode_deny_answers_403_and_never_reaches_the_origin(
    node: Running,
    pki: E2ePki,
    origin: RecordingOrigin,
    access_log: AccessLog,
    client_name: str | None,
    reason: str,
) -> None:
    client = getattr(pki, client_name) if client_name else None
    response = await aget(pki, node.port, "other.test", client, "/denied")
    assert response.status == 403
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["reason"]) == (403, reason)
    assert "/denied" not in origin.paths()
    (record,) = [r for r in access_log.records("request") if r.path == "/denied"]
    assert (record.status, record.verify_reason) == (403, reason)
    # The handshake itself completed (request mode); the verification failure is counted.
    metrics = await node.status.metrics()
    assert metrics.handshakes("", "other") >= 1
    labels = {"edge_certificate": "other", "result": "failure", "reason": reason}
    assert metrics.value("edgeproxy_client_cert_verifications_total", **labels) == 1


async def test_request_mode_deny_lets_a_verified_client_through(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    response = await aget(pki, node.port, "other.test", pki.alice, "/allowed")
    assert response.status == 200
    seen = origin.last("/allowed")
    assert seen.one("X-Client-Cert-Verify") == "SUCCESS"
    assert seen.one("X-Forwarded-Client-Cert").startswith("Hash=")
    assert seen.all("Client-Cert") == []  # this binding asserts xfcc only


@pytest.mark.parametrize(
    ("client_name", "verify"),
    [(None, "NONE"), ("bob", "FAILED:unknown_ca"), ("expired", "FAILED:expired")],
)
async def test_request_mode_forward_tells_the_origin_the_verify_status(
    node: Running, pki: E2ePki, origin: RecordingOrigin, client_name: str | None, verify: str
) -> None:
    client = getattr(pki, client_name) if client_name else None
    response = await aget(pki, node.port, "forward.test", client, "/forwarded")
    assert response.status == 200
    seen = origin.last("/forwarded")
    assert seen.one("X-Client-Cert-Verify") == verify
    # An unverified certificate says nothing about who the client is: no identity asserted.
    assert seen.all("X-Forwarded-Client-Cert") == []
    assert seen.all("Client-Cert") == []


async def test_request_mode_forward_asserts_a_verified_identity(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    response = await aget(pki, node.port, "forward.test", pki.alice, "/forwarded-ok")
    assert response.status == 200
    seen = origin.last("/forwarded-ok")
    assert seen.one("X-Client-Cert-Verify") == "SUCCESS"
    assert seen.one("Client-Cert") == pki.alice.rfc9440
