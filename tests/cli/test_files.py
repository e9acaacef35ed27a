"""PEM files: bundles split per certificate so errors point at one; keys refused before sending."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import Cli, Pki, closed_port


def _body_lines(path: str) -> list[str]:
    """The base64 lines of every PEM block in a file (what must never be echoed)."""
    return [line for line in Path(path).read_text().splitlines() if line and "-----" not in line]


def test_validate_accepts_a_bundle_of_ca_certificates(cli: Cli, pki: Pki) -> None:
    result = cli("validate", pki.path("bundle.pem"), pki.path("other.pem"))
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == "valid: 4 certificate(s), 0 error(s), 0 warning(s)"


def test_validate_rejects_a_leaf_naming_its_file_and_pointer(cli: Cli, pki: Pki) -> None:
    result = cli("validate", pki.path("bundle.pem"), pki.path("leaf.pem"))
    assert result.code == 1
    leaf = pki.path("leaf.pem")
    errors = [line for line in result.out.splitlines() if line.startswith("error: ")]
    assert errors
    assert all(line.startswith(f"error: /certificates/3 ({leaf}#0): ") for line in errors)
    assert any("not-a-ca-certificate" in line for line in errors)
    assert result.out.splitlines()[-1].startswith("invalid: 4 certificate(s), ")


def test_validate_json_keeps_the_exit_status(cli: Cli, pki: Pki) -> None:
    result = cli("validate", pki.path("leaf.pem"), "--json")
    assert result.code == 1
    report = json.loads(result.out)
    assert report["valid"] is False
    assert report["errors"][0]["pointer"] == "/certificates/0"


def test_warnings_are_printed_with_their_pointer(cli: Cli, pki: Pki) -> None:
    cli("ca-sets", "create", "partners")
    result = cli("versions", "create", "partners", pki.path("bundle.pem"), pki.path("short.pem"))
    assert result.code == 0, result.err
    warnings = result.out.split("\nwarnings:\n")[1].splitlines()
    assert [w.split(": ")[0] for w in warnings] == ["  /certificates/3"]
    json_result = cli("versions", "clone", "partners", "1", "--json")
    assert json.loads(json_result.out)["validation"]["warnings"][0]["pointer"] == "/certificates/3"


def test_create_rejects_a_bad_certificate_pointing_at_its_file(cli: Cli, pki: Pki) -> None:
    cli("ca-sets", "create", "partners")
    result = cli("versions", "create", "partners", pki.path("bundle.pem"), pki.path("leaf.pem"))
    assert result.code == 1
    lines = result.err.splitlines()
    assert lines[0].startswith("error: 400 certificate-validation-failure-create: ")
    assert lines[1].startswith(f"  /certificates/3 ({pki.path('leaf.pem')}#0): ")
    assert json.loads(cli("versions", "list", "partners", "--json").out)["versions"] == []


def test_a_private_key_is_refused_locally_and_never_shown(cli: Cli, pki: Pki) -> None:
    # Pointed at a closed port: any request at all would exit 3 instead of 2.
    nowhere = ("--admin-url", f"http://127.0.0.1:{closed_port()}")
    key_file = pki.path("with-key.pem")
    for argv in (
        ("versions", "create", "partners", key_file),
        ("versions", "update", "partners", "1", pki.path("other.pem"), key_file),
        ("validate", pki.path("other.pem"), key_file),
        ("validate", pki.path("key-only.txt")),
    ):
        result = cli(*argv, *nowhere)
        assert result.code == 2
        assert f"{argv[-1]} holds a private key" in result.err
        assert "Nothing was sent" in result.err
        secret = _body_lines(argv[-1])[-3:]  # the key's lines come last in both files
        assert not any(line in result.text for line in secret)


def test_the_same_certificate_without_the_key_is_accepted(cli: Cli, pki: Pki) -> None:
    cli("ca-sets", "create", "partners")
    clean = Path(pki.path("with-key.pem")).read_text().split("-----BEGIN EC PRIVATE KEY")[0]
    Path(pki.path("clean.pem")).write_text(clean)
    assert cli("versions", "create", "partners", pki.path("clean.pem")).code == 0


def test_files_that_are_not_pem_are_refused_locally(cli: Cli, pki: Pki, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text(
        Path(pki.path("other.pem")).read_text().replace("-----END CERTIFICATE-----", "")
    )
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    binary = tmp_path / "cert.der"
    binary.write_bytes(b"\x30\x82\xff\xfe")
    expected = {
        str(broken): "PEM block 0 has no END line",
        str(empty): "no -----BEGIN CERTIFICATE----- block found",
        str(binary): "is not PEM text",
        str(tmp_path / "missing.pem"): "cannot read",
    }
    for path, message in expected.items():
        result = cli("validate", path)
        assert result.code == 2
        assert message in result.err


def test_other_pem_blocks_are_sent_for_the_api_to_name(cli: Cli, pki: Pki, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.pem"
    body = "\n".join(_body_lines(pki.path("other.pem")))
    mixed.write_text(
        Path(pki.path("other.pem")).read_text()
        + f"-----BEGIN X509 CRL-----\n{body}\n-----END X509 CRL-----\n"
    )
    result = cli("validate", str(mixed))
    assert result.code == 1
    assert f"error: /certificates/1 ({mixed}#1): unsupported-pem-block: " in result.out


def test_require_root_certificate_accepts_a_chain_to_its_root(cli: Cli, pki: Pki) -> None:
    assert cli("validate", pki.path("bundle.pem"), "--require-root-certificate").code == 0
    assert cli("validate", pki.path("intermediate.pem")).code == 0  # partial chain: fine


def test_require_root_certificate_rejects_an_intermediate_alone(cli: Cli, pki: Pki) -> None:
    result = cli("validate", pki.path("intermediate.pem"), "--require-root-certificate")
    assert result.code == 1
    assert f"error: /certificates/0 ({pki.path('intermediate.pem')}#0): " in result.out


def test_version_options_reach_the_api(cli: Cli, pki: Pki) -> None:
    cli("ca-sets", "create", "partners")
    argv = ["versions", "create", "partners", pki.path("bundle.pem"), "--json"]
    flags = ["--allow-insecure-sha1", "--require-root-certificate", "--description", "Q3 roots"]
    made = json.loads(cli(*argv, *flags, "--cert-description", "from the partner portal").out)
    assert (made["allowInsecureSha1"], made["requireRootCertificate"]) == (True, True)
    assert made["description"] == "Q3 roots"
    assert {c["description"] for c in made["certificates"]} == {"from the partner portal"}
    plain = cli("versions", "create", "partners", pki.path("other.pem"), "--json")
    assert json.loads(plain.out)["allowInsecureSha1"] is False
