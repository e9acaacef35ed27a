"""Versions through HTTP (docs/management.md "Versions", "Certificate validation"): every rule has
its twin."""

from __future__ import annotations

import base64
import os
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from edgeproxy.domain.certificates import MAX_CERTIFICATES_PER_VERSION
from support.admin import Api, Reply
from support.pki import DAY, Pki

from .steps import Clock, activate, new_set, new_version, version_body


async def create(api: Api, set_id: int, *pems: str, **options: Any) -> Reply:
    return await api.post(
        f"/ca-sets/{set_id}/versions", version_body(*pems, **options), as_="editor"
    )


@pytest.fixture
async def set_id(api: Api) -> int:
    return await new_set(api)


async def test_create_records_certificates_and_actor(api: Api, set_id: int, pki: Pki) -> None:
    root = pki.ca("Partner Root")
    reply = await create(api, set_id, root.pem, description="first")
    assert reply.status == 201
    body = reply.body
    assert (body["version"], body["editable"], body["createdBy"]) == (1, True, "ci-editor")
    assert (body["stagingStatus"], body["productionStatus"]) == ("INACTIVE", "INACTIVE")
    (cert,) = body["certificates"]
    assert cert["subject"] == "CN=Partner Root"
    assert cert["fingerprint"] == root.cert.fingerprint(hashes.SHA256()).hex()
    assert cert["certificatePem"] == root.pem
    listed = await api.get(f"/ca-sets/{set_id}/versions", as_="viewer")
    assert [v["version"] for v in listed.body["versions"]] == [1]
    assert (await api.get(f"/ca-sets/{set_id}/versions/1")).body == body
    assert (await api.get(f"/ca-sets/{set_id}/versions/2")).type == "version-not-found"
    assert (await api.get("/ca-sets/77/versions")).type == "ca-set-not-found"


@pytest.mark.parametrize(
    ("valid", "error"),
    [
        ((-10 * DAY, -DAY), "expired"),
        ((DAY, 10 * DAY), "not-yet-valid"),
    ],
)
async def test_validity_period(
    api: Api, set_id: int, pki: Pki, valid: tuple[timedelta, timedelta], error: str
) -> None:
    refused = await create(api, set_id, pki.ca("Out of period", valid=valid).pem)
    assert (refused.status, refused.type) == (400, "certificate-validation-failure-create")
    assert refused.errors == [(error, "/certificates/0")]
    accepted = await create(api, set_id, pki.ca("In period", valid=(-DAY, DAY * 90)).pem)
    assert accepted.status == 201


async def test_sha1_only_with_allow_insecure_sha1(api: Api, set_id: int, pki: Pki) -> None:
    sha1 = pki.weak("sha1").pem
    refused = await create(api, set_id, sha1)
    assert refused.status == 400
    assert refused.errors == [("insecure-signature-sha1", "/certificates/0")]
    accepted = await create(api, set_id, sha1, allowInsecureSha1=True)
    assert accepted.status == 201
    assert accepted.body["allowInsecureSha1"] is True
    warnings = [w["type"] for w in accepted.body["validation"]["warnings"]]
    assert warnings == ["insecure-signature-sha1"]


async def test_md5_never_even_with_allow_insecure_sha1(api: Api, set_id: int, pki: Pki) -> None:
    md5 = pki.weak("md5").pem
    for options in ({}, {"allowInsecureSha1": True}):
        refused = await create(api, set_id, md5, **options)
        assert refused.status == 400
        assert refused.errors == [("insecure-signature-algorithm", "/certificates/0")]
    assert (await create(api, set_id, pki.ca(key="rsa2048").pem)).status == 201


async def test_rsa_1024_refused_rsa_2048_accepted(api: Api, set_id: int, pki: Pki) -> None:
    refused = await create(api, set_id, pki.ca("Small", key="rsa1024").pem)
    assert refused.errors == [("weak-key", "/certificates/0")]
    assert (await create(api, set_id, pki.ca("Big", key="rsa2048").pem)).status == 201


async def test_leaf_refused_ca_accepted(api: Api, set_id: int, pki: Pki) -> None:
    root = pki.ca("Root")
    refused = await create(
        api, set_id, root.pem, pki.ca("leaf", issuer=root, ca=False, key_usage=None).pem
    )
    assert refused.status == 400
    assert refused.errors == [("not-a-ca-certificate", "/certificates/1")]
    assert (await create(api, set_id, root.pem, pki.ca("Sub", issuer=root).pem)).status == 201


async def test_private_key_refused_and_never_echoed(api: Api, set_id: int, pki: Pki) -> None:
    issued = pki.ca("Keyed", key="rsa2048")
    key_body = "".join(issued.key_pem.splitlines()[1:-1])
    for payload in (issued.key_pem, issued.pem + issued.key_pem):
        refused = await create(api, set_id, payload)
        assert refused.status == 400
        assert ("private-key-in-upload", "/certificates/0") in refused.errors
        assert key_body[:40] not in refused.text
        assert "PRIVATE KEY-----" not in refused.text
        checked = await api.post("/certificates/validate", version_body(payload), as_="viewer")
        assert checked.body["valid"] is False
        assert key_body[:40] not in checked.text
    assert (await api.get(f"/ca-sets/{set_id}/versions")).body["versions"] == []
    assert (await create(api, set_id, issued.pem)).status == 201


@pytest.mark.parametrize(
    ("pem", "error"),
    [
        ("not a certificate at all", "malformed-pem"),
        (
            "-----BEGIN CERTIFICATE-----\n"
            + base64.b64encode(os.urandom(400)).decode()
            + "\n-----END CERTIFICATE-----\n",
            "malformed-certificate",
        ),
        ("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "malformed-pem"),
        ("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", "unsupported-pem-block"),
    ],
    ids=["text", "random-der", "bad-base64", "crl-block"],
)
async def test_garbage_certificates_are_422(api: Api, set_id: int, pem: str, error: str) -> None:
    refused = await create(api, set_id, pem)
    assert refused.status == 400
    assert (error, "/certificates/0") in refused.errors


async def test_bundle_of_300_accepted_301_refused(api: Api, set_id: int, pki: Pki) -> None:
    root = pki.ca("Bundle Root")
    bundle = [
        pki.ca(f"Bundle CA {n}", issuer=root).pem for n in range(MAX_CERTIFICATES_PER_VERSION)
    ]
    over = await create(api, set_id, "".join(bundle) + root.pem)
    assert over.status == 422
    assert over.errors == [("too-many-certificates", "/certificates")]
    accepted = await create(api, set_id, "".join(bundle))
    assert accepted.status == 201
    assert len(accepted.body["certificates"]) == MAX_CERTIFICATES_PER_VERSION


async def test_a_version_is_never_empty(api: Api, set_id: int, pki: Pki) -> None:
    refused = await create(api, set_id)
    assert refused.errors == [("no-certificates", "/certificates")]
    version = await new_version(api, set_id, pki.ca().pem)
    emptied = await api.put(f"/ca-sets/{set_id}/versions/{version}", version_body())
    assert (emptied.status, emptied.errors) == (400, [("no-certificates", "/certificates")])


async def test_duplicate_fingerprint_in_one_upload_is_an_error(
    api: Api, set_id: int, pki: Pki
) -> None:
    pem = pki.ca("Twice").pem
    refused = await create(api, set_id, pem, pem)
    assert refused.errors == [("duplicate-certificate", "/certificates/1")]
    assert (await create(api, set_id, pem)).status == 201


@pytest.mark.parametrize(("with_root", "status"), [(True, 201), (False, 400)])
async def test_require_root_certificate(
    api: Api, set_id: int, pki: Pki, with_root: bool, status: int
) -> None:
    root = pki.ca("Anchor Root")
    sub = pki.ca("Anchor Sub", issuer=root)
    pems = (sub.pem, root.pem) if with_root else (sub.pem,)
    reply = await create(api, set_id, *pems, requireRootCertificate=True)
    assert reply.status == status
    if status == 400:
        assert reply.errors == [("missing-root-certificate", "/certificates/0")]
    else:
        assert reply.body["requireRootCertificate"] is True


async def test_lone_intermediate_accepted_without_require_root(
    api: Api, set_id: int, pki: Pki
) -> None:
    sub = pki.ca("Partial Sub", issuer=pki.ca("Absent Root"))
    reply = await create(api, set_id, sub.pem)
    assert (reply.status, reply.body["requireRootCertificate"]) == (201, False)


# -- duplicates, clones and frozen versions -----------------------------------------------------


async def test_duplicate_version_refused_with_a_link(api: Api, set_id: int, pki: Pki) -> None:
    a, b = pki.ca("A").pem, pki.ca("B").pem
    await new_version(api, set_id, a, b)
    refused = await create(api, set_id, b, a)  # order does not matter: the same set
    assert (refused.status, refused.type) == (422, "duplicate-ca-set-version")
    assert refused.body["duplicateVersion"] == 1
    assert refused.body["link"] == f"/mtls-edge-truststore/v2/ca-sets/{set_id}/versions/1"
    assert (await create(api, set_id, a)).status == 201


async def test_update_into_a_duplicate_refused_update_in_place_accepted(
    api: Api, set_id: int, pki: Pki
) -> None:
    a, b = pki.ca("A").pem, pki.ca("B").pem
    await new_version(api, set_id, a)
    second = await new_version(api, set_id, b)
    refused = await api.put(f"/ca-sets/{set_id}/versions/{second}", version_body(a))
    assert (refused.status, refused.type) == (422, "duplicate-ca-set-version")
    same = await api.put(
        f"/ca-sets/{set_id}/versions/{second}", version_body(b, description="same certs")
    )
    assert same.status == 200
    assert (same.body["description"], same.body["modifiedBy"]) == ("same certs", "ops-admin")


async def test_clone_is_exempt_from_the_duplicate_rule(api: Api, set_id: int, pki: Pki) -> None:
    pem = pki.ca("Cloned").pem
    await new_version(api, set_id, pem)
    clone = await api.post(f"/ca-sets/{set_id}/versions/1/clone", as_="editor")
    assert clone.status == 201
    assert (clone.body["version"], clone.body["editable"]) == (2, True)
    assert clone.body["certificates"][0]["certificatePem"] == pem
    missing = await api.post(f"/ca-sets/{set_id}/versions/9/clone")
    assert (missing.status, missing.type) == (404, "version-not-found")


async def test_clone_of_an_aged_version_warns_where_create_refuses(
    api: Api, set_id: int, pki: Pki, clock: Clock
) -> None:
    pem = pki.ca("Short-lived", valid=(-DAY, 10 * DAY)).pem
    await new_version(api, set_id, pem)
    clock.advance(20 * DAY)
    clone = await api.post(f"/ca-sets/{set_id}/versions/1/clone")
    assert clone.status == 201
    assert [w["type"] for w in clone.body["validation"]["warnings"]] == ["expired"]
    refused = await create(api, set_id, pem, pki.ca("Other").pem)
    assert ("expired", "/certificates/0") in refused.errors


async def test_activated_version_is_frozen_and_its_clone_is_not(
    api: Api, set_id: int, pki: Pki
) -> None:
    version = await new_version(api, set_id, pki.ca("Frozen").pem)
    await activate(api, set_id, version)
    locked = await api.get(f"/ca-sets/{set_id}/versions/{version}")
    assert (locked.body["editable"], locked.body["stagingStatus"]) == (False, "ACTIVE")
    edit = await api.put(f"/ca-sets/{set_id}/versions/{version}", version_body(pki.ca().pem))
    assert (edit.status, edit.type) == (422, "ca-set-version-was-previously-active")
    delete = await api.delete(f"/ca-sets/{set_id}/versions/{version}")
    assert (delete.status, delete.type) == (422, "ca-set-version-was-previously-active")

    clone = (await api.post(f"/ca-sets/{set_id}/versions/{version}/clone")).body["version"]
    edited = await api.put(f"/ca-sets/{set_id}/versions/{clone}", version_body(pki.ca().pem))
    assert (edited.status, edited.body["editable"]) == (200, True)
    assert (await api.delete(f"/ca-sets/{set_id}/versions/{clone}")).status == 204
    gone = await api.get(f"/ca-sets/{set_id}/versions/{clone}")
    assert gone.status == 404


async def test_at_most_100_versions(api: Api, set_id: int, pki: Pki) -> None:
    await new_version(api, set_id, pki.ca("Many").pem)
    for expected in range(2, 101):
        clone = await api.post(f"/ca-sets/{set_id}/versions/1/clone")
        assert clone.body["version"] == expected
    over = await api.post(f"/ca-sets/{set_id}/versions/1/clone")
    assert (over.status, over.type) == (422, "version-limit-reached")
    also = await create(api, set_id, pki.ca("One more").pem)
    assert (also.status, also.type) == (422, "version-limit-reached")
    assert (await api.delete(f"/ca-sets/{set_id}/versions/100")).status == 204
    assert (await create(api, set_id, pki.ca("Fits again").pem)).status == 201


# -- the certificates endpoint ------------------------------------------------------------------


async def test_certificates_by_expiry_status(api: Api, set_id: int, pki: Pki, clock: Clock) -> None:
    soon = pki.ca("Soon", valid=(-DAY, 10 * DAY))
    later = pki.ca("Later", valid=(-DAY, 200 * DAY))
    version = await new_version(api, set_id, soon.pem, later.pem)
    path = f"/ca-sets/{set_id}/versions/{version}/certificates"

    async def subjects(**params: str) -> list[str]:
        reply = await api.get(path, params=params, as_="viewer")
        assert reply.status == 200
        return [c["subject"] for c in reply.body["certificates"]]

    assert await subjects() == ["CN=Soon", "CN=Later"]
    assert await subjects(certificateStatus="EXPIRING") == ["CN=Soon"]
    assert await subjects(certificateStatus="EXPIRING", expiryThresholdInDays="5") == []
    assert await subjects(certificateStatus="EXPIRING", expiryThresholdInDays="365") == [
        "CN=Soon",
        "CN=Later",
    ]
    assert await subjects(certificateStatus="EXPIRED") == []
    clock.advance(20 * DAY)
    assert await subjects(certificateStatus="EXPIRED") == ["CN=Soon"]
    assert await subjects(certificateStatus="EXPIRING") == []
    assert await subjects(certificateStatus="EXPIRING,EXPIRED", expiryThresholdInDays="365") == [
        "CN=Soon",
        "CN=Later",
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"certificateStatus": "VALID"},
        {"expiryThresholdInDays": "-1"},
        {"expiryThresholdInDays": "ten"},
        {"expiryThresholdInDays": "\u00b2"},
        {"expiryThresholdInDays": "99999999999"},
        {"status": "EXPIRED"},
    ],
)
async def test_certificates_query_errors(
    api: Api, set_id: int, pki: Pki, params: dict[str, str]
) -> None:
    version = await new_version(api, set_id, pki.ca().pem)
    reply = await api.get(f"/ca-sets/{set_id}/versions/{version}/certificates", params=params)
    assert reply.status == 400
    assert reply.type in ("invalid-query-parameter", "unknown-query-parameter")


# -- the validate endpoint ----------------------------------------------------------------------


async def test_validate_stores_nothing_and_warns_on_duplicates(
    api: Api, set_id: int, pki: Pki
) -> None:
    pem = pki.ca("Checked").pem
    reply = await api.post("/certificates/validate", version_body(pem, pem), as_="viewer")
    assert reply.status == 200
    assert (reply.body["valid"], reply.body["errors"]) == (True, [])
    assert [(w["type"], w["pointer"]) for w in reply.body["warnings"]] == [
        ("duplicate-certificate", "/certificates/1")
    ]
    assert len(reply.body["certificates"]) == 2
    assert (await api.get(f"/ca-sets/{set_id}/versions")).body["versions"] == []
    assert [s["caSetId"] for s in (await api.get("/ca-sets")).body["caSets"]] == [set_id]


async def test_validate_answers_400_with_the_whole_report(api: Api, pki: Pki) -> None:
    expired = pki.ca("Old", valid=(-10 * DAY, -DAY)).pem
    reply = await api.post("/certificates/validate", version_body(expired), as_="viewer")
    assert (reply.status, reply.type) == (400, "certificate-validation-failure")
    assert reply.body["valid"] is False
    assert reply.errors == [("expired", "/certificates/0")]
    assert [c["subject"] for c in reply.body["certificates"]] == [
        x509.load_pem_x509_certificate(expired.encode()).subject.rfc4514_string()
    ]
    good = await api.post("/certificates/validate", version_body(pki.ca("New").pem))
    assert (good.status, good.body["valid"]) == (200, True)
    too_long = await api.post(
        "/certificates/validate", version_body(expired, description="d" * 256)
    )
    assert (too_long.status, too_long.type) == (422, "description-too-long")
