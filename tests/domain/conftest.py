"""Fixtures of the certificate-rule tests: the shared test PKI, dated from one fixed instant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from support.pki import Pki

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="session")
def pki() -> Pki:
    return Pki(NOW)
