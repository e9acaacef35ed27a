"""Leaves with known identities, for the authorization engine's tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from edgeproxy.authz.peer import Peer, peer_from_leaf
from support.pki import Issued, Pki, leaf_certificate

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="session")
def pki() -> Pki:
    return Pki(NOW)


@pytest.fixture(scope="session")
def issuer(pki: Pki) -> Issued:
    return pki.ca("Partner CA")


def make_leaf(
    pki: Pki,
    issuer: Issued,
    *,
    subject: Sequence[tuple[x509.ObjectIdentifier, str]] = ((NameOID.COMMON_NAME, "client"),),
    dns: Sequence[str] = (),
    uris: Sequence[str] = (),
    emails: Sequence[str] = (),
    key: str = "p256",
    fresh_key: bool = False,
) -> Issued:
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    names += [x509.RFC822Name(e) for e in emails]
    own = pki.key(key, fresh=fresh_key)
    cert = leaf_certificate(
        x509.Name([x509.NameAttribute(oid, value) for oid, value in subject]),
        own,
        issuer,
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=30),
        extensions=[x509.SubjectAlternativeName(names)] if names else [],
    )
    return Issued(cert, own)


def peer_of(leaf: Issued) -> Peer:
    return peer_from_leaf(leaf.cert, leaf.der)
