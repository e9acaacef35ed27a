"""What the matchers read of a verified client certificate, read once per connection.

Only a leaf that verified has a `Peer`: a certificate that failed (or was never sent) says nothing
about who the client is, so it matches no matcher, not even `anyVerified` (fail closed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


@dataclass(frozen=True, slots=True)
class Peer:
    """The verified leaf's identity facts. `subject`: dotted OID → its values, in DN order;
    `issuer`: the issuer DN in RFC 4514 form; DNS names and e-mail addresses lower-case."""

    subject: Mapping[str, tuple[str, ...]]
    issuer: str
    dns: tuple[str, ...]
    uris: tuple[str, ...]
    emails: tuple[str, ...]
    fingerprint_sha256: bytes  # of the leaf's DER
    spki_sha256: bytes  # of its DER SubjectPublicKeyInfo (a key pin, RFC 7469)


def peer_from_leaf(leaf: x509.Certificate, leaf_der: bytes) -> Peer:
    subject: dict[str, list[str]] = {}
    for attribute in leaf.subject:
        value = attribute.value
        text = value if isinstance(value, str) else value.hex()
        subject.setdefault(attribute.oid.dotted_string, []).append(text)
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        dns: list[str] = []
        uris: list[str] = []
        emails: list[str] = []
    else:
        dns = san.get_values_for_type(x509.DNSName)
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        emails = san.get_values_for_type(x509.RFC822Name)
    spki = leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return Peer(
        subject=MappingProxyType({oid: tuple(values) for oid, values in subject.items()}),
        issuer=leaf.issuer.rfc4514_string(),
        dns=tuple(d.lower() for d in dns),
        uris=tuple(uris),
        emails=tuple(e.lower() for e in emails),
        fingerprint_sha256=hashlib.sha256(leaf_der).digest(),
        spki_sha256=hashlib.sha256(spki).digest(),
    )
