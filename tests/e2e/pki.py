"""The end-to-end PKI, made at test time: trustme CAs, client leaves built with
cryptography where trustme cannot say what we need (a validity period in the past, a URI SAN).

Files are written once per session; the edge certificate's chain and key are copied per node by
the node fixtures, so a test may damage its copy without touching the others.
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from support.pki import (
    build_crl,
    common_name,
    leaf_certificate,
    private_key_pem,
    trustme_issuer,
)

# Every name the edge certificate answers for; the node config splits them among its edges.
SERVER_NAMES = ("api.test", "*.api.test", "other.test", "forward.test")


@dataclass(frozen=True)
class Client:
    """A client certificate on disk: `cert` holds the leaf, then any intermediates it sends."""

    name: str
    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # sent after the leaf (intermediates)
    cert: Path
    key: Path

    @property
    def der(self) -> bytes:
        return self.leaf.public_bytes(Encoding.DER)

    @property
    def subject(self) -> str:
        return self.leaf.subject.rfc4514_string()

    @property
    def rfc9440(self) -> str:
        return ":" + base64.b64encode(self.der).decode() + ":"


@dataclass(frozen=True)
class CaCert:
    ca: trustme.CA

    @property
    def pem(self) -> str:
        return self.ca.cert_pem.bytes().decode()

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.ca.cert_pem.bytes())

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(Encoding.DER)


@dataclass(frozen=True)
class E2ePki:
    server_ca: CaCert
    server_chain: Path  # the edge certificate: leaf then chain (PEM)
    server_key: Path
    ca_a: CaCert  # the partner CA the node trusts
    ca_b: CaCert  # a CA the node does not trust (until a test activates it)
    root: CaCert  # root → intermediate → `chained`
    intermediate: CaCert
    alice: Client  # from CA A
    expired: Client  # from CA A, notAfter yesterday
    bob: Client  # from CA B
    carol: Client  # from the intermediate; sends the intermediate after the leaf
    carol_alone: Client  # the same leaf without the intermediate

    def client_context(self, client: Client | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=None)
        self.server_ca.ca.configure_trust(ctx)
        if client is not None:
            ctx.load_cert_chain(client.cert, client.key)
        return ctx


def _leaf(
    issuer: trustme.CA,
    cn: str,
    organization: str,
    *,
    not_before: datetime,
    not_after: datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    trust_domain = organization.lower().replace(" ", "-")
    san = x509.SubjectAlternativeName(
        [
            x509.UniformResourceIdentifier(f"spiffe://{trust_domain}/{cn}"),
            x509.DNSName(f"{cn}.clients.test"),
        ]
    )
    cert = leaf_certificate(
        common_name(cn, organization=organization),
        key,
        trustme_issuer(issuer),
        not_before=not_before,
        not_after=not_after,
        extensions=[san],
    )
    return cert, key


def _write_client(
    directory: Path,
    name: str,
    leaf: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    chain: tuple[x509.Certificate, ...] = (),
) -> Client:
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in (leaf, *chain)))
    key_path.write_bytes(private_key_pem(key))
    key_path.chmod(0o600)
    return Client(name, leaf, chain, cert_path, key_path)


def make_pki(directory: Path) -> E2ePki:
    now = datetime.now(UTC)
    day = timedelta(days=1)
    valid = {"not_before": now - day, "not_after": now + 30 * day}

    server_ca = trustme.CA(organization_name="e2e server CA")
    server = server_ca.issue_cert(*SERVER_NAMES)
    server_chain = directory / "server-chain.pem"
    server_key = directory / "server.key"
    server_chain.write_bytes(b"".join(b.bytes() for b in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(server_key))

    ca_a = trustme.CA(organization_name="Partner A", organization_unit_name="e2e client CA A")
    ca_b = trustme.CA(organization_name="Partner B", organization_unit_name="e2e client CA B")
    root = trustme.CA(organization_name="Partner C", organization_unit_name="e2e root")
    intermediate = root.create_child_ca()

    alice, alice_key = _leaf(ca_a, "alice", "Partner A", **valid)
    expired, expired_key = _leaf(
        ca_a, "old-alice", "Partner A", not_before=now - 10 * day, not_after=now - day
    )
    bob, bob_key = _leaf(ca_b, "bob", "Partner B", **valid)
    carol, carol_key = _leaf(intermediate, "carol", "Partner C", **valid)
    intermediate_cert = x509.load_pem_x509_certificate(intermediate.cert_pem.bytes())
    return E2ePki(
        server_ca=CaCert(server_ca),
        server_chain=server_chain,
        server_key=server_key,
        ca_a=CaCert(ca_a),
        ca_b=CaCert(ca_b),
        root=CaCert(root),
        intermediate=CaCert(intermediate),
        alice=_write_client(directory, "alice", alice, alice_key),
        expired=_write_client(directory, "expired", expired, expired_key),
        bob=_write_client(directory, "bob", bob, bob_key),
        carol=_write_client(directory, "carol", carol, carol_key, (intermediate_cert,)),
        carol_alone=_write_client(directory, "carol-alone", carol, carol_key),
    )


def crl_revoking(ca: CaCert, revoked: x509.Certificate) -> str:
    """A PEM CRL of `ca`, revoking `revoked` since a minute ago, valid for a day."""
    now = datetime.now(UTC)
    crl = build_crl(
        trustme_issuer(ca.ca),
        this_update=now - timedelta(minutes=1),
        next_update=now + timedelta(days=1),
        revoked=[revoked.serial_number],
    )
    return crl.public_bytes(Encoding.PEM).decode()
