"""Authentication, roles and response hardening (docs/api.md "Auth", docs/security.md),
table-driven over every route."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from edgeproxy.admin.app import create_admin_app
from edgeproxy.admin.auth import TokenAuthenticator
from edgeproxy.domain.model import Role
from edgeproxy.service.truststore import Truststore
from support.admin import Api

from .steps import TOKENS, every_route, new_set

ROLES = list(Role)


def _id(case: tuple[str, str, Role]) -> str:
    return f"{case[0]} {case[1]}"


@pytest.mark.parametrize("case", every_route(), ids=_id)
async def test_no_token_is_401_with_www_authenticate(api: Api, case: tuple) -> None:
    method, path, _ = case
    reply = await api.call(method, path, as_=None)
    assert (reply.status, reply.type) == (401, "missing-token")
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="edgeproxy"'


@pytest.mark.parametrize(
    "case",
    [(m, p, r, role) for m, p, r in every_route() for role in ROLES if role.rank < r.rank],
    ids=lambda c: f"{c[3].value} {c[0]} {c[1]}",
)
async def test_a_role_below_the_route_is_403(api: Api, case: tuple) -> None:
    method, path, needed, role = case
    reply = await api.call(method, path, as_=role.value)
    assert (reply.status, reply.type) == (403, "insufficient-role")
    assert needed.value in reply.body["detail"]


@pytest.mark.parametrize("case", every_route(), ids=_id)
async def test_the_role_a_route_needs_gets_past_auth(api: Api, case: tuple) -> None:
    method, path, needed = case
    reply = await api.call(method, path, as_=needed.value)
    assert reply.status not in (401, 403)


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-known-token",
        f"Bearer {TOKENS['admin'][1]}x",
        # The configuration holds SHA-256 digests: sending the digest itself must not work.
        f"Bearer {hashlib.sha256(TOKENS['admin'][1].encode()).hexdigest()}",
        f"Basic {TOKENS['admin'][1]}",
        "Bearer ",
        TOKENS["admin"][1],
    ],
    ids=["unknown", "suffixed", "digest", "basic", "empty", "no-scheme"],
)
async def test_wrong_tokens_are_401(api: Api, authorization: str) -> None:
    reply = await api.get("/ca-sets", as_=None, headers={"Authorization": authorization})
    assert reply.status == 401
    assert reply.type in ("missing-token", "invalid-token")
    assert TOKENS["admin"][1] not in reply.text


async def test_the_right_token_in_any_case_of_the_scheme_is_200(api: Api) -> None:
    for scheme in ("Bearer", "bearer"):
        headers = {"Authorization": f"{scheme} {TOKENS['viewer'][1]}"}
        assert (await api.get("/ca-sets", as_=None, headers=headers)).status == 200


async def test_the_actor_is_the_token_name(api: Api) -> None:
    await new_set(api, "by-editor")
    reply = await api.post("/ca-sets", {"caSetName": "by-admin"}, as_="admin")
    created = {s["caSetName"]: s["createdBy"] for s in (await api.get("/ca-sets")).body["caSets"]}
    assert created == {"by-editor": "ci-editor", "by-admin": "ops-admin"}
    assert reply.body["createdBy"] == "ops-admin"


@pytest.mark.parametrize(
    ("path", "as_", "status"),
    [("/ca-sets", "viewer", 200), ("/ca-sets", None, 401), ("/no-such", "viewer", 404)],
)
async def test_security_headers_on_every_kind_of_response(
    api: Api, path: str, as_: str | None, status: int
) -> None:
    reply = await api.get(path, as_=as_)
    assert reply.status == status
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
    assert reply.headers["Cache-Control"] == "no-store"


async def test_openapi_document_is_public_and_the_api_is_not(api: Api) -> None:
    assert (await api.get("/openapi.json", as_=None, base=False)).status == 200
    assert (await api.get("/nodes", as_=None)).status == 401


async def test_a_route_that_declares_no_role_is_refused_even_to_an_admin(
    aiohttp_client: Callable[..., Any],
    truststore: Truststore,
    authenticator: TokenAuthenticator,
) -> None:
    async def unmarked(request: web.Request) -> web.Response:
        return web.Response(text="reached")

    app = create_admin_app(truststore, authenticator)
    app.router.add_get("/unmarked", unmarked)
    client = await aiohttp_client(app)
    admin_token = TOKENS["admin"][1]
    response = await client.get("/unmarked", headers={"Authorization": f"Bearer {admin_token}"})
    assert response.status == 403
    assert (await response.json())["type"].endswith("route-not-authorised")
