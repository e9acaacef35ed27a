"""The rules of a block (domain/blocks.py): how certificates are named, and when a block holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edgeproxy.domain.blocks import in_force, normal_fingerprint, normal_issuer, normal_serial
from edgeproxy.domain.model import BlockedCertificate

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("00:1A:2B", "1a2b"), ("0x1a2b", "1a2b"), ("0", "0"), ("ff" * 20, "ff" * 20)],
)
def test_serials_read_as_openssl_prints_them(value: str, expected: str) -> None:
    assert normal_serial(value) == expected


@pytest.mark.parametrize("value", ["", "xyz", "1 2", "ff" * 21, "-1"])
def test_serials_refused(value: str) -> None:
    assert normal_serial(value) is None


def test_fingerprints_and_issuers() -> None:
    assert normal_fingerprint(":".join(["AB"] * 32)) == "ab" * 32
    assert normal_fingerprint("ab" * 31) is None
    assert normal_issuer("CN=Partner CA,O=Example") == "CN=Partner CA,O=Example"
    assert normal_issuer("2.5.4.3=Partner CA") == "CN=Partner CA"
    assert normal_issuer("not a DN") is None
    assert normal_issuer("") is None


def test_a_block_holds_until_it_expires() -> None:
    def block(expires: datetime | None) -> BlockedCertificate:
        return BlockedCertificate(1, 1, "ab" * 32, None, None, "r", expires, "ops", NOW)

    assert in_force(block(None), NOW)
    assert in_force(block(NOW + timedelta(seconds=1)), NOW)
    assert not in_force(block(NOW), NOW)
