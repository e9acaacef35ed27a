"""A refused handshake's log line says who was refused and why, field by field
(docs/operations.md "Refused handshakes"): the client certificate, the CA set and version
enforced, TLS version, SNI, address, reason and OpenSSL's detail; identical refusals are sampled
with their count kept, while every one is counted in the metrics."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime
from types import SimpleNamespace

import pytest
from cryptography import x509

from edgeproxy.tls.clienthello import MAX_CLIENT_HELLO

from .clients import refused, send_raw
from .conftest import AccessLog, Running
from .pki import Client, E2ePki, crl_revoking

pytestmark = pytest.mark.slow


def _iso(moment: object) -> str:
    assert hasattr(moment, "isoformat")
    return moment.isoformat().replace("+00:00", "Z")


def last_refusal(access_log: AccessLog) -> SimpleNamespace:
    lines = access_log.records("handshake")
    assert lines, "no log line for the refused handshake"
    return lines[-1]


def assert_names_client(line: SimpleNamespace, client: Client) -> None:
    leaf = client.leaf
    assert line.client_subject == leaf.subject.rfc4514_string()
    assert line.client_issuer == leaf.issuer.rfc4514_string()
    assert line.client_serial == f"{leaf.serial_number:x}"
    assert line.client_sha256 == hashlib.sha256(client.der).hexdigest()
    assert line.client_not_before == _iso(leaf.not_valid_before_utc)
    assert line.client_not_after == _iso(leaf.not_valid_after_utc)


def assert_connection_facts(line: SimpleNamespace, node: Running, reason: str) -> None:
    assert line.message == "handshake failed"
    assert line.level == "info"
    assert line.verify_result == "FAILED"
    assert line.verify_reason == reason
    assert line.client_address == "127.0.0.1"
    assert isinstance(line.client_port, int)
    assert line.edge_certificate == "api"
    assert line.sni == "api.test"
    assert line.tls_version == "TLSv1.3"
    assert (line.ca_set, line.ca_set_version) == ("partners", node.version)
    assert line.repeated == 0


async def test_unknown_ca_names_the_client_and_the_set_enforced(
    node: Running, pki: E2ePki, access_log: AccessLog
) -> None:
    await refused(pki, node.port, "api.test", pki.bob)
    line = last_refusal(access_log)
    assert_connection_facts(line, node, "unknown_ca")
    assert_names_client(line, pki.bob)
    assert (line.verify_error, line.verify_depth) == (20, 0)
    assert line.detail == "certificate verify failed: unable to get local issuer certificate"
    assert (line.revocation, line.revocation_source, line.revoked_at) == ("not_checked", None, None)


async def test_expired_names_the_date(node: Running, pki: E2ePki, access_log: AccessLog) -> None:
    await refused(pki, node.port, "api.test", pki.expired)
    line = last_refusal(access_log)
    assert_connection_facts(line, node, "expired")
    assert_names_client(line, pki.expired)
    assert (line.verify_error, line.verify_depth) == (10, 0)
    not_after = _iso(pki.expired.leaf.not_valid_after_utc)
    assert (
        line.detail == f"certificate verify failed: certificate has expired (notAfter {not_after})"
    )


async def test_revoked_by_crl_names_the_date_and_the_source(
    node: Running, pki: E2ePki, access_log: AccessLog
) -> None:
    crl_pem = crl_revoking(pki.ca_a, pki.alice.leaf)
    before = (await node.status.json("/status"))[1]["trust"]["revision"]
    await node.admin.call(
        "POST", f"/ca-sets/{node.set_id}/crls", {"crlPem": crl_pem}, expect=(201,)
    )
    await node.status.wait_revision_after(before)
    await refused(pki, node.port, "api.test", pki.alice)
    line = last_refusal(access_log)
    assert_connection_facts(line, node, "revoked")
    assert_names_client(line, pki.alice)
    crl = x509.load_pem_x509_crl(crl_pem.encode())
    entry = crl.get_revoked_certificate_by_serial_number(pki.alice.leaf.serial_number)
    assert entry is not None
    revoked_at = _iso(entry.revocation_date_utc)
    assert (line.revocation, line.revocation_source, line.revoked_at) == (
        "revoked",
        "crl",
        revoked_at,
    )
    assert (line.verify_error, line.verify_depth) == (23, 0)
    assert (
        line.detail == f"certificate verify failed: certificate revoked (CRL, revoked {revoked_at})"
    )


async def test_no_certificate_has_no_client_fields(
    node: Running, pki: E2ePki, access_log: AccessLog
) -> None:
    await refused(pki, node.port, "api.test", None)
    line = last_refusal(access_log)
    assert_connection_facts(line, node, "no_certificate")
    for field in ("subject", "issuer", "serial", "sha256", "not_before", "not_after"):
        assert getattr(line, f"client_{field}") is None, field
    assert (line.verify_error, line.verify_depth) == (None, None)
    assert "did not return a certificate" in line.detail


# A handshake record whose ClientHello header announces more than the edge reads.
OVERSIZE_HELLO = (
    b"\x16\x03\x01"
    + (2**14).to_bytes(2)
    + (b"\x01" + (MAX_CLIENT_HELLO + 5000).to_bytes(3)).ljust(2**14, b"\0")
)


@pytest.mark.parametrize(
    ("payload", "reason", "detail"),
    [
        (
            b"GET / HTTP/1.1\r\nHost: api.test\r\n\r\n",
            "plain_http",
            "plaintext HTTP on the TLS port",
        ),
        (
            b"\x00garbage that is not TLS\r\n" * 4,
            "not_tls",
            "first byte 0x00 is not a TLS handshake record",
        ),
        (
            OVERSIZE_HELLO,
            "client_hello_too_large",
            f"ClientHello of {MAX_CLIENT_HELLO + 5000} bytes exceeds {MAX_CLIENT_HELLO}",
        ),
    ],
)
async def test_not_tls_at_all_has_its_own_reason(
    node: Running, access_log: AccessLog, payload: bytes, reason: str, detail: str
) -> None:
    await asyncio.to_thread(send_raw, node.port, payload)
    line = last_refusal(access_log)
    fields = vars(line)
    # Refused before any TLS: no edge certificate, SNI, set or certificate to name, only who
    # connected and why. Every field the line carries, so one added or dropped fails here.
    assert set(fields) == {
        "time", "level", "logger", "message", "event", "client_address", "client_port",
        "edge_certificate", "sni", "verify_result", "verify_reason", "detail", "tls_version",
        "ca_set", "ca_set_version", "verify_error", "verify_depth", "client_subject",
        "client_issuer", "client_serial", "client_sha256", "client_not_before",
        "client_not_after", "revocation_source", "revoked_at", "revocation", "duration",
        "repeated",
    }  # fmt: skip
    assert (line.level, line.logger) == ("info", "edgeproxy.access")
    assert (line.message, line.event) == ("handshake failed", "handshake")
    assert datetime.fromisoformat(line.time).tzinfo is not None
    assert line.client_address == "127.0.0.1"
    assert isinstance(line.client_port, int)
    assert 0 < line.client_port < 65536
    assert line.client_port != node.port
    assert line.edge_certificate is None
    assert line.sni is None
    assert line.verify_result == "FAILED"
    assert line.verify_reason == reason
    assert line.detail == detail
    assert line.tls_version is None
    assert (line.ca_set, line.ca_set_version) == (None, None)
    assert (line.verify_error, line.verify_depth) == (None, None)
    for field in ("subject", "issuer", "serial", "sha256", "not_before", "not_after"):
        assert getattr(line, f"client_{field}") is None, field
    assert (line.revocation, line.revocation_source, line.revoked_at) == ("not_checked", None, None)
    assert isinstance(line.duration, float)
    assert line.duration >= 0
    assert line.repeated == 0


async def test_identical_refusals_are_sampled_and_counted(
    node: Running, pki: E2ePki, access_log: AccessLog
) -> None:
    before = await node.status.metrics()
    for _ in range(3):
        await refused(pki, node.port, "api.test", pki.bob)
    await refused(pki, node.port, "api.test", pki.expired)  # another client: its own line
    after = await node.status.metrics()
    assert after.handshakes("unknown_ca", "api") == before.handshakes("unknown_ca", "api") + 3
    lines = access_log.records("handshake")
    assert [(line.verify_reason, line.repeated) for line in lines] == [
        ("unknown_ca", 0),
        ("expired", 0),
    ]
