"""The OpenAPI document is what is served: same routes, same roles, valid OpenAPI 3.1.

Every response of every test is checked against it by the `api` fixture (see api.py); these
tests check the document itself and the checker's own teeth.
"""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate as validate_openapi

from edgeproxy.admin.openapi import openapi_document
from edgeproxy.admin.routes import REQUIRED_ROLE
from support.admin import Api, OpenApiChecker, Reply


def _served(api: Api) -> dict[tuple[str, str], Any]:
    """(method, path) → handler of every route the running app serves, HEAD twins aside."""
    router = api.client.app.router
    return {
        (route.method, route.resource.canonical): route.handler
        for route in router.routes()
        if route.method != "HEAD" and route.resource is not None
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
    router = api.client.app.router
    heads = {r.resource.canonical for r in router.routes() if r.method == "HEAD"}
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
    assert document["security"] == [{"bearer": []}]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
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
    body = {"caSets": []}
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
    }
    assert date.is_valid(activity)
    assert not date.is_valid({**activity, "activityDate": "yesterday"})


def test_checker_refuses_a_missing_security_header(checker: OpenApiChecker) -> None:
    reply = Reply(200, {}, "application/json", "x", {"nodes": []})
    with pytest.raises(AssertionError, match="X-Frame-Options"):
        checker.check("GET", "/mtls-edge-truststore/v2/nodes", reply)
