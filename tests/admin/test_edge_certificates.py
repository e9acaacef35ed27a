"""The edge-certificate API (/edge/v1): resources, validation, roles, bindings and their
convergence, and the private key never leaving the request that carried it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from edgeproxy.admin.app import create_admin_app
from edgeproxy.admin.auth import TokenAuthenticator
from edgeproxy.dataplane.store_edges import mutual_auth, mutual_config, store_edges
from edgeproxy.domain.edge_model import edge_error_key
from edgeproxy.domain.model import Binding, Network
from edgeproxy.domain.secrets import KeyRing, generate_kek, parse_kek
from edgeproxy.service.truststore import Truststore
from edgeproxy.store import Store
from support.admin import Api, OpenApiChecker, Reply
from support.pki import Issued, Pki

from .steps import TOKENS, Clock, Fleet, activate, new_set, new_version

EDGE = "/edge/v1/edge-certificates"


@pytest.fixture
def truststore(store: Store, clock: Clock) -> Truststore:
    return Truststore.build(store, clock=clock, keys=KeyRing(parse_kek(generate_kek())))


@pytest.fixture
def server_ca(pki: Pki) -> Issued:
    return pki.ca("Server CA")


def _body(leaf: Issued, ca: Issued, name: str = "shop", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "hostnames": ["shop.example.com"],
        "origin": "http://127.0.0.1:8080",
        "certificateChainPem": leaf.pem + ca.pem,
        "privateKeyPem": leaf.key_pem,
        **extra,
    }


async def _edge(api: Api, method: str, path: str, body: Any = None, *, as_: str = "admin") -> Reply:
    if body is None:
        return await api.call(method, path, as_=as_, base=False)
    return await api.call(method, path, body, as_=as_, base=False)


async def _shop_and_partners(api: Api, pki: Pki, server_ca: Issued) -> int:
    """Edge certificate `shop`, and CA set `partners` active on STAGING: its id."""
    leaf = pki.server(server_ca, ["shop.example.com"])
    await _edge(api, "POST", EDGE, _body(leaf, server_ca), as_="editor")
    set_id = await new_set(api)
    await activate(api, set_id, await new_version(api, set_id, pki.ca("Partner CA").pem))
    return set_id


def _secret_forms(leaf: Issued) -> list[str]:
    """The key as PEM body lines and as base64 DER: none may appear anywhere we can read."""
    lines = [line for line in leaf.key_pem.splitlines() if "-----" not in line]
    der = base64.b64decode("".join(lines))
    return [lines[1], base64.b64encode(der).decode()[20:80]]


async def test_create_list_get_and_the_key_is_never_returned(
    api: Api, pki: Pki, server_ca: Issued
) -> None:
    leaf = pki.server(server_ca, ["shop.example.com"])
    created = await _edge(api, "POST", EDGE, _body(leaf, server_ca), as_="editor")
    assert created.status == 201, created.body
    assert created.body["source"] == "store"
    assert created.body["certificate"]["dnsNames"] == ["shop.example.com"]
    assert created.body["certificate"]["chainLength"] == 2
    assert created.body["mutualAuthentication"] == {"STAGING": None, "PRODUCTION": None}
    listed = await _edge(api, "GET", EDGE, as_="viewer")
    one = await _edge(api, "GET", f"{EDGE}/shop", as_="viewer")
    assert [c["name"] for c in listed.body["edgeCertificates"]] == ["shop"]
    for reply in (created, listed, one):
        assert "PRIVATE KEY" not in reply.text
        for form in _secret_forms(leaf):
            assert form not in reply.text


async def test_bad_input_is_a_422_that_never_echoes_the_key(
    api: Api, pki: Pki, server_ca: Issued
) -> None:
    leaf, other = pki.server(server_ca), pki.server(server_ca)
    body = _body(leaf, server_ca, privateKeyPem=other.key_pem)
    refused = await _edge(api, "POST", EDGE, body, as_="editor")
    assert (refused.status, refused.type) == (422, "invalid-edge-certificate")
    assert ("key-mismatch", "/privateKeyPem") in refused.errors
    for form in _secret_forms(other):
        assert form not in refused.text
    wrong_order = _body(leaf, server_ca, certificateChainPem=server_ca.pem + leaf.pem)
    refused = await _edge(api, "POST", EDGE, wrong_order, as_="editor")
    assert ("chain-order", "/certificateChainPem") in refused.errors
    bad_host = await _edge(api, "POST", EDGE, _body(leaf, server_ca, hostnames=["a b"]))
    assert (bad_host.status, bad_host.errors[0][1]) == (422, "/hostnames/0")


async def test_uncovered_hostname_is_a_warning_and_names_are_unique(
    api: Api, pki: Pki, server_ca: Issued
) -> None:
    leaf = pki.server(server_ca, ["shop.example.com"])
    body = _body(leaf, server_ca, hostnames=["shop.example.com", "other.example.com"])
    created = await _edge(api, "POST", EDGE, body, as_="editor")
    assert created.status == 201
    assert [(w["type"], w["pointer"]) for w in created.body["warnings"]] == [
        ("hostname-not-covered", "/hostnames/1")
    ]
    again = await _edge(api, "POST", EDGE, body, as_="editor")
    assert (again.status, again.type) == (409, "edge-certificate-name-taken")
    taken = await _edge(api, "POST", EDGE, _body(leaf, server_ca, name="shop2"), as_="editor")
    assert (taken.status, taken.type) == (409, "hostname-taken")


async def test_roles_viewer_reads_editor_writes_certificates_admin_binds(
    api: Api, pki: Pki, server_ca: Issued
) -> None:
    leaf = pki.server(server_ca, ["shop.example.com"])
    assert (await _edge(api, "POST", EDGE, _body(leaf, server_ca), as_="viewer")).status == 403
    assert (await _edge(api, "POST", EDGE, _body(leaf, server_ca), as_="editor")).status == 201
    bind = {"caSetName": "partners"}
    path = f"{EDGE}/shop/mutual-authentication/STAGING"
    assert (await _edge(api, "PUT", path, bind, as_="editor")).status == 403
    assert (await api.call("GET", EDGE, as_=None, base=False)).status == 401


async def test_binding_needs_a_set_active_on_that_network_and_converges(
    api: Api, pki: Pki, server_ca: Issued, fleet: Fleet
) -> None:
    leaf = pki.server(server_ca, ["shop.example.com"])
    await _edge(api, "POST", EDGE, _body(leaf, server_ca), as_="editor")
    path = f"{EDGE}/shop/mutual-authentication/STAGING"
    typo = await _edge(api, "PUT", path, {"caSetName": "partnres"})
    assert (typo.status, typo.type) == (409, "ca-set-not-active")
    assert "'partnres'" in typo.body["detail"]
    set_id = await new_set(api)
    inactive = await _edge(api, "PUT", path, {"caSetName": "partners"})
    assert (inactive.status, inactive.type) == (409, "ca-set-not-active")
    assert "no version active on STAGING" in inactive.body["detail"]
    await activate(api, set_id, await new_version(api, set_id, pki.ca("Partner CA").pem))
    await fleet.report("edge-1")
    await fleet.report("edge-prod", network=Network.PRODUCTION)
    change = await _edge(api, "PUT", path, {"caSetName": "partners", "sendCaListToClient": True})
    assert change.status == 202, change.body
    assert change.body["status"] == "IN_PROGRESS"
    assert change.body["pendingNodes"] == ["edge-1"]
    await fleet.apply_all("edge-1")
    done = await _edge(api, "GET", change.body["changeLink"], as_="viewer")
    assert done.body["status"] == "COMPLETE"
    assert done.body["appliedNodes"] == ["edge-1"]
    assert done.body["pendingNodes"] == []
    got = await _edge(api, "GET", path, as_="viewer")
    assert got.body["caSetName"] == "partners"
    assert got.body["sendCaListToClient"] is True
    assert got.body["latestChange"]["changeId"] == change.body["changeId"]
    activities = await api.get(f"/ca-sets/{set_id}/activities", as_="viewer")
    bound = [a for a in activities.body["activities"] if a["edgeCertificate"] == "shop"]
    assert [(a["type"], a["activityBy"]) for a in bound] == [("BIND_EDGE_CERTIFICATE", "ops-admin")]
    for form in _secret_forms(leaf):
        assert form not in activities.text
    associations = await api.get(f"/ca-sets/{set_id}/associations", as_="viewer")
    assert [
        (a["edgeCertificate"], a["network"], a["source"]) for a in associations.body["associations"]
    ] == [("shop", "STAGING", "store")]


async def test_a_binding_blocks_deactivation_deletion_and_certificate_removal(
    api: Api, pki: Pki, server_ca: Issued, fleet: Fleet
) -> None:
    set_id = await _shop_and_partners(api, pki, server_ca)
    path = f"{EDGE}/shop/mutual-authentication/STAGING"
    assert (await _edge(api, "PUT", path, {"caSetName": "partners"})).status == 202
    refused = await api.post(f"/ca-sets/{set_id}/versions/1/deactivate", {"network": "STAGING"})
    assert (refused.status, refused.type) == (409, "ca-set-in-use")
    assert refused.body["associations"] == [
        {"node": None, "edgeCertificate": "shop", "network": "STAGING"}
    ]
    delete = await _edge(api, "DELETE", f"{EDGE}/shop", as_="editor")
    assert (delete.status, delete.type) == (409, "edge-certificate-bound")
    assert delete.body["bindings"] == [{"network": "STAGING", "caSetName": "partners"}]
    unbound = await _edge(api, "DELETE", path)
    assert (unbound.status, unbound.body["changeType"]) == (202, "UNBIND")
    assert unbound.body["warnings"][0]["type"] == "no-edge-nodes"
    assert (await _edge(api, "GET", path, as_="viewer")).status == 404
    assert (await _edge(api, "DELETE", f"{EDGE}/shop", as_="editor")).status == 204
    assert (await _edge(api, "GET", f"{EDGE}/shop", as_="viewer")).status == 404


async def test_a_set_bound_only_by_a_store_binding_cannot_be_deleted(
    api: Api, pki: Pki, server_ca: Issued
) -> None:
    """Forced inactive but still bound: deletion names the binding (no node, no config-declared
    binding, only the store's), and goes ahead once it is gone."""
    set_id = await _shop_and_partners(api, pki, server_ca)
    path = f"{EDGE}/shop/mutual-authentication/STAGING"
    assert (await _edge(api, "PUT", path, {"caSetName": "partners"})).status == 202
    deactivate = f"/ca-sets/{set_id}/versions/1/deactivate"
    forced = await api.post(deactivate, {"network": "STAGING", "force": True})
    assert (forced.status, forced.body["activationStatus"]) == (202, "COMPLETE")  # no edge node
    assert (await api.get(f"/ca-sets/{set_id}")).body["stagingVersion"] is None
    refused = await api.delete(f"/ca-sets/{set_id}")
    assert (refused.status, refused.type) == (409, "ca-set-in-use")
    assert refused.body["associations"] == [
        {"node": None, "edgeCertificate": "shop", "network": "STAGING"}
    ]
    assert (await api.get(f"/ca-sets/{set_id}")).body["caSetStatus"] == "NOT_DELETED"
    assert (await _edge(api, "DELETE", path)).status == 202
    assert (await api.delete(f"/ca-sets/{set_id}")).status == 202


async def test_a_node_that_cannot_apply_fails_the_change_and_the_binding_goes_back(
    api: Api, pki: Pki, server_ca: Issued, fleet: Fleet
) -> None:
    await _shop_and_partners(api, pki, server_ca)
    await fleet.report("edge-1")
    path = f"{EDGE}/shop/mutual-authentication/STAGING"
    change = await _edge(api, "PUT", path, {"caSetName": "partners"})
    await fleet.apply_all("edge-1", errors={edge_error_key("shop"): "no key-encryption key"})
    failed = await _edge(api, "GET", change.body["changeLink"], as_="viewer")
    assert failed.body["status"] == "FAILED"
    assert failed.body["failedNodes"] == ["edge-1"]
    assert "no key-encryption key" in failed.body["failureReason"]
    assert (await _edge(api, "GET", path, as_="viewer")).status == 404


async def test_rotation_replaces_chain_and_key(api: Api, pki: Pki, server_ca: Issued) -> None:
    leaf = pki.server(server_ca, ["shop.example.com"])
    created = await _edge(api, "POST", EDGE, _body(leaf, server_ca), as_="editor")
    new = pki.server(server_ca, ["shop.example.com"])
    body = {"certificateChainPem": new.pem, "privateKeyPem": new.key_pem}
    rotated = await _edge(api, "PUT", f"{EDGE}/shop/certificate", body, as_="editor")
    assert rotated.status == 200, rotated.body
    assert rotated.body["generation"] == 2
    assert rotated.body["rotatedDate"] is not None
    assert rotated.body["certificate"]["fingerprint"] != created.body["certificate"]["fingerprint"]
    for form in _secret_forms(new):
        assert form not in rotated.text
    mismatch = {"certificateChainPem": new.pem, "privateKeyPem": leaf.key_pem}
    refused = await _edge(api, "PUT", f"{EDGE}/shop/certificate", mismatch, as_="editor")
    assert (refused.status, refused.type) == (422, "invalid-edge-certificate")


async def test_update_hostnames_and_origin(api: Api, pki: Pki, server_ca: Issued) -> None:
    leaf = pki.server(server_ca, ["shop.example.com"])
    await _edge(api, "POST", EDGE, _body(leaf, server_ca), as_="editor")
    body = {"hostnames": ["Shop.example.com", "x.example.com"], "origin": "h2c://127.0.0.1:9"}
    updated = await _edge(api, "PATCH", f"{EDGE}/shop", body, as_="editor")
    assert updated.status == 200, updated.body
    assert updated.body["hostnames"] == ["shop.example.com", "x.example.com"]
    assert updated.body["origin"] == "h2c://127.0.0.1:9"  # HTTP/2 with prior knowledge
    assert [w["pointer"] for w in updated.body["warnings"]] == ["/hostnames/1"]


async def test_alpn_defaults_to_both_is_set_on_create_and_patch_and_reaches_the_edge_config(
    api: Api, pki: Pki, server_ca: Issued, store: Store
) -> None:
    leaf = pki.server(server_ca, ["shop.example.com", "api.example.com"])
    default = await _edge(api, "POST", EDGE, _body(leaf, server_ca), as_="editor")
    assert default.body["alpn"] == ["h2", "http/1.1"]
    body = _body(leaf, server_ca, name="api", hostnames=["api.example.com"], alpn=["http/1.1"])
    created = await _edge(api, "POST", EDGE, body, as_="editor")
    assert created.status == 201, created.body
    assert created.body["alpn"] == ["http/1.1"]
    patched = await _edge(api, "PATCH", f"{EDGE}/shop", {"alpn": ["http/1.1", "h2"]}, as_="editor")
    assert patched.status == 200, patched.body
    assert patched.body["alpn"] == ["http/1.1", "h2"]  # the order is the server's preference
    origin_only = await _edge(api, "PATCH", f"{EDGE}/shop", {"origin": "http://h:2"}, as_="editor")
    assert origin_only.body["alpn"] == ["http/1.1", "h2"]  # a PATCH without alpn keeps it
    listed = await _edge(api, "GET", EDGE, as_="viewer")
    assert {c["name"]: c["alpn"] for c in listed.body["edgeCertificates"]} == {
        "api": ["http/1.1"],
        "shop": ["http/1.1", "h2"],
    }
    # What an edge node builds from the store: the same protocols, in the same order.
    async with store.transaction(write=False) as tx:
        edges = store_edges(await tx.list_edge_certificates(), {})
    assert {e.name: e.alpn for e in edges} == {"api": ("http/1.1",), "shop": ("http/1.1", "h2")}


@pytest.mark.parametrize(
    ("alpn", "type_", "pointer"),
    [
        ([], "invalid-alpn", "/alpn"),
        (["h3"], "invalid-alpn", "/alpn/0"),
        (["http/1.1", "HTTP/1.1"], "invalid-alpn", "/alpn/1"),
        (["h2", "http/1.1", "h2"], "invalid-alpn", "/alpn/2"),
        (["h2", 2], "wrong-type", "/alpn/1"),
        ("h2", "wrong-type", "/alpn"),
    ],
)
async def test_a_bad_alpn_is_a_400_naming_the_entry_on_create_and_patch(
    api: Api, pki: Pki, server_ca: Issued, alpn: Any, type_: str, pointer: str
) -> None:
    leaf = pki.server(server_ca, ["shop.example.com"])
    refused = await _edge(api, "POST", EDGE, _body(leaf, server_ca, alpn=alpn), as_="editor")
    assert (refused.status, refused.type) == (400, type_), refused.body
    assert refused.errors[0] == (type_, pointer)
    assert (await _edge(api, "GET", f"{EDGE}/shop", as_="viewer")).status == 404
    assert (await _edge(api, "POST", EDGE, _body(leaf, server_ca), as_="editor")).status == 201
    patch = await _edge(api, "PATCH", f"{EDGE}/shop", {"alpn": alpn}, as_="editor")
    assert (patch.status, patch.type) == (400, type_), patch.body
    assert patch.errors[0] == (type_, pointer)
    assert (await _edge(api, "GET", f"{EDGE}/shop", as_="viewer")).body["alpn"] == [
        "h2",
        "http/1.1",
    ]


async def test_config_declared_certificates_are_read_only(
    api: Api, pki: Pki, server_ca: Issued, fleet: Fleet, truststore: Truststore, clock: Clock
) -> None:
    node = await fleet.report("edge-1", binds=("partners",))
    assert node.bindings == (Binding("partners-cert", ("partners.example.com",), "partners"),)
    listed = await _edge(api, "GET", EDGE, as_="viewer")
    (declared,) = listed.body["edgeCertificates"]
    assert (declared["name"], declared["source"], declared["nodes"]) == (
        "partners-cert",
        "config",
        ["edge-1"],
    )
    assert declared["mutualAuthentication"]["STAGING"]["caSetName"] == "partners"
    assert declared["alpn"] is None  # the node's file says; nodes do not report it
    patch = await _edge(api, "PATCH", f"{EDGE}/partners-cert", {"origin": "http://h:1"})
    assert (patch.status, patch.type) == (409, "edge-certificate-read-only")
    leaf = pki.server(server_ca, ["shop.example.com"])
    same = await _edge(api, "POST", EDGE, _body(leaf, server_ca, name="partners-cert"))
    assert (same.status, same.type) == (409, "edge-certificate-name-taken")


async def test_without_a_key_encryption_key_nothing_is_stored(
    aiohttp_client: Callable[..., Any],
    store: Store,
    checker: OpenApiChecker,
    authenticator: TokenAuthenticator,
    pki: Pki,
    server_ca: Issued,
) -> None:
    app = create_admin_app(Truststore.build(store), authenticator)
    client: TestClient = await aiohttp_client(app)
    api = Api(client, checker, {role: token for role, (_, token) in TOKENS.items()})
    leaf = pki.server(server_ca, ["shop.example.com"])
    refused = await _edge(api, "POST", EDGE, _body(leaf, server_ca))
    assert (refused.status, refused.type) == (409, "key-encryption-key-missing")
    assert (await _edge(api, "GET", EDGE, as_="viewer")).body == {"edgeCertificates": []}


async def test_the_store_holds_the_key_sealed(
    api: Api, pki: Pki, server_ca: Issued, store: Store
) -> None:
    leaf = pki.server(server_ca, ["shop.example.com"])
    await _edge(api, "POST", EDGE, _body(leaf, server_ca), as_="editor")
    async with store.transaction(write=False) as tx:
        (cert,) = await tx.list_edge_certificates()
    dumped = json.dumps(cert.sealed_key.to_text()) + cert.chain_pem
    for form in _secret_forms(leaf):
        assert form not in dumped


# -- authorization rules in the binding body --------------------------------------------------

PATH = f"{EDGE}/shop/mutual-authentication/STAGING"
RULES: dict[str, Any] = {
    "mode": "report",
    "rules": [
        {
            "pathPrefix": "/api/",
            "methods": ["POST", "GET"],
            "allow": [{"sanUri": "spiffe://example.org/ns/*"}, {"fingerprintSha256": "AB" * 32}],
        }
    ],
}


async def test_rules_are_stored_normalised_shown_and_reach_the_edge_config(
    api: Any, pki: Pki, server_ca: Issued, fleet: Fleet, truststore: Truststore
) -> None:
    await _shop_and_partners(api, pki, server_ca)
    await fleet.report("edge-1")
    change = await _edge(api, "PUT", PATH, {"caSetName": "partners", "authorization": RULES})
    assert change.status == 202, change.body
    await fleet.apply_all("edge-1")
    got = await _edge(api, "GET", PATH, as_="viewer")
    shown = got.body["authorization"]
    assert (shown["mode"], shown["default"]) == ("report", "deny")
    rule = shown["rules"][0]
    assert rule["methods"] == ["GET", "POST"]
    assert rule["allow"][1] == {"fingerprintSha256": "ab" * 32}
    # What an edge node builds from the stored binding: the compiled policy.
    async with truststore.fleet.store.transaction(write=False) as tx:
        (binding,) = [b for b in await tx.list_bindings() if b.edge_certificate == "shop"]
    config = mutual_config(binding.auth)
    assert config.authorization is not None
    assert [r.prefix for r in config.authorization.rules] == [b"/api/"]
    assert mutual_auth(config) == binding.auth  # the snapshot's round trip
    # Without rules the binding has none, and the twin shows null.
    cleared = await _edge(api, "PUT", PATH, {"caSetName": "partners"})
    assert cleared.status == 202, cleared.body
    assert (await _edge(api, "GET", PATH, as_="viewer")).body["authorization"] is None


@pytest.mark.parametrize(
    ("authorization", "pointer", "detail"),
    [
        (
            {"rules": [{"pathPrefix": "/", "allow": [{"sanUri": ""}]}]},
            "/authorization/rules/0/allow/0/sanUri",
            "must not be empty",
        ),
        ({"mode": "audit"}, "/authorization/mode", 'must be "enforce" or "report"'),
        (
            {"rules": [{"pathPrefix": "/a/", "allow": [{"subject": {"XX": "a"}}]}]},
            "/authorization/rules/0/allow/0/subject/XX",
            "unknown attribute",
        ),
    ],
)
async def test_a_bad_authorization_is_a_400_naming_the_field(
    api: Any, pki: Pki, server_ca: Issued, authorization: dict[str, Any], pointer: str, detail: str
) -> None:
    await _shop_and_partners(api, pki, server_ca)
    reply = await _edge(api, "PUT", PATH, {"caSetName": "partners", "authorization": authorization})
    assert (reply.status, reply.type) == (400, "invalid-authorization")
    assert reply.errors == [("invalid-authorization", pointer)]
    assert detail in reply.body["detail"]
    assert (await _edge(api, "GET", PATH, as_="viewer")).status == 404
