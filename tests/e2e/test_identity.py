"""A verified client reaches the origin with the identity the edge asserts, and only that
(docs/dataplane.md)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from support.origin import RecordingOrigin
from support.pki import build_certificate, common_name

from .clients import TIMEOUT, PinnedHTTPSConnection, aget, curl, exchange
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


def chain_of(seen_headers: dict[str, list[str]]) -> list[bytes]:
    """Client-Cert-Chain (one field, a list of byte sequences) → DER certificates."""
    (chain,) = seen_headers["client-cert-chain"]
    return [byte_sequence(item.strip()) for item in chain.split(",")]


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
    # The chain that validated alice: CA A, the anchor from the set (she sends nothing more).
    assert chain_of(seen) == [pki.ca_a.cert.public_bytes(Encoding.DER)]

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


async def test_client_under_an_intermediate_gets_the_chain_up_to_the_root_of_the_set(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    response = await aget(pki, node.port, "api.test", pki.carol, "/carol")
    assert response.status == 200
    seen = headers_of(origin, "/carol")
    assert_identity(seen, pki.carol)
    assert chain_of(seen) == [
        pki.intermediate.cert.public_bytes(Encoding.DER),
        pki.root.cert.public_bytes(Encoding.DER),
    ]


def sending(tmp_path: Path, client: Client, after_leaf: list[x509.Certificate]) -> Client:
    """`client`'s leaf and key, sending exactly `after_leaf` after the leaf."""
    cert = tmp_path / f"{client.name}-sends-{len(after_leaf)}.pem"
    cert.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in (client.leaf, *after_leaf)))
    return Client(client.name, client.leaf, tuple(after_leaf), cert, client.key)


def self_signed(subject: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = datetime.now(UTC)
    return build_certificate(
        subject, key, not_before=now - timedelta(days=1), not_after=now + timedelta(days=30)
    )


@pytest.mark.parametrize("junk", [0, 99])
async def test_certificates_the_client_sent_after_its_leaf_are_never_asserted(
    node: Running, pki: E2ePki, origin: RecordingOrigin, tmp_path: Path, junk: int
) -> None:
    # A fake issuer (CA A's name, another key), then `junk` unrelated CA certificates: the
    # handshake verifies against the real CA A, and only that is the chain (RFC 9440 §2.3).
    key = ec.generate_private_key(ec.SECP256R1())
    fake = self_signed(pki.ca_a.cert.subject, key)
    extra = [self_signed(common_name(f"junk {i}"), key) for i in range(junk)]
    liar = sending(tmp_path, pki.alice, [fake, *extra])
    path = f"/liar-{junk}"
    response = await aget(pki, node.port, "api.test", liar, path)
    assert response.status == 200
    seen = headers_of(origin, path)
    assert_identity(seen, pki.alice)
    assert chain_of(seen) == [pki.ca_a.cert.public_bytes(Encoding.DER)]
    assert len(seen["client-cert-chain"][0]) < 2048  # not 100 certificates long


async def test_client_cert_chain_ends_at_the_anchor_of_a_partial_chain_set(
    node: Running, pki: E2ePki, origin: RecordingOrigin, tmp_path: Path
) -> None:
    # A version that holds carol's intermediate and not its root: the verified chain stops at the
    # intermediate, even when carol sends the root after it.
    await node.admin.publish([pki.intermediate.pem])
    carol = sending(tmp_path, pki.carol, [pki.intermediate.cert, pki.root.cert])
    response = await aget(pki, node.port, "api.test", carol, "/partial")
    assert response.status == 200
    seen = headers_of(origin, "/partial")
    assert_identity(seen, pki.carol)
    assert chain_of(seen) == [pki.intermediate.cert.public_bytes(Encoding.DER)]


def resumed_pair(pki: E2ePki, port: int, client: Client) -> bool | None:
    """Two connections, the second resuming the first's session; True if it did resume."""
    context = pki.client_context(client)  # a session resumes only with the context that made it
    first = PinnedHTTPSConnection("api.test", port, context=context, timeout=TIMEOUT)
    try:
        first.connect()
        sock = first.sock  # http.client drops it once a response says close
        assert isinstance(sock, ssl.SSLSocket)
        assert exchange(first, "/resume-1").status == 200
        session = sock.session  # read after the response: TLS 1.3 tickets come after the handshake
    finally:
        first.close()
    second = PinnedHTTPSConnection("api.test", port, context=context, timeout=TIMEOUT)
    second.session = session
    try:
        second.connect()
        sock = second.sock
        assert isinstance(sock, ssl.SSLSocket)
        reused = sock.session_reused  # the handshake is done; the close below forgets it
        assert exchange(second, "/resume-2", {"Connection": "close"}).status == 200
        return reused
    finally:
        second.close()


async def test_a_resumed_session_asserts_the_chain_its_full_handshake_verified(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    # No certificate is verified on resumption, so OpenSSL has no chain to give then.
    assert await asyncio.to_thread(resumed_pair, pki, node.port, pki.carol)
    full, resumed = headers_of(origin, "/resume-1"), headers_of(origin, "/resume-2")
    assert_identity(resumed, pki.carol)
    assert (
        chain_of(resumed)
        == chain_of(full)
        == [
            pki.intermediate.cert.public_bytes(Encoding.DER),
            pki.root.cert.public_bytes(Encoding.DER),
        ]
    )
