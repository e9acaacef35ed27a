"""What the data plane knows of one certificate's revocation status, and how answers are keyed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

CacheKey = tuple[bytes, int]  # (SHA-1 of the issuer's public key, certificate serial number)


class Status(StrEnum):
    """A certificate's revocation status as the data plane reports it (access-log `revocation`)."""

    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # the responder does not know the certificate (RFC 6960 §2.2)
    UNAVAILABLE = "unavailable"  # no trusted answer: unreachable, bad signature, stale, ...
    NOT_CHECKED = "not_checked"  # OCSP off for the binding, or the certificate failed anyway


@dataclass(frozen=True, slots=True)
class Answer:
    status: Status
    next_update: datetime | None = None  # UTC; None when absent or no answer
    revoked_at: datetime | None = None  # UTC revocationTime of a "revoked" answer


UNAVAILABLE: Final = Answer(Status.UNAVAILABLE)
