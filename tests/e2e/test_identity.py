"""A verified client reaches the origin with the identity the edge asserts, and only that
(docs/dataplane.md)."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import unquote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from support.origin import RecordingOrigin

from .clients import aget, curl
from .conftest import AccessLog, Running
from .pki import Client, E2ePki

pytestmark = pytest.mark.slow


def parse_xfcc(value: str) -> dict[str, list[str]]:
    """One X-Forwarded-Client-Cert element (Envoy's format) → key → values (keys may repeat)."""
    fields: dict[str, list[str]] = {}
    for match in re.finditer(r'([A-Za-z]+)=("(?:[^"\\]|\\.)*"|[^;,]*)(?:;|$)', value):
        key, raw = match.group(1), match.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        fields.setdefault(key, []).append(raw)
    return fields


def byte_sequence(value: str) -> bytes:
    """An RFC 8941 byte sequence `:base64:` → bytes."""
    match = re.fullmatch(r":([A-Za-z0-9+/=]*):", value)
    assert match is not None, value
    return base64.b64decode(match.group(1), validate=True)


def assert_identity(seen_headers: dict[str, list[str]], client: Client) -> None:
    (xfcc,) = seen_headers["x-forwarded-client-cert"]
    element = parse_xfcc(xfcc)
    assert element["Hash"] == [hashlib.sha256(client.der).hexdigest()]
    assert element["Subject"] == [client.subject]
    cert = x509.load_pem_x509_certificate(unquote(element["Cert"][0]).encode())
    assert cert == client.leaf
    san = client.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert element["URI"] == san.get_values_for_type(x509.UniformResourceIdentifier)
    assert element["DNS"] == san.get_values_for_type(x509.DNSName)
    (client_cert,) = seen_headers["client-cert"]
    assert x509.load_der_x509_certificate(byte_sequence(client_cert)) == client.leaf
    assert seen_headers["x-client-cert-verify"] == ["SUCCESS"]


def headers_of(origin: RecordingOrigin, path: str) -> dict[str, list[str]]:
    seen = origin.last(path)
    out: dict[str, list[str]] = {}
    for name, value in seen.headers:
        out.setdefault(name.lower(), []).append(value)
    return out


async def test_valid_client_reaches_origin_with_its_identity_python_ssl(
    node: Running, pki: E2ePki, origin: RecordingOrigin, access_log: AccessLog
) -> None:
    response = await aget(pki, node.port, "api.test", pki.alice, "/who")
    assert response.status == 200
    assert response.json() == {"ok": True, "path": "/who", "length": 0}
    seen = headers_of(origin, "/who")
    assert_identity(seen, pki.alice)
    assert "client-cert-chain" not in seen  # alice sends no intermediate

    # One access-log line: who, verified against what; never the certificate itself
    # (docs/dataplane.md).
    (record,) = [r for r in access_log.records("request") if r.path == "/who"]
    assert record.status == 200
    assert record.edge_certificate == "api"
    assert record.sni == "api.test"
    assert record.client_subject == pki.alice.subject
    assert record.client_serial == format(pki.alice.leaf.serial_number, "x")
    assert record.client_fingerprint_sha256 == hashlib.sha256(pki.alice.der).hexdigest()
    assert (record.verify_result, record.verify_reason) == ("SUCCESS", None)
    assert (record.ca_set, record.ca_set_version) == ("partners", node.version)
    assert record.tls_version in ("TLSv1.2", "TLSv1.3")
    assert all("BEGIN CERTIFICATE" not in str(v) for v in vars(record).values())


async def test_valid_client_reaches_origin_with_curl(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    run, status, _ = await curl(pki, node.port, "www.api.test", pki.alice, "/curl")
    assert status == 200, run.stderr
    assert_identity(headers_of(origin, "/curl"), pki.alice)


async def test_client_without_certificate_is_refused_by_curl(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    run, status, _ = await curl(pki, node.port, "api.test", None, "/curl-nocert")
    assert status is None
    assert run.code != 0
    assert "/curl-nocert" not in origin.paths()


async def test_client_under_an_intermediate_sends_its_chain(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    response = await aget(pki, node.port, "api.test", pki.carol, "/carol")
    assert response.status == 200
    seen = headers_of(origin, "/carol")
    assert_identity(seen, pki.carol)
    (chain,) = seen["client-cert-chain"]
    assert [byte_sequence(item.strip()) for item in chain.split(",")] == [
        pki.intermediate.cert.public_bytes(Encoding.DER)
    ]
