"""Blocked client certificates (docs/management.md "Blocked certificates"): single certificates a
CA set refuses at once, without a CRL, each with a reason and an optional expiry.

A block names a certificate by its SHA-256 fingerprint, or by issuer DN and serial number (what a
leaked certificate's owner can read off it even when the file is gone). Like CRLs they are not
versioned: a block applies to every version of its set, on every network, from the moment the
edge nodes apply it, until it is deleted or expires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from cryptography import x509

from edgeproxy.domain import rules
from edgeproxy.domain.errors import FieldError, ValidationError
from edgeproxy.domain.model import BlockedCertificate

MAX_BLOCKED_PER_SET: Final = 10_000
MAX_REASON: Final = rules.MAX_DESCRIPTION
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SERIAL = re.compile(r"[0-9a-f]{1,40}")  # RFC 5280 §4.1.2.2: at most 20 octets


@dataclass(frozen=True)
class BlockRequest:
    """A block as asked for, normalised: either `fingerprint`, or `issuer` and `serial_number`."""

    fingerprint: str | None
    issuer: str | None
    serial_number: str | None
    reason: str
    expires_at: datetime | None


def _invalid(type_: str, detail: str, pointer: str) -> ValidationError:
    return ValidationError(type_, detail, (FieldError(type_, detail, pointer),))


def normal_fingerprint(value: str) -> str | None:
    """64 hex digits, colons allowed, any case → lower-case hex; None when it is not one."""
    plain = value.replace(":", "").lower()
    return plain if _HEX64.fullmatch(plain) else None


def normal_serial(value: str) -> str | None:
    """A serial number as hex (colons and a 0x prefix allowed, as `openssl x509 -serial` and
    `-text` print it) → lower-case hex without leading zeros, as the access log writes it."""
    plain = value.replace(":", "").lower().removeprefix("0x")
    if not _SERIAL.fullmatch(plain):
        return None
    return format(int(plain, 16), "x")


def normal_issuer(value: str) -> str | None:
    """An RFC 4514 DN as cryptography writes it (the form the edge compares), or None."""
    try:
        name = x509.Name.from_rfc4514_string(value)
    except ValueError:
        return None
    return name.rfc4514_string() if len(name) else None


def block_request(
    *,
    fingerprint: str | None,
    issuer: str | None,
    serial_number: str | None,
    reason: str,
    expires_at: datetime | None,
    now: datetime,
) -> BlockRequest:
    """Validate and normalise a block; ValidationError (422) names the field at fault."""
    normal_print = normal_issuer_dn = normal_serial_number = None
    if fingerprint is not None:
        if issuer is not None or serial_number is not None:
            raise _invalid(
                "ambiguous-block",
                "name the certificate by fingerprintSha256 or by issuer and serialNumber, not both",
                "/fingerprintSha256",
            )
        normal_print = normal_fingerprint(fingerprint)
        if normal_print is None:
            raise _invalid(
                "invalid-fingerprint",
                "fingerprintSha256 must be 64 hex digits (colons allowed)",
                "/fingerprintSha256",
            )
    elif issuer is None or serial_number is None:
        raise _invalid(
            "incomplete-block",
            "name the certificate by fingerprintSha256, or by issuer and serialNumber",
            "/serialNumber" if issuer is not None else "/issuer",
        )
    else:
        normal_issuer_dn = normal_issuer(issuer)
        if normal_issuer_dn is None:
            raise _invalid(
                "invalid-issuer",
                'issuer must be an RFC 4514 distinguished name, e.g. "CN=Partner CA,O=Example"',
                "/issuer",
            )
        normal_serial_number = normal_serial(serial_number)
        if normal_serial_number is None:
            raise _invalid(
                "invalid-serial-number",
                "serialNumber must be the certificate's serial in hex (at most 20 octets; "
                "colons and 0x allowed)",
                "/serialNumber",
            )
    text = reason.strip()
    if not text:
        raise _invalid("invalid-reason", "reason must not be empty", "/reason")
    if len(text) > MAX_REASON:
        raise _invalid(
            "invalid-reason", f"reason must be at most {MAX_REASON} characters", "/reason"
        )
    if expires_at is not None and expires_at <= now:
        raise _invalid("invalid-expiry", "expiresAt must be in the future", "/expiresAt")
    return BlockRequest(normal_print, normal_issuer_dn, normal_serial_number, text, expires_at)


def same_certificate(block: BlockedCertificate, request: BlockRequest) -> bool:
    return (block.fingerprint, block.issuer, block.serial_number) == (
        request.fingerprint,
        request.issuer,
        request.serial_number,
    )


def in_force(block: BlockedCertificate, now: datetime) -> bool:
    return block.expires_at is None or block.expires_at > now
