"""CRLs per CA set over the admin API (docs/management.md "CRLs", docs/api.md): every accepts test
has a rejects twin.

CAs and CRLs are made at test time; every reply is checked against the OpenAPI document.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edgeproxy.domain.model import Network
from edgeproxy.service.fleet import FleetService
from edgeproxy.store import Store
from support.admin import Api, Reply
from support.pki import DAY, Issued, Pki, build_crl, crl_without_next_update

from .steps import Clock, Fleet, activity_types, new_set, new_version

CRLS = "/ca-sets/{}/crls"


def make_crl(
    issuer: Issued,
    *,
    this_update: datetime | None = None,
    next_update: datetime | None = None,
    number: int = 1,
    revoked: tuple[int, ...] = (11, 12),
) -> x509.CertificateRevocationList:
    now = datetime.now(UTC)
    return build_crl(
        issuer,
        this_update=this_update or now - timedelta(hours=1),
        next_update=next_update or now + 7 * DAY,
        number=number,
        revoked=revoked,
    )


def pem(crl: x509.CertificateRevocationList) -> str:
    return crl.public_bytes(serialization.Encoding.PEM).decode()


def der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)


def without_next_update(crl: x509.CertificateRevocationList, issuer: Issued) -> str:
    """Re-signed without its optional nextUpdate (cryptography's builder insists on one)."""
    assert isinstance(issuer.key, ec.EllipticCurvePrivateKey)
    return pem(crl_without_next_update(crl, issuer.key))


@pytest.fixture(scope="module")
def ca(pki: Pki) -> Issued:
    return pki.ca("Partner CA")


@pytest.fixture(scope="module")
def other_ca(pki: Pki) -> Issued:
    return pki.ca("Internal CA", key="rsa2048")


async def partners(api: Api, ca: Issued) -> int:
    set_id = await new_set(api, "partners")
    await new_version(api, set_id, ca.pem)
    return set_id


async def upload(api: Api, set_id: int, text: str, as_: str = "editor", **extra: str) -> Reply:
    return await api.post(CRLS.format(set_id), {"crlPem": text, **extra}, as_=as_)


async def listed(api: Api, set_id: int) -> list[dict]:
    reply = await api.get(CRLS.format(set_id), as_="viewer")
    assert reply.status == 200, reply.body
    return list(reply.body["crls"])


async def edge_crls(fleet_service: FleetService) -> dict[str, tuple[bytes, ...]]:
    return (await fleet_service.trust_view(Network.STAGING)).crls


# -- upload ------------------------------------------------------------------------------------


async def test_a_valid_crl_is_added_recorded_and_sent_to_the_edge(
    api: Api, ca: Issued, store: Store, fleet_service: FleetService
) -> None:
    set_id = await partners(api, ca)
    before = await store.revision()
    crl = make_crl(ca, number=4)
    reply = await upload(api, set_id, "# fetched today\n" + pem(crl), description="weekly")
    assert reply.status == 201, reply.body
    body = reply.body
    assert (body["issuer"], body["crlNumber"], body["revokedCount"]) == ("CN=Partner CA", "4", 2)
    assert (body["effective"], body["expired"], body["warnings"]) == (True, False, [])
    assert (body["description"], body["createdBy"], body["caSetId"]) == (
        "weekly",
        "ci-editor",
        set_id,
    )
    assert body["crlPem"] == pem(crl)  # re-encoded: the comment is not kept
    assert body["fingerprint"] == crl.fingerprint(hashes.SHA256()).hex()
    assert body["issuerFingerprint"] == ca.cert.fingerprint(hashes.SHA256()).hex()
    assert await store.revision() == before + 1
    assert (await activity_types(api, set_id))[0] == "ADD_CRL"
    assert await listed(api, set_id) == [body]
    assert await edge_crls(fleet_service) == {"partners": (der(crl),)}


async def test_a_viewer_cannot_add_a_crl(api: Api, ca: Issued, store: Store) -> None:
    set_id = await partners(api, ca)
    before = await store.revision()
    reply = await upload(api, set_id, pem(make_crl(ca)), as_="viewer")
    assert (reply.status, reply.type) == (403, "insufficient-role")
    assert await listed(api, set_id) == []
    assert await store.revision() == before


async def test_a_crl_of_a_ca_in_an_older_version_is_accepted(
    api: Api, ca: Issued, other_ca: Issued
) -> None:
    set_id = await partners(api, ca)
    await new_version(api, set_id, other_ca.pem)  # the latest version no longer holds `ca`
    assert (await upload(api, set_id, pem(make_crl(ca)))).status == 201


async def test_a_crl_signed_by_a_foreign_ca_is_refused(
    api: Api, pki: Pki, ca: Issued, store: Store
) -> None:
    set_id = await partners(api, ca)
    before = await store.revision()
    reply = await upload(api, set_id, pem(make_crl(pki.ca("Stranger CA", key="rsa2048"))))
    assert (reply.status, reply.type, reply.errors[0][0]) == (
        400,
        "crl-validation-failure",
        "crl-issuer-unknown",
    )
    assert reply.errors == [("crl-issuer-unknown", "/crlPem")]
    assert await listed(api, set_id) == []
    assert await store.revision() == before
    assert "ADD_CRL" not in await activity_types(api, set_id)


async def test_a_crl_signed_by_a_ca_of_another_set_is_refused(
    api: Api, ca: Issued, other_ca: Issued
) -> None:
    set_id = await partners(api, ca)
    internal = await new_set(api, "internal")
    await new_version(api, internal, other_ca.pem)
    assert (await upload(api, internal, pem(make_crl(other_ca)))).status == 201
    reply = await upload(api, set_id, pem(make_crl(other_ca)))
    assert (reply.status, reply.type, reply.errors[0][0]) == (
        400,
        "crl-validation-failure",
        "crl-issuer-unknown",
    )


async def test_a_crl_under_the_ca_name_but_another_key_is_refused(
    api: Api, pki: Pki, ca: Issued
) -> None:
    set_id = await partners(api, ca)
    impostor = pki.ca("Partner CA", key="rsa2048")
    reply = await upload(api, set_id, pem(make_crl(impostor)))
    assert (reply.status, reply.type, reply.errors[0][0]) == (
        400,
        "crl-validation-failure",
        "crl-signature-invalid",
    )


async def test_an_expired_crl_is_refused(api: Api, ca: Issued) -> None:
    set_id = await partners(api, ca)
    now = datetime.now(UTC)
    crl = make_crl(ca, this_update=now - 8 * DAY, next_update=now - DAY)
    reply = await upload(api, set_id, pem(crl))
    assert (reply.status, reply.type, reply.errors[0][0]) == (
        400,
        "crl-validation-failure",
        "crl-expired",
    )
    assert reply.errors == [("crl-expired", "/crlPem")]


async def test_a_crl_without_next_update_is_accepted_with_a_warning(api: Api, ca: Issued) -> None:
    set_id = await partners(api, ca)
    reply = await upload(api, set_id, without_next_update(make_crl(ca), ca))
    assert reply.status == 201, reply.body
    assert reply.body["nextUpdate"] is None
    assert [w["type"] for w in reply.body["warnings"]] == ["crl-without-next-update"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("garbage, not PEM", "malformed-pem"),
        ("-----BEGIN X509 CRL-----\nAAECAwQF\n-----END X509 CRL-----\n", "malformed-crl"),
    ],
    ids=["no-block", "not-a-crl"],
)
async def test_garbage_is_refused(api: Api, ca: Issued, text: str, expected: str) -> None:
    set_id = await partners(api, ca)
    reply = await upload(api, set_id, text)
    assert (reply.status, reply.type, reply.errors[0][0]) == (
        400,
        "crl-validation-failure",
        expected,
    )


async def test_a_certificate_instead_of_a_crl_is_refused(api: Api, ca: Issued) -> None:
    set_id = await partners(api, ca)
    reply = await upload(api, set_id, ca.pem)
    assert (reply.status, reply.type, reply.errors[0][0]) == (
        400,
        "crl-validation-failure",
        "unsupported-pem-block",
    )


async def test_a_private_key_in_the_upload_is_refused_without_echo(api: Api, ca: Issued) -> None:
    set_id = await partners(api, ca)
    reply = await upload(api, set_id, pem(make_crl(ca)) + ca.key_pem)
    assert (reply.status, reply.type, reply.errors[0][0]) == (
        400,
        "crl-validation-failure",
        "private-key-in-upload",
    )
    secret = [line for line in ca.key_pem.splitlines() if line and "-----" not in line]
    assert not any(line in reply.text for line in secret)
    assert await listed(api, set_id) == []


async def test_the_same_crl_twice_is_a_conflict(api: Api, ca: Issued) -> None:
    set_id = await partners(api, ca)
    crl = make_crl(ca)
    first = await upload(api, set_id, pem(crl))
    assert first.status == 201
    reply = await upload(api, set_id, pem(crl))
    assert (reply.status, reply.type) == (409, "duplicate-crl")
    assert reply.body["crlId"] == first.body["crlId"]
    assert len(await listed(api, set_id)) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"crlPem": "x", "extra": 1}, "unknown-field"),
        ({"description": "no CRL"}, "missing-field"),
        ({"crlPem": 12}, "wrong-type"),
    ],
    ids=["unknown-field", "missing", "wrong-type"],
)
async def test_malformed_bodies_are_400(api: Api, ca: Issued, body: dict, expected: str) -> None:
    set_id = await partners(api, ca)
    reply = await api.post(CRLS.format(set_id), body, as_="editor")
    assert (reply.status, reply.type) == (400, expected)


async def test_an_unknown_set_is_404(api: Api, ca: Issued) -> None:
    reply = await upload(api, 999, pem(make_crl(ca)))
    assert (reply.status, reply.type) == (404, "ca-set-not-found")
    assert (await api.get(CRLS.format(999))).status == 404


# -- newest per issuer wins ----------------------------------------------------------------------


async def test_the_newest_crl_of_an_issuer_wins(
    api: Api, ca: Issued, fleet_service: FleetService
) -> None:
    set_id = await partners(api, ca)
    now = datetime.now(UTC)
    newer = make_crl(ca, this_update=now - DAY, number=2)
    older = make_crl(ca, this_update=now - 2 * DAY, number=1)
    assert (await upload(api, set_id, pem(newer))).status == 201
    assert (await upload(api, set_id, pem(older))).status == 201  # uploaded last, still older
    effective = {c["crlNumber"]: c["effective"] for c in await listed(api, set_id)}
    assert effective == {"2": True, "1": False}
    assert await edge_crls(fleet_service) == {"partners": (der(newer),)}


async def test_crls_of_different_issuers_both_apply(
    api: Api, ca: Issued, other_ca: Issued, fleet_service: FleetService
) -> None:
    set_id = await partners(api, ca)
    await new_version(api, set_id, ca.pem, other_ca.pem)
    first, second = make_crl(ca), make_crl(other_ca)
    for crl in (first, second):
        assert (await upload(api, set_id, pem(crl))).status == 201
    assert all(c["effective"] for c in await listed(api, set_id))
    assert await edge_crls(fleet_service) == {"partners": (der(first), der(second))}


# -- delete --------------------------------------------------------------------------------------


async def test_delete_is_204_recorded_and_gone_from_the_edge(
    api: Api, ca: Issued, store: Store, fleet_service: FleetService
) -> None:
    set_id = await partners(api, ca)
    now = datetime.now(UTC)
    older = make_crl(ca, this_update=now - 2 * DAY)
    newer = make_crl(ca, this_update=now - DAY)
    await upload(api, set_id, pem(older))
    newest_id = (await upload(api, set_id, pem(newer))).body["crlId"]
    before = await store.revision()
    reply = await api.delete(f"{CRLS.format(set_id)}/{newest_id}", as_="editor")
    assert (reply.status, reply.text) == (204, "")
    assert await store.revision() == before + 1
    assert (await activity_types(api, set_id))[0] == "DELETE_CRL"
    # The older CRL of the issuer applies again.
    assert [c["effective"] for c in await listed(api, set_id)] == [True]
    assert await edge_crls(fleet_service) == {"partners": (der(older),)}


async def test_delete_of_an_unknown_crl_is_404_and_a_viewer_cannot_delete(
    api: Api, ca: Issued, fleet_service: FleetService
) -> None:
    set_id = await partners(api, ca)
    crl_id = (await upload(api, set_id, pem(make_crl(ca)))).body["crlId"]
    reply = await api.delete(f"{CRLS.format(set_id)}/{crl_id + 1}", as_="editor")
    assert (reply.status, reply.type) == (404, "crl-not-found")
    other = await new_set(api, "internal")
    assert (await api.delete(f"{CRLS.format(other)}/{crl_id}", as_="editor")).status == 404
    reply = await api.delete(f"{CRLS.format(set_id)}/{crl_id}", as_="viewer")
    assert reply.status == 403
    assert len((await edge_crls(fleet_service))["partners"]) == 1


async def test_a_set_being_deleted_or_deleted_refuses_crl_changes(
    api: Api, ca: Issued, fleet_service: FleetService, fleet: Fleet
) -> None:
    set_id = await new_set(api, "partners")
    await new_version(api, set_id, ca.pem)
    crl_id = (await upload(api, set_id, pem(make_crl(ca, number=1)))).body["crlId"]
    assert (await api.delete(f"/ca-sets/{set_id}")).status == 202
    reply = await upload(api, set_id, pem(make_crl(ca, number=2)))
    assert (reply.status, reply.type) == (409, "ca-set-delete-in-progress")
    await fleet.reconcile()  # no node binds it: the deletion completes
    reply = await api.delete(f"{CRLS.format(set_id)}/{crl_id}", as_="editor")
    assert (reply.status, reply.type) == (409, "ca-set-deleted")
    assert [c["crlId"] for c in await listed(api, set_id)] == [crl_id]  # history stays readable
    assert await edge_crls(fleet_service) == {}


# -- expiry --------------------------------------------------------------------------------------


async def test_an_effective_crl_past_next_update_is_reported_on_the_set(
    api: Api, ca: Issued, clock: Clock, fleet_service: FleetService
) -> None:
    set_id = await partners(api, ca)
    now = datetime.now(UTC)
    crl_id = (await upload(api, set_id, pem(make_crl(ca, next_update=now + DAY)))).body["crlId"]
    assert (await api.get(f"/ca-sets/{set_id}")).body["warnings"] == []
    clock.advance(2 * DAY)
    (crl,) = await listed(api, set_id)
    assert (crl["effective"], crl["expired"]) == (True, True)
    assert [w["type"] for w in crl["warnings"]] == ["crl-expired"]
    shown = (await api.get(f"/ca-sets/{set_id}")).body["warnings"]
    assert [w["type"] for w in shown] == ["crl-expired"]
    assert f"CRL {crl_id}" in shown[0]["detail"]
    (listed_set,) = (await api.get("/ca-sets")).body["caSets"]
    assert listed_set["warnings"] == shown
    # Still sent: the data plane decides what a stale CRL means; dropping it would let
    # revoked certificates pass again.
    assert len((await edge_crls(fleet_service))["partners"]) == 1
