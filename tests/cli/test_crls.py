"""`edgeproxy crls list|add|delete` against a real admin API: accepts tests have rejects twins."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from support.pki import build_crl, trustme_issuer

from .conftest import VIEWER_TOKEN, AdminServer, Cli, Pki, closed_port


def crl_of(
    ca: trustme.CA, *, next_update: timedelta = timedelta(days=7)
) -> x509.CertificateRevocationList:
    """A CRL signed by a trustme CA, revoking two serials."""
    now = datetime.now(UTC)
    return build_crl(
        trustme_issuer(ca),
        this_update=now - timedelta(hours=1),
        next_update=now + next_update,
        number=3,
        revoked=(5, 6),
        revoked_at=now,
    )


def write(pki: Pki, name: str, *parts: bytes) -> str:
    path = Path(pki.path(name))
    path.write_bytes(b"".join(parts))
    return str(path)


def pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def partners(cli: Cli, pki: Pki) -> str:
    """A set whose version holds the PKI's root (and intermediate and another root)."""
    assert cli("ca-sets", "create", "partners").code == 0
    assert cli("versions", "create", "partners", pki.path("bundle.pem")).code == 0
    return "partners"


def test_add_list_and_delete_a_crl(cli: Cli, pki: Pki, partners: str) -> None:
    path = write(pki, "root.crl.pem", b"# from the CA\n", pem(crl_of(pki.root)))
    added = cli("crls", "add", partners, path, "--description", "weekly")
    assert added.code == 0, added.err
    assert "crlNumber:" in added.out
    assert "effective:" in added.out
    assert "weekly" in added.out
    table = cli("crls", "list", partners)
    assert table.code == 0
    header, row = table.out.splitlines()
    assert header.split()[:3] == ["ID", "ISSUER", "THIS_UPDATE"]
    assert row.split()[0] == "1"
    (crl,) = json.loads(cli("crls", "list", partners, "--json").out)["crls"]
    assert (crl["crlNumber"], crl["revokedCount"], crl["effective"]) == ("3", 2, True)
    deleted = cli("crls", "delete", partners, "1")
    assert (deleted.code, deleted.out.strip()) == (0, "deleted CRL 1 of CA set partners")
    assert cli("crls", "list", partners).out.strip() == "no CRLs"
    history = json.loads(cli("ca-sets", "activities", partners, "--json").out)["activities"]
    assert [a["type"] for a in history][:2] == ["DELETE_CRL", "ADD_CRL"]


def test_add_refuses_a_crl_of_a_ca_outside_the_set(cli: Cli, pki: Pki, partners: str) -> None:
    path = write(pki, "stranger.crl.pem", pem(crl_of(trustme.CA())))
    result = cli("crls", "add", partners, path)
    assert result.code == 1
    assert result.err.startswith("error: 400 crl-validation-failure: ")
    assert json.loads(cli("crls", "list", partners, "--json").out) == {"crls": []}


def test_a_private_key_is_refused_locally_and_never_shown(
    cli: Cli, pki: Pki, partners: str
) -> None:
    key = pki.root.private_key_pem.bytes()
    path = write(pki, "with-key.crl.pem", pem(crl_of(pki.root)), key)
    # Pointed at a closed port: any request at all would exit 3 instead of 2.
    result = cli("crls", "add", partners, path, "--admin-url", f"http://127.0.0.1:{closed_port()}")
    assert result.code == 2
    assert f"{path} holds a private key" in result.err
    assert "Nothing was sent" in result.err
    secret = [line for line in key.decode().splitlines() if line and "-----" not in line]
    assert not any(line in result.text for line in secret)


def test_a_der_file_is_refused_with_a_conversion_hint(cli: Cli, pki: Pki, partners: str) -> None:
    path = write(pki, "root.crl", crl_of(pki.root).public_bytes(serialization.Encoding.DER))
    result = cli("crls", "add", partners, path)
    assert result.code == 2
    assert "openssl crl -inform der" in result.err


def test_a_viewer_lists_but_cannot_add_or_delete(cli: Cli, pki: Pki, partners: str) -> None:
    path = write(pki, "root.crl.pem", pem(crl_of(pki.root)))
    assert cli("crls", "add", partners, path).code == 0
    assert cli("crls", "list", partners, "--token", VIEWER_TOKEN).code == 0
    for argv in (("add", partners, path), ("delete", partners, "1")):
        refused = cli("crls", *argv, "--token", VIEWER_TOKEN)
        assert refused.code == 1
        assert refused.err.startswith("error: 403 insufficient-role: ")


def test_delete_of_an_unknown_crl_fails(cli: Cli, partners: str) -> None:
    result = cli("crls", "delete", partners, "42")
    assert result.code == 1
    assert result.err.startswith("error: 404 crl-not-found: ")


def test_the_set_shows_a_crl_in_effect_that_expired(
    cli: Cli, pki: Pki, partners: str, server: AdminServer
) -> None:
    path = write(pki, "root.crl.pem", pem(crl_of(pki.root, next_update=timedelta(days=1))))
    assert cli("crls", "add", partners, path).code == 0
    assert "warnings:" not in cli("ca-sets", "show", partners).out
    server.clock.offset = timedelta(days=2)
    shown = cli("ca-sets", "show", partners).out
    assert "\nwarnings:\n  crl-expired: CRL 1 of " in shown
    (crl,) = json.loads(cli("crls", "list", partners, "--json").out)["crls"]
    assert (crl["effective"], crl["expired"]) == (True, True)
