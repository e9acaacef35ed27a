"""CertificateStatus: the one definition of EXPIRING and EXPIRED used by the API and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edgeproxy.domain.model import Certificate, CertificateStatus

NOW = datetime(2026, 1, 1, tzinfo=UTC)
THRESHOLD = timedelta(days=30)


def ending(delta: timedelta) -> Certificate:
    return Certificate("CN=a", "CN=a", NOW - timedelta(days=365), NOW + delta, "ff", "01", "x", "")


def test_expired_is_at_or_past_the_end_date() -> None:
    assert CertificateStatus.EXPIRED.holds(ending(timedelta(0)), NOW, THRESHOLD)
    assert not CertificateStatus.EXPIRED.holds(ending(timedelta(seconds=1)), NOW, THRESHOLD)


def test_expiring_is_still_valid_and_within_the_threshold() -> None:
    expiring = CertificateStatus.EXPIRING
    assert expiring.holds(ending(THRESHOLD), NOW, THRESHOLD)
    assert not expiring.holds(ending(THRESHOLD + timedelta(seconds=1)), NOW, THRESHOLD)
    assert not expiring.holds(ending(timedelta(0)), NOW, THRESHOLD)  # expired, not expiring
