"""How current the CRLs in force are: for `/status`, `edgeproxy_crl_expired` and one log line.

The handshake enforces CRLs itself (OpenSSL, tls/contexts.py); a CRL ages without any store change,
so its freshness is watched here, on a timer, from the trust state in force.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cryptography import x509

log = logging.getLogger(__name__)
_MEMO: Final = 256  # parsed CRLs remembered by their DER


@dataclass(frozen=True, slots=True)
class CrlInfo:
    issuer: str  # RFC 4514
    this_update: datetime
    next_update: datetime | None
    revoked: int  # number of entries

    def expired(self, now: datetime) -> bool:
        return self.next_update is not None and self.next_update < now

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "thisUpdate": self.this_update.isoformat(),
            "nextUpdate": None if self.next_update is None else self.next_update.isoformat(),
            "revokedCertificates": self.revoked,
            "expired": self.expired(now),
        }


def describe(der: bytes) -> CrlInfo:
    crl = x509.load_der_x509_crl(der)
    return CrlInfo(crl.issuer.rfc4514_string(), crl.last_update_utc, crl.next_update_utc, len(crl))


class CrlWatch:
    """Remembers parsed CRLs and which ones it already reported as expired."""

    def __init__(self) -> None:
        self._parsed: dict[bytes, CrlInfo] = {}
        self._reported: set[tuple[str, str, datetime | None]] = set()

    def info(self, crls: Mapping[str, Sequence[bytes]]) -> dict[str, list[CrlInfo]]:
        """CA set name → its CRLs in force, described."""
        out: dict[str, list[CrlInfo]] = {}
        for ca_set, ders in crls.items():
            out[ca_set] = [self._describe(der) for der in ders]
        return out

    def check(self, crls: Mapping[str, Sequence[bytes]], now: datetime) -> dict[str, int]:
        """CA set → how many of its CRLs are past nextUpdate; logs each newly expired one once."""
        expired: dict[str, int] = {}
        current: set[tuple[str, str, datetime | None]] = set()
        for ca_set, infos in self.info(crls).items():
            stale = [i for i in infos if i.expired(now)]
            expired[ca_set] = len(stale)
            for info in stale:
                key = (ca_set, info.issuer, info.next_update)
                current.add(key)
                if key not in self._reported:
                    log.warning(
                        "CRL past its nextUpdate: the binding's ocsp.failure_mode applies",
                        extra={
                            "ca_set": ca_set,
                            "crl_issuer": info.issuer,
                            "next_update": info.next_update.isoformat()
                            if info.next_update
                            else None,
                        },
                    )
        self._reported = current
        return expired

    def _describe(self, der: bytes) -> CrlInfo:
        found = self._parsed.get(der)
        if found is None:
            if len(self._parsed) >= _MEMO:
                self._parsed.clear()
            found = self._parsed[der] = describe(der)
        return found
