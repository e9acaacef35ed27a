"""Certificate rules of a version (docs/management.md): every accepts test has a rejects twin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from edgeproxy.domain.certificates import (
    MAX_CERTIFICATES_PER_VERSION,
    CertificateInput,
    Check,
    ValidationReport,
    ca_list_size,
    certificate_record,
    validate_certificates,
)
from edgeproxy.domain.errors import FieldError
from edgeproxy.domain.pem import BlockError, certificate_blocks
from support.pki import (
    MD5_WITH_RSA,
    SHA1_WITH_ECDSA,
    SHA1_WITH_RSA,
    Issued,
    Key,
    Pki,
    ca_key_usage,
    make_v1,
    resign_weak,
)

from .conftest import NOW


def run(
    *pems: str,
    check: Check = Check.CREATE,
    sha1: bool = False,
    require_root: bool = False,
    description: str | None = None,
) -> ValidationReport:
    return validate_certificates(
        [CertificateInput(p, description) for p in pems],
        allow_insecure_sha1=sha1,
        require_root_certificate=require_root,
        now=NOW,
        check=check,
    )


def types(problems: tuple[FieldError, ...]) -> list[tuple[str, str]]:
    return [(p.type, p.pointer) for p in problems]


@pytest.fixture(scope="module")
def root(pki: Pki) -> Issued:
    return pki.ca("Root RSA", key="rsa2048")


@pytest.fixture(scope="module")
def intermediate(pki: Pki, root: Issued) -> Issued:
    return pki.ca("Intermediate EC", key="p256", issuer=root)


def test_rsa_root_and_ec_intermediate_are_accepted(root: Issued, intermediate: Issued) -> None:
    report = run(root.pem, intermediate.pem, require_root=True, description="corp")
    assert report.ok
    assert report.errors == ()
    assert report.warnings == ()
    r, i = report.certificates
    assert (r.subject, r.issuer, i.subject, i.issuer) == ("CN=Root RSA",) * 2 + (
        "CN=Intermediate EC",
        "CN=Root RSA",
    )
    assert r.fingerprint == root.cert.fingerprint(hashes.SHA256()).hex()
    assert r.serial_number == format(root.cert.serial_number, "x")
    assert r.signature_algorithm == i.signature_algorithm == "SHA256_WITH_RSA"
    assert r.start_date.utcoffset() == timedelta(0)
    assert r.end_date > NOW
    assert r.certificate_pem == root.pem
    assert i.description == "corp"


def test_leaf_and_missing_basic_constraints_are_rejected(pki: Pki, root: Issued) -> None:
    leaf = pki.ca("leaf.example", issuer=root, ca=False, key_usage=None)
    bare = pki.ca("No BC", ca=None)
    report = run(leaf.pem, bare.pem)
    assert types(report.errors) == [
        ("not-a-ca-certificate", "/certificates/0"),
        ("not-a-ca-certificate", "/certificates/1"),
    ]
    assert "CA=FALSE" in report.errors[0].detail
    assert "missing" in report.errors[1].detail


def test_ed25519_ca_is_accepted(pki: Pki) -> None:
    report = run(pki.ca("Ed CA", key="ed25519").pem)
    assert report.ok
    assert report.certificates[0].signature_algorithm == "ED25519"


@pytest.mark.parametrize("kind", ["secp256k1", "dsa"])
def test_other_key_types_are_rejected(pki: Pki, root: Issued, kind: str) -> None:
    report = run(pki.ca(f"CA {kind}", key=kind, issuer=root).pem)
    assert types(report.errors) == [("unsupported-key", "/certificates/0")]


def test_rsa_pss_with_sha256_is_accepted(pki: Pki) -> None:
    report = run(pki.ca("PSS CA", key="rsa2048", pss=True).pem)
    assert report.ok
    assert report.certificates[0].signature_algorithm == "RSASSA_PSS"


def test_rsa_1024_is_rejected(pki: Pki) -> None:
    report = run(pki.ca("Small RSA", key="rsa1024").pem)
    assert types(report.errors) == [("weak-key", "/certificates/0")]
    assert "1024" in report.errors[0].detail


def test_bundle_in_one_entry_is_expanded(root: Issued, intermediate: Issued) -> None:
    text = f"Certificate:\n    Data: ...\n{root.pem}\n\nsubject=CN=x\n{intermediate.pem}"
    report = run(text, description="bundle")
    assert report.ok
    assert len(report.certificates) == 2
    assert {c.description for c in report.certificates} == {"bundle"}


def test_bad_block_in_bundle_is_named_and_the_rest_still_checked(
    pki: Pki, root: Issued, intermediate: Issued
) -> None:
    bad = "-----BEGIN CERTIFICATE-----\nbm90IGRlcg==\n-----END CERTIFICATE-----\n"
    leaf = pki.ca("leaf", issuer=root, ca=False)
    report = run(root.pem, intermediate.pem + bad + leaf.pem)
    assert types(report.errors) == [
        ("malformed-certificate", "/certificates/1"),
        ("not-a-ca-certificate", "/certificates/1"),
    ]
    assert "block 1" in report.errors[0].detail
    assert "block 2" in report.errors[1].detail
    assert len(report.certificates) == 3


@pytest.mark.parametrize(
    ("shift", "kind"), [(timedelta(days=-400), "expired"), (timedelta(days=400), "not-yet-valid")]
)
@pytest.mark.parametrize("check", list(Check))
def test_outside_validity_is_an_error_except_on_clone(
    pki: Pki, shift: timedelta, kind: str, check: Check
) -> None:
    cert = pki.ca("Dated", valid=(shift, shift + timedelta(days=1)))
    report = run(cert.pem, check=check)
    problems = report.warnings if check is Check.CLONE else report.errors
    assert types(problems) == [(kind, "/certificates/0")]
    assert report.ok is (check is Check.CLONE)


@pytest.mark.parametrize(("days", "warned"), [(30, True), (31, False)])
def test_expiring_soon_warns(pki: Pki, days: int, warned: bool) -> None:
    report = run(pki.ca("Soon", valid=(-timedelta(days=1), timedelta(days=days))).pem)
    assert report.ok
    assert types(report.warnings) == ([("expiring-soon", "/certificates/0")] if warned else [])


@pytest.mark.parametrize(
    ("key", "algorithm"), [("rsa2048", SHA1_WITH_RSA), ("p256", SHA1_WITH_ECDSA)]
)
def test_sha1_is_an_error_unless_allowed(pki: Pki, key: str, algorithm: bytes) -> None:
    base = pki.ca("SHA1 CA", key=key)
    sha1 = resign_weak(base, algorithm)
    refused, allowed = run(sha1.pem), run(sha1.pem, sha1=True)
    assert types(refused.errors) == [("insecure-signature-sha1", "/certificates/0")]
    assert allowed.ok
    assert types(allowed.warnings) == [("insecure-signature-sha1", "/certificates/0")]
    assert allowed.certificates[0].signature_algorithm.startswith("SHA1_WITH_")


def test_md5_is_rejected_even_when_sha1_is_allowed(pki: Pki) -> None:
    base = pki.ca("MD5 CA", key="rsa2048")
    assert run(base.pem).ok
    md5 = resign_weak(base, MD5_WITH_RSA)
    report = run(md5.pem, sha1=True)
    assert types(report.errors) == [("insecure-signature-algorithm", "/certificates/0")]
    assert report.certificates[0].signature_algorithm == "MD5_WITH_RSA"


@pytest.mark.parametrize(("cert_sign", "ok"), [(True, True), (False, False)])
def test_key_usage_must_include_key_cert_sign(pki: Pki, cert_sign: bool, ok: bool) -> None:
    usage = ca_key_usage(digital_signature=True, key_cert_sign=cert_sign)
    report = run(pki.ca("KU", key_usage=usage).pem)
    assert report.ok is ok
    assert types(report.errors) == ([] if ok else [("missing-key-cert-sign", "/certificates/0")])


@pytest.fixture(scope="module")
def stray_keys(pki: Pki) -> dict[str, Key]:
    # Fresh keys, unrelated to any certificate here, so none of their text can appear legitimately.
    return {"rsa": pki.key("rsa2048", fresh=True), "ec": pki.key("p256", fresh=True)}


@pytest.mark.parametrize(
    ("key", "fmt", "password", "label"),
    [
        ("rsa", serialization.PrivateFormat.PKCS8, None, "PRIVATE KEY"),
        ("rsa", serialization.PrivateFormat.PKCS8, b"pw", "ENCRYPTED PRIVATE KEY"),
        ("rsa", serialization.PrivateFormat.TraditionalOpenSSL, None, "RSA PRIVATE KEY"),
        ("ec", serialization.PrivateFormat.TraditionalOpenSSL, b"pw", "EC PRIVATE KEY"),
    ],
    ids=["pkcs8", "pkcs8-encrypted", "traditional-rsa", "traditional-ec-encrypted"],
)
def test_private_key_is_rejected_without_echo(
    root: Issued,
    stray_keys: dict[str, Key],
    key: str,
    fmt: serialization.PrivateFormat,
    password: bytes | None,
    label: str,
) -> None:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    key_pem = stray_keys[key].private_bytes(serialization.Encoding.PEM, fmt, encryption).decode()
    assert key_pem.startswith(f"-----BEGIN {label}-----")
    body = [line for line in key_pem.splitlines() if line and not line.startswith("-----")]
    unterminated = key_pem.rsplit("-----END", 1)[0]
    cases = [(root.pem + key_pem, [], 1), (unterminated, [("no-certificates", "/certificates")], 0)]
    for text, also, block in cases:
        report = run(text)
        assert types(report.errors) == [*also, ("private-key-in-upload", "/certificates/0")]
        assert f"in block {block};" in report.errors[-1].detail
        dumped = repr(report)
        assert all(line not in dumped and line[:16] not in dumped for line in body)
    # The PEM reader the edge and the CLI use says the same, without echoing it either.
    (problem,) = [b for b in certificate_blocks(root.pem + key_pem) if isinstance(b, BlockError)]
    assert "private key" in problem.detail
    assert all(line[:16] not in problem.detail for line in body)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not a certificate \x00\xff", ["malformed-pem"]),
        ("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----", ["malformed-pem"]),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n", ["malformed-pem"]),
        ("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----", ["malformed-pem"]),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END X509 CRL-----", ["malformed-pem"]),
        ("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----", ["malformed-certificate"]),
    ],
    ids=["garbage", "base64", "unterminated", "empty", "label-mismatch", "not-der"],
)
def test_garbage_is_rejected(text: str, expected: list[str]) -> None:
    report = run(text)
    assert [e.type for e in report.errors] == ["no-certificates", *expected]
    assert report.certificates == ()


def test_other_pem_blocks_are_rejected_by_index_and_label(pki: Pki, root: Issued) -> None:
    key = pki.key("p256")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    report = run(root.pem + csr, public.decode())
    assert types(report.errors) == [
        ("unsupported-pem-block", "/certificates/0"),
        ("unsupported-pem-block", "/certificates/1"),
    ]
    assert "block 1" in report.errors[0].detail
    assert "CERTIFICATE REQUEST" in report.errors[0].detail
    assert "block 0" in report.errors[1].detail
    assert "PUBLIC KEY" in report.errors[1].detail


def test_no_input_is_rejected() -> None:
    assert types(run().errors) == [("no-certificates", "/certificates")]


@pytest.fixture(scope="module")
def many(pki: Pki) -> list[str]:
    return [pki.ca(f"CA {i}").pem for i in range(MAX_CERTIFICATES_PER_VERSION + 1)]


def test_300_certificates_are_accepted_and_301_rejected(many: list[str]) -> None:
    assert run(*many[:300]).ok
    bundled = run("".join(many[:150]), *many[150:])
    assert types(bundled.errors) == [("too-many-certificates", "/certificates")]
    assert "301" in bundled.errors[0].detail


@pytest.mark.parametrize("check", list(Check))
def test_duplicate_fingerprint_warns_on_validate_only(root: Issued, check: Check) -> None:
    report = run(root.pem, root.pem, check=check)
    expected = [("duplicate-certificate", "/certificates/1")]
    assert types(report.warnings if check is Check.VALIDATE else report.errors) == expected
    assert "/certificates/0 block 0" in (report.warnings + report.errors)[0].detail


def test_same_subject_with_another_key_warns(pki: Pki) -> None:
    old = pki.ca("Rekeyed", key=pki.key("p256", fresh=True))
    new = pki.ca("Rekeyed", key=pki.key("p256", fresh=True))
    renewed = pki.ca("Rekeyed", key=old.key)  # same key, new serial: not a warning
    report = run(old.pem, renewed.pem, new.pem)
    assert report.ok
    assert types(report.warnings) == [("duplicate-subject", "/certificates/2")]


def test_require_root_accepts_a_chain_to_a_root(
    pki: Pki, root: Issued, intermediate: Issued
) -> None:
    second = pki.ca("Second level", issuer=intermediate)
    assert run(second.pem, intermediate.pem, root.pem, require_root=True).ok


def test_require_root_rejects_a_missing_root(pki: Pki, root: Issued, intermediate: Issued) -> None:
    second = pki.ca("Second level", issuer=intermediate)
    assert run(second.pem, intermediate.pem).ok  # partial chains are fine by default
    report = run(second.pem, intermediate.pem, require_root=True)
    assert [e.type for e in report.errors] == ["missing-root-certificate"] * 2
    # A root with the right name but another key does not anchor the chain.
    impostor = pki.ca("Root RSA", key="p256")
    assert [e.type for e in run(intermediate.pem, impostor.pem, require_root=True).errors] == [
        "missing-root-certificate"
    ]


def test_require_root_survives_an_issuer_loop(pki: Pki) -> None:
    a_key, b_key = pki.key("p256", fresh=True), pki.key("p256", fresh=True)
    a_by_b = pki.ca("Loop A", key=a_key, issuer=Issued(pki.ca("Loop B", key=b_key).cert, b_key))
    b_by_a = pki.ca("Loop B", key=b_key, issuer=Issued(pki.ca("Loop A", key=a_key).cert, a_key))
    report = run(a_by_b.pem, b_by_a.pem, require_root=True)
    assert [e.type for e in report.errors] == ["missing-root-certificate"] * 2


def test_v1_certificate_is_rejected(pki: Pki) -> None:
    base = pki.ca("V1 CA", key="rsa2048")
    assert run(base.pem).ok
    v1 = make_v1(base)
    assert v1.cert.version is x509.Version.v1
    report = run(v1.pem)
    assert [e.type for e in report.errors] == ["not-x509-v3", "not-a-ca-certificate"]


def test_one_certificate_reports_every_problem(pki: Pki) -> None:
    base = pki.ca(
        "Bad",
        key="rsa1024",
        ca=False,
        valid=(-timedelta(days=2), -timedelta(days=1)),
    )
    report = run(resign_weak(base, SHA1_WITH_RSA).pem)
    assert sorted(e.type for e in report.errors) == [
        "expired",
        "insecure-signature-sha1",
        "not-a-ca-certificate",
        "weak-key",
    ]


def test_certificate_record_keeps_the_pem(root: Issued, intermediate: Issued) -> None:
    records = [certificate_record(i.cert, None) for i in (root, intermediate)]
    assert [r.certificate_pem for r in records] == [root.pem, intermediate.pem]
    assert records[0].subject == root.cert.subject.rfc4514_string()


def test_ca_list_size_counts_der_names(root: Issued, intermediate: Issued) -> None:
    records = run(root.pem, intermediate.pem).certificates
    expected = sum(2 + len(i.cert.subject.public_bytes()) for i in (root, intermediate))
    assert ca_list_size(records) == expected > 0
    assert ca_list_size([]) == 0


def test_naive_now_is_refused(root: Issued) -> None:
    with pytest.raises(ValueError, match="timezone"):
        validate_certificates(
            [CertificateInput(root.pem)],
            allow_insecure_sha1=False,
            require_root_certificate=False,
            now=NOW.replace(tzinfo=None),
            check=Check.CREATE,
        )
