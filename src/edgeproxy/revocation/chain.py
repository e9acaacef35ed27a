"""Which certificates of a verified client chain OCSP checks, each with its cache key and issuer.

Found once per leaf fingerprint (the caller memoizes `Notes`), from the chain the client sent and
the anchors of the version the handshake verified against:
* leaf only (the default): the leaf and the certificate that signed it, among those the client
  sent, then the anchors (same-DN CAs are told apart by key);
* `ocsp.check_intermediates`: then each issuer in turn, up the chain, until the issuer is a trust
  anchor of that version. Anchors are looked up first, as OpenSSL does (X509_V_FLAG_TRUSTED_FIRST,
  its default since 1.1.0), so the walk stops where the verified chain stops; a trust anchor is
  trusted by definition and never checked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding

from edgeproxy.revocation.answer import CacheKey

AnchorIndex = dict[bytes, list[x509.Certificate]]  # anchors by subject (DER)


@dataclass(frozen=True, slots=True)
class Note:
    """One certificate's OCSP cache key (issuer key hash, serial), itself and its issuer (DER)."""

    key: CacheKey
    cert_der: bytes
    issuer_der: bytes


@dataclass(frozen=True, slots=True)
class Notes:
    """The certificates to check for one leaf, leaf first. With intermediates, the chain sent and
    the (CA set, version) they were found for: another chain or version is walked again."""

    notes: tuple[Note, ...]
    sent: tuple[bytes, ...] = ()
    trust: tuple[str | None, int | None] = (None, None)


def _signed_by(
    cert: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        return candidate
    return None


def leaf_note(
    chain: Sequence[bytes], anchors: AnchorIndex, key_hash: Callable[[bytes], bytes]
) -> Note | None:
    """The leaf's note: its issuer among the certificates sent, then the anchors."""
    try:
        leaf = x509.load_der_x509_certificate(chain[0])
        candidates = [x509.load_der_x509_certificate(der) for der in chain[1:]]
        candidates += anchors.get(leaf.issuer.public_bytes(), [])
    except (ValueError, IndexError):
        return None
    issuer = _signed_by(leaf, candidates)
    if issuer is None:
        return None
    der = issuer.public_bytes(Encoding.DER)
    return Note((key_hash(der), leaf.serial_number), chain[0], der)


def chain_notes(
    chain: Sequence[bytes], anchors: AnchorIndex, key_hash: Callable[[bytes], bytes]
) -> tuple[Note, ...] | None:
    """The leaf and every intermediate below the trust anchor, each with its issuer; None when
    a link is missing (the handshake verified, so only a chain that is not the verified one)."""
    try:
        cert = x509.load_der_x509_certificate(chain[0])
        sent = [x509.load_der_x509_certificate(der) for der in chain[1:]]
    except (ValueError, IndexError):
        return None
    cert_der, notes = chain[0], []
    for _ in range(len(chain)):  # each step uses up one certificate sent: no loop
        anchor = _signed_by(cert, anchors.get(cert.issuer.public_bytes(), []))
        issuer = anchor or _signed_by(cert, sent)
        if issuer is None:
            return None
        issuer_der = issuer.public_bytes(Encoding.DER)
        notes.append(Note((key_hash(issuer_der), cert.serial_number), cert_der, issuer_der))
        if anchor is not None:
            return tuple(notes)
        sent.remove(issuer)
        cert, cert_der = issuer, issuer_der
    return None
