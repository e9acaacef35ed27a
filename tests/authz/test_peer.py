"""The identity facts read once per connection from a verified leaf."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from support.pki import Issued, Pki

from .conftest import make_leaf, peer_of


def test_facts_of_a_leaf(pki: Pki, issuer: Issued) -> None:
    leaf = make_leaf(
        pki,
        issuer,
        subject=[
            (NameOID.ORGANIZATION_NAME, "Acme"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "payments"),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, "ops"),
            (NameOID.COMMON_NAME, "billing"),
        ],
        dns=["Billing.Partner.Example"],
        uris=["spiffe://example.org/ns/prod/sa/billing"],
        emails=["Ops@Partner.Example"],
    )
    peer = peer_of(leaf)
    assert peer.subject["2.5.4.3"] == ("billing",)
    assert peer.subject["2.5.4.11"] == ("payments", "ops")
    assert peer.issuer == "CN=Partner CA"
    assert peer.dns == ("billing.partner.example",)
    assert peer.uris == ("spiffe://example.org/ns/prod/sa/billing",)
    assert peer.emails == ("ops@partner.example",)
    assert peer.fingerprint_sha256 == hashlib.sha256(leaf.der).digest()
    spki = leaf.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert peer.spki_sha256 == hashlib.sha256(spki).digest()


def test_a_leaf_without_alternative_names(pki: Pki, issuer: Issued) -> None:
    peer = peer_of(make_leaf(pki, issuer))
    assert (peer.dns, peer.uris, peer.emails) == ((), (), ())
