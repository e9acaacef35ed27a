"""`edgeproxy block|unblock|blocks` against a real admin API: accepts tests have rejects twins."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .conftest import Cli, Pki


@pytest.fixture
def partners(cli: Cli, pki: Pki) -> str:
    assert cli("ca-sets", "create", "partners").code == 0
    assert cli("versions", "create", "partners", pki.path("bundle.pem")).code == 0
    return "partners"


def leaf_of(pki: Pki) -> x509.Certificate:
    text = Path(pki.path("leaf.pem")).read_bytes().split(b"\n", 1)[1]
    return x509.load_pem_x509_certificate(text)


def test_block_a_certificate_file_list_and_unblock(cli: Cli, pki: Pki, partners: str) -> None:
    leaf = leaf_of(pki)
    added = cli("block", partners, "--cert", pki.path("leaf.pem"), "--reason", "leaked key")
    assert added.code == 0, added.err
    assert (
        f"fingerprintSha256: {hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest()}"
        in added.out
    )
    assert "reason:" in added.out
    table = cli("blocks", partners)
    header, row = table.out.splitlines()
    assert header.split()[:3] == ["ID", "SHA256", "ISSUER"]
    assert row.split()[0] == "1"
    (entry,) = json.loads(cli("blocks", partners, "--json").out)["blockedCertificates"]
    assert (entry["reason"], entry["expired"]) == ("leaked key", False)
    unblocked = cli("unblock", partners, "1")
    assert (unblocked.code, unblocked.out.strip()) == (0, "unblocked 1 of CA set partners")
    assert cli("blocks", partners).out.strip() == "no blocked certificates"
    history = json.loads(cli("ca-sets", "activities", partners, "--json").out)["activities"]
    assert [a["type"] for a in history][:2] == ["UNBLOCK_CERTIFICATE", "BLOCK_CERTIFICATE"]


def test_block_by_issuer_and_serial(cli: Cli, pki: Pki, partners: str) -> None:
    leaf = leaf_of(pki)
    serial = f"{leaf.serial_number:X}"
    added = cli(
        "block", partners, "--issuer", leaf.issuer.rfc4514_string(), "--serial", serial,
        "--reason", "lost", "--expires", "2099-01-01T00:00:00Z", "--json",
    )  # fmt: skip
    assert added.code == 0, added.err
    body = json.loads(added.out)
    assert (body["serialNumber"], body["expiresAt"]) == (serial.lower(), "2099-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--reason", "x"), "name the certificate with one of"),
        (("--fingerprint", "ab" * 32, "--issuer", "CN=a", "--reason", "x"), "name the certificate"),
        (("--issuer", "CN=a", "--reason", "x"), "--issuer and --serial go together"),
    ],
)
def test_the_certificate_must_be_named_once(
    cli: Cli, partners: str, argv: tuple[str, ...], message: str
) -> None:
    result = cli("block", partners, *argv)
    assert result.code == 2
    assert message in result.err
    assert cli("blocks", partners).out.strip() == "no blocked certificates"


def test_a_bad_fingerprint_is_the_apis_refusal(cli: Cli, partners: str) -> None:
    result = cli("block", partners, "--fingerprint", "abc", "--reason", "x")
    assert result.code != 0
    assert "invalid-fingerprint" in result.err or "64 hex digits" in result.err
