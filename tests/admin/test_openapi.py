"""The OpenAPI document is what is served: same routes, same roles, valid OpenAPI 3.1.

Every response of every test is checked against it by the `api` fixture (see api.py); these
tests check the document itself and the checker's own teeth.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate as validate_openapi

from edgeproxy.admin.console import CONSOLE_HANDLERS
from edgeproxy.admin.openapi import openapi_document
from edgeproxy.admin.routes import REQUIRED_ROLE
from support.admin import BASE, Api, OpenApiChecker, Reply
from support.pki import Pki

from .steps import Fleet, new_set, new_version


def _app(api: Api) -> web.Application:
    """The application under test (these tests drive it in process, through a TestClient)."""
    assert isinstance(api.client, TestClient)
    app = api.client.app
    assert app is not None
    return app


def _served(api: Api) -> dict[tuple[str, str], Any]:
    """(method, path) → handler of every API route the running app serves, HEAD twins and the
    console's pages and sign-in aside (docs/api.md, Console: not part of the API)."""
    router = _app(api).router
    return {
        (route.method, route.resource.canonical): route.handler
        for route in router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and route.handler not in CONSOLE_HANDLERS
    }


def _documented() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in openapi_document()["paths"].items()
        for method, operation in item.items()
    }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def test_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    validate_openapi(document)


async def test_documented_operations_are_exactly_the_served_routes(api: Api) -> None:
    assert set(_documented()) == set(_served(api))


async def test_every_get_also_answers_head_as_the_document_says(api: Api) -> None:
    router = _app(api).router
    heads = {
        r.resource.canonical
        for r in router.routes()
        if r.method == "HEAD" and r.handler not in CONSOLE_HANDLERS and r.resource is not None
    }
    gets = {path for method, path in _served(api) if method == "GET"}
    assert heads == gets
    assert "Every GET also answers HEAD" in openapi_document()["info"]["description"]


async def test_roles_and_operation_ids_match_the_handlers(api: Api) -> None:
    documented = _documented()
    for key, handler in _served(api).items():
        if key == ("GET", "/openapi.json"):
            continue
        operation = documented[key]
        assert operation["operationId"] == _camel(handler.__name__), key
        assert operation["x-required-role"] == REQUIRED_ROLE[handler].value, key
        assert f"`{REQUIRED_ROLE[handler].value}` role" in operation["description"], key
        # 403 is possible exactly when a lesser role exists.
        assert ("403" in operation["responses"]) == (REQUIRED_ROLE[handler].value != "viewer")


def test_every_operation_needs_the_bearer_token_but_the_document_itself() -> None:
    document = openapi_document()
    assert document["security"] == [{"bearer": []}, {"consoleSession": []}]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert document["components"]["securitySchemes"]["consoleSession"]["in"] == "cookie"
    for (_, path), operation in _documented().items():
        assert ("security" in operation) == (path == "/openapi.json")
        if path != "/openapi.json":
            assert "401" in operation["responses"]


def test_component_schemas_cover_every_shape() -> None:
    names = set(openapi_document()["components"]["schemas"])
    assert names >= {
        "CaSet",
        "Version",
        "Certificate",
        "Activation",
        "Activity",
        "DeleteStatus",
        "Association",
        "Node",
        "ValidationResult",
        "Problem",
    }


def test_request_bodies_are_closed_objects() -> None:
    schemas = openapi_document()["components"]["schemas"]
    for name in ("CaSetCreate", "VersionBody", "ActivateBody", "DeactivateBody"):
        assert schemas[name]["additionalProperties"] is False, name
    item = schemas["VersionBody"]["properties"]["certificates"]["items"]
    assert item["additionalProperties"] is False


async def test_openapi_json_is_public_and_is_the_document(api: Api) -> None:
    reply = await api.get("/openapi.json", as_=None, base=False)
    assert reply.status == 200
    assert reply.body == openapi_document()


async def test_an_unserved_path_is_a_problem_not_an_operation(api: Api) -> None:
    reply = await api.get("/no-such-thing")
    assert (reply.status, reply.content_type) == (404, "application/problem+json")
    reply = await api.call("PATCH", "/ca-sets")
    assert reply.status == 405
    assert "POST" in reply.headers["Allow"]


# -- the checker has teeth ----------------------------------------------------------------------


def _reply(status: int, body: Any, content_type: str = "application/json") -> Reply:
    headers = {
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    }
    return Reply(status, headers, content_type, "x", body)


def test_checker_refuses_an_undocumented_field(checker: OpenApiChecker) -> None:
    body: dict[str, Any] = {"caSets": []}
    checker.check("GET", "/mtls-edge-truststore/v2/ca-sets", _reply(200, body))
    with pytest.raises(AssertionError, match="documented schema"):
        checker.check("GET", "/mtls-edge-truststore/v2/ca-sets", _reply(200, {**body, "x": 1}))


def test_checker_refuses_an_undocumented_status(checker: OpenApiChecker) -> None:
    with pytest.raises(AssertionError, match="undocumented status"):
        checker.check("GET", "/mtls-edge-truststore/v2/nodes", _reply(404, {}))


def test_checker_refuses_a_bad_timestamp(checker: OpenApiChecker) -> None:
    date = checker.validator({"$ref": "#/components/schemas/Activity"})
    activity = {
        "type": "CREATE_CA_SET",
        "network": None,
        "version": None,
        "activityDate": "2026-01-02T03:04:05Z",
        "activityBy": "ops",
        "edgeCertificate": None,
    }
    assert date.is_valid(activity)
    assert not date.is_valid({**activity, "activityDate": "yesterday"})


def test_checker_refuses_a_missing_security_header(checker: OpenApiChecker) -> None:
    reply = Reply(200, {}, "application/json", "x", {"nodes": []})
    with pytest.raises(AssertionError, match="X-Frame-Options"):
        checker.check("GET", "/mtls-edge-truststore/v2/nodes", reply)


# -- what the schemas leave to words: declared, then held to ---------------------------------


async def test_an_empty_activated_on_is_refused_as_its_enum_says(api: Api) -> None:
    """`activatedOn=` was read as absent: every set listed, against the documented enum."""
    await new_set(api, "listed")
    assert len((await api.get("/ca-sets")).body["caSets"]) == 1  # the twin: no filter at all
    reply = await api.get("/ca-sets", params={"activatedOn": ""})
    assert (reply.status, reply.type) == (400, "invalid-network")
    staging = await api.get("/ca-sets", params={"activatedOn": "STAGING"})
    assert (staging.status, staging.body["caSets"]) == (200, [])


@pytest.mark.parametrize(
    ("path", "body", "problem"),
    [
        ("/ca-sets/{id}/versions", {"certificates": []}, "certificate-validation-failure-create"),
        ("/ca-sets/{id}/versions/1", {"certificates": []}, "certificate-validation-failure-update"),
        ("/ca-sets/{id}/crls", {"crlPem": ""}, "crl-validation-failure"),
        ("/certificates/validate", {"certificates": []}, "certificate-validation-failure"),
    ],
    ids=["create-empty", "replace-empty", "empty-crl", "validate-empty"],
)
async def test_well_formed_empty_values_are_rules_not_shapes(
    api: Api, pki: Pki, path: str, body: dict[str, Any], problem: str
) -> None:
    """The schema accepts these bodies; the server answers the validation failure's 400 (the
    reference API's type, the rule in the error), not a malformed-body 400, and the document
    says so in words."""
    set_id = await new_set(api, "empty-values")
    await new_version(api, set_id, pki.ca().pem)
    full = path.format(id=set_id)
    reply = await api.call("PUT" if full.endswith("/1") else "POST", full, body)
    assert (reply.status, reply.type) == (400, problem)
    assert [e[0] for e in reply.errors] == [
        "malformed-pem" if "crl" in problem else "no-certificates"
    ]
    operation = api.checker.operation("PUT" if full.endswith("/1") else "POST", BASE + full)
    assert operation is not None
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert api.checker.validator(schema).is_valid(body)
    assert '""' in operation["description"] or "[]" in operation["description"]


async def test_versions_of_a_deleted_set_say_they_are_history(
    api: Api, pki: Pki, fleet: Fleet
) -> None:
    set_id = await new_set(api, "to-delete")
    await new_version(api, set_id, pki.ca().pem)  # never activated: editable while the set lives
    live = await api.get(f"/ca-sets/{set_id}/versions/1")
    assert (live.body["editable"], live.body["history"]) == (True, False)
    assert (await api.delete(f"/ca-sets/{set_id}")).status == 202
    deleting = await api.get(f"/ca-sets/{set_id}/versions/1")
    assert (deleting.body["editable"], deleting.body["history"]) == (False, False)
    await fleet.reconcile()
    listed = await api.get(f"/ca-sets/{set_id}/versions")
    got = await api.get(f"/ca-sets/{set_id}/versions/1")
    for version in (*listed.body["versions"], got.body):
        assert (version["editable"], version["history"]) == (False, True)
    refused = await api.put(
        f"/ca-sets/{set_id}/versions/1", {"certificates": [{"certificatePem": pki.ca().pem}]}
    )
    assert (refused.status, refused.type) == (409, "ca-set-deleted")
    described = api.checker.operation("GET", f"{BASE}/ca-sets/{set_id}/versions")
    assert described is not None
    assert "history" in described["description"]


def test_checker_refuses_a_query_value_the_server_should_have_refused(
    checker: OpenApiChecker,
) -> None:
    reply = _reply(200, {"caSets": []})
    checker.check("GET", f"{BASE}/ca-sets", reply, query={"activatedOn": "STAGING"})
    with pytest.raises(AssertionError, match="which its schema refuses"):
        checker.check("GET", f"{BASE}/ca-sets", reply, query={"activatedOn": ""})
