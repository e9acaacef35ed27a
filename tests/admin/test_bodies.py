"""Strict requests (docs/api.md): unknown fields and query parameters, wrong types, bad JSON, size
cap.

The `api` fixture also checks each body against the documented request schema: what the server
refuses as malformed the schema refuses, and what it accepts the schema accepts.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from edgeproxy.admin.openapi import openapi_document
from support.admin import Api
from support.pki import Pki

from .steps import every_route, new_set, new_version, version_body

MiB = 1024 * 1024


@pytest.mark.parametrize(
    ("body", "error", "pointer"),
    [
        ({"caSetName": "ok-name", "colour": "red"}, "unknown-field", "/colour"),
        ({"caSetName": 42}, "wrong-type", "/caSetName"),
        ({"caSetName": None}, "wrong-type", "/caSetName"),
        ({"caSetName": "ok-name", "description": 7}, "wrong-type", "/description"),
        ({"description": "no name"}, "missing-field", "/caSetName"),
        (["caSetName"], "malformed-json", ""),
    ],
    ids=["unknown", "number", "null", "description", "missing", "array"],
)
async def test_create_ca_set_body_errors_are_400_with_a_pointer(
    api: Api, body: Any, error: str, pointer: str
) -> None:
    reply = await api.post("/ca-sets", body)
    assert (reply.status, reply.type) == (400, error)
    assert reply.errors == [(error, pointer)]
    assert (await api.get("/ca-sets")).body["caSets"] == []


async def test_the_valid_twin_is_accepted_with_null_for_absent(api: Api) -> None:
    reply = await api.post("/ca-sets", {"caSetName": "ok-name", "description": None})
    assert (reply.status, reply.body["description"]) == (201, None)


@pytest.mark.parametrize(
    ("entry", "error", "pointer"),
    [
        ({"certificatePem": "x", "label": "y"}, "unknown-field", "/certificates/0/label"),
        ({"certificatePem": ["x"]}, "wrong-type", "/certificates/0/certificatePem"),
        ("just a string", "wrong-type", "/certificates/0"),
        ({}, "missing-field", "/certificates/0/certificatePem"),
    ],
)
async def test_version_certificate_entry_errors(
    api: Api, pki: Pki, entry: Any, error: str, pointer: str
) -> None:
    set_id = await new_set(api)
    reply = await api.post(f"/ca-sets/{set_id}/versions", {"certificates": [entry]})
    assert reply.status == 400
    assert reply.errors == [(error, pointer)]


async def test_version_option_of_the_wrong_type(api: Api, pki: Pki) -> None:
    set_id = await new_set(api)
    body = version_body(pki.ca().pem, allowInsecureSha1="yes")
    reply = await api.post(f"/ca-sets/{set_id}/versions", body)
    assert reply.errors == [("wrong-type", "/allowInsecureSha1")]
    body["allowInsecureSha1"] = False
    assert (await api.post(f"/ca-sets/{set_id}/versions", body)).status == 201


@pytest.mark.parametrize(
    "raw",
    [
        b'{"caSetName": "x",',
        b"{'caSetName': 'single-quoted'}",
        b"",
        bytes(range(128, 256)),  # not UTF-8 text at all
        b"[" * 200_000 + b"]" * 200_000,  # deeper than the parser's stack
    ],
    ids=["truncated", "single-quotes", "empty", "garbage-bytes", "deep-nesting"],
)
async def test_malformed_json_is_400(api: Api, raw: bytes) -> None:
    reply = await api.post("/ca-sets", data=raw)
    assert (reply.status, reply.type) == (400, "malformed-json")


async def test_two_mib_body_is_413_and_a_body_under_the_cap_is_not(api: Api) -> None:
    reply = await api.post("/ca-sets", data=b'{"caSetName": "big", "pad": "' + b"x" * 2 * MiB)
    assert (reply.status, reply.content_type) == (413, "application/problem+json")
    # Insignificant whitespace up to just under 1 MiB: the body is read and accepted.
    padded = b'{"caSetName": "padded"' + b" " * (MiB - 100) + b"}"
    assert (await api.post("/ca-sets", data=padded)).status == 201


@pytest.mark.parametrize(("network", "status"), [("STAGING", 202), ("staging", 400), (1, 400)])
async def test_activate_network_must_be_the_enum(
    api: Api, pki: Pki, network: Any, status: int
) -> None:
    set_id = await new_set(api)
    version = await new_version(api, set_id, pki.ca().pem)
    reply = await api.post(f"/ca-sets/{set_id}/versions/{version}/activate", {"network": network})
    assert reply.status == status


async def test_deactivate_force_must_be_a_boolean(api: Api, pki: Pki) -> None:
    set_id = await new_set(api)
    version = await new_version(api, set_id, pki.ca().pem)
    path = f"/ca-sets/{set_id}/versions/{version}"
    await api.post(f"{path}/activate", {"network": "STAGING"})
    refused = await api.post(f"{path}/deactivate", {"network": "STAGING", "force": "true"})
    assert refused.errors == [("wrong-type", "/force")]
    accepted = await api.post(f"{path}/deactivate", {"network": "STAGING", "force": True})
    assert accepted.status == 202


@pytest.mark.parametrize("case", every_route(), ids=lambda case: f"{case[0]} {case[1]}")
async def test_unknown_query_parameter_is_400_on_every_route(api: Api, case: tuple) -> None:
    method, path, _ = case
    reply = await api.call(method, path, params={"verbose": "1"})
    assert (reply.status, reply.type) == (400, "unknown-query-parameter")


def _body_routes() -> list[tuple[str, str]]:
    """(method, full path) of every documented operation that takes a body."""
    values = {"{caSetId}": "1", "{version}": "1", "{name}": "shop", "{network}": "STAGING"}
    return [
        (method.upper(), functools.reduce(lambda p, kv: p.replace(*kv), values.items(), path))
        for path, item in openapi_document()["paths"].items()
        for method, operation in item.items()
        if "requestBody" in operation
    ]


@pytest.mark.parametrize(("method", "path"), _body_routes())
async def test_every_body_is_capped_at_1_mib(api: Api, method: str, path: str) -> None:
    reply = await api.call(method, path, data=b"[" + b" " * (MiB + 1) + b"]", base=False)
    assert (reply.status, reply.type) == (413, "request-entity-too-large")
    under = await api.call(method, path, data=b"[" + b" " * (MiB - 10) + b"]", base=False)
    assert (under.status, under.type) == (400, "malformed-json")  # read and parsed: not an object
