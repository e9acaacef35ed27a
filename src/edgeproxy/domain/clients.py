"""Client records and safe trust changes (docs/management.md "Safe trust changes"): the clients a
node saw, what a version would do to them, and how two versions differ. Pure value types.

A record is public data only: the chain the client presented (certificates, never a key), its
subject, issuer and SANs, when and how often it was seen, and the last outcome.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from edgeproxy.domain.model import Network, Version

ACCEPTED = "accepted"  # the last outcome of a client that verified; else a handshake reason


@dataclass(frozen=True)
class ClientObservation:
    """One client (leaf SHA-256) seen on one edge certificate by one node, since its last batch.

    `handshakes` and `requests` are the counts since the node's previous batch (the store adds
    them up); `first_seen` is kept from the first batch.
    """

    network: Network
    edge_certificate: str
    ca_set: str
    node: str
    fingerprint: str  # SHA-256 of the leaf DER, lower-case hex
    subject: str
    issuer: str
    sans: tuple[str, ...]
    chain_der: tuple[bytes, ...]  # as presented, leaf first
    first_seen: datetime
    last_seen: datetime
    handshakes: int
    requests: int
    last_outcome: str  # ACCEPTED or a handshake reason (unknown_ca, expired, ...)


@dataclass(frozen=True)
class ObservedClient:
    """A client as the fleet saw it on one network's bindings of a CA set: every node's records
    of one leaf, added up."""

    fingerprint: str
    subject: str
    issuer: str
    sans: tuple[str, ...]
    chain_der: tuple[bytes, ...]
    first_seen: datetime
    last_seen: datetime
    handshakes: int
    requests: int
    last_outcome: str
    nodes: tuple[str, ...]
    edge_certificates: tuple[str, ...]


def aggregate(records: Iterable[ClientObservation]) -> list[ObservedClient]:
    """Every node's records of a leaf as one client: counts summed, first and last seen widened,
    the newest record's chain and outcome kept. Newest first."""
    by_print: dict[str, list[ClientObservation]] = {}
    for r in records:
        by_print.setdefault(r.fingerprint, []).append(r)
    clients = []
    for fingerprint, group in by_print.items():
        newest = max(group, key=lambda r: r.last_seen)
        clients.append(
            ObservedClient(
                fingerprint=fingerprint,
                subject=newest.subject,
                issuer=newest.issuer,
                sans=newest.sans,
                chain_der=newest.chain_der,
                first_seen=min(r.first_seen for r in group),
                last_seen=newest.last_seen,
                handshakes=sum(r.handshakes for r in group),
                requests=sum(r.requests for r in group),
                last_outcome=newest.last_outcome,
                nodes=tuple(sorted({r.node for r in group})),
                edge_certificates=tuple(sorted({r.edge_certificate for r in group})),
            )
        )
    clients.sort(key=lambda c: (c.last_seen, c.fingerprint), reverse=True)
    return clients


def describe(leaf_der: bytes) -> tuple[str, str, tuple[str, ...]]:
    """(subject, issuer, SANs) of a client's leaf, as RFC 4514 strings and `type:value` names;
    a leaf that does not parse is described as such, never guessed."""
    try:
        cert = x509.load_der_x509_certificate(leaf_der)
        subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
    except ValueError:
        return "(unparsable certificate)", "", ()
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return subject, issuer, ()
    sans = [f"DNS:{n}" for n in names.get_values_for_type(x509.DNSName)]
    sans += [f"IP:{n}" for n in names.get_values_for_type(x509.IPAddress)]
    sans += [f"URI:{n}" for n in names.get_values_for_type(x509.UniformResourceIdentifier)]
    sans += [f"email:{n}" for n in names.get_values_for_type(x509.RFC822Name)]
    return subject, issuer, tuple(sans)


def chain_to_text(chain_der: Sequence[bytes]) -> str:
    """A chain as one stored column: base64 DER, one certificate per line."""
    return "\n".join(base64.b64encode(der).decode("ascii") for der in chain_der)


def chain_from_text(text: str) -> tuple[bytes, ...]:
    return tuple(base64.b64decode(line) for line in text.split("\n") if line)


@dataclass(frozen=True)
class Affected:
    """A client whose verdict a version changes, with the reason the edge would give."""

    client: ObservedClient
    reason: str | None  # why the version (would_be_refused) or the one in force refuses it

    def as_dict(self) -> dict[str, object]:
        """The API's shape (docs/api.md "Shapes"): also the body of the 409 an
        unacknowledged activation gets, so it is made here, once."""
        c = self.client
        return {
            "fingerprintSha256": c.fingerprint,
            "subject": c.subject,
            "issuer": c.issuer,
            "sans": list(c.sans),
            "reason": self.reason,
            "firstSeen": _time(c.first_seen),
            "lastSeen": _time(c.last_seen),
            "handshakes": c.handshakes,
            "requests": c.requests,
            "lastOutcome": c.last_outcome,
            "nodes": list(c.nodes),
            "edgeCertificates": list(c.edge_certificates),
        }


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Impact:
    """What activating a version on a network would do to the clients seen there."""

    ca_set_id: int
    version: int
    network: Network
    active_version: int | None
    clients_observed: int
    would_be_refused: tuple[Affected, ...]
    newly_accepted: tuple[Affected, ...]


@dataclass(frozen=True)
class CertificateChange:
    fingerprint: str
    subject: str


@dataclass(frozen=True)
class FlagChange:
    name: str  # the API's field name
    before: bool
    after: bool


@dataclass(frozen=True)
class VersionDiff:
    ca_set_id: int
    from_version: int
    to_version: int
    added: tuple[CertificateChange, ...]
    removed: tuple[CertificateChange, ...]
    unchanged: tuple[CertificateChange, ...]
    flags: tuple[FlagChange, ...]


def diff_versions(ca_set_id: int, before: Version, after: Version) -> VersionDiff:
    """Certificates added, removed and kept (by SHA-256 fingerprint), and the flags that changed."""
    old = {c.fingerprint: c.subject for c in before.certificates}
    new = {c.fingerprint: c.subject for c in after.certificates}

    def changes(prints: Iterable[str], subjects: dict[str, str]) -> tuple[CertificateChange, ...]:
        return tuple(CertificateChange(p, subjects[p]) for p in sorted(prints))

    flags = tuple(
        FlagChange(name, a, b)
        for name, a, b in (
            (
                "requireRootCertificate",
                before.require_root_certificate,
                after.require_root_certificate,
            ),
            ("allowInsecureSha1", before.allow_insecure_sha1, after.allow_insecure_sha1),
        )
        if a != b
    )
    return VersionDiff(
        ca_set_id,
        before.version,
        after.version,
        added=changes(new.keys() - old.keys(), new),
        removed=changes(old.keys() - new.keys(), old),
        unchanged=changes(new.keys() & old.keys(), new),
        flags=flags,
    )
