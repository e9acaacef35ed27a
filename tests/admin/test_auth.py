"""Authentication, roles and response hardening (docs/api.md "Auth", docs/security.md),
table-driven over every route."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from edgeproxy.admin.app import create_admin_app
from edgeproxy.admin.auth import TokenAuthenticator
from edgeproxy.config.model import HostPort
from edgeproxy.domain.model import Role
from edgeproxy.runtime.weblistener import WebListener
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


# Raw sockets from here on: aiohttp's client refuses to send most of these bytes. The admin app
# runs behind the node's own listener (runtime.weblistener), as in production.

SECRET = b"s3cr3t-marker"
PATH = b"/mtls-edge-truststore/v2/ca-sets"


@dataclass
class RawReply:
    status: int
    headers: dict[str, str]
    body: bytes


@pytest.fixture
async def listener(
    truststore: Truststore, authenticator: TokenAuthenticator
) -> AsyncIterator[WebListener]:
    app = create_admin_app(truststore, authenticator)
    served = WebListener(app, HostPort("127.0.0.1", 0), key="admin.listen")
    await served.start()
    yield served
    await served.stop()


async def raw_request(port: int, head: bytes) -> RawReply:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        # Every reply here closes the connection (Connection: close or an error that forces it).
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    header_block, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = header_block.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return RawReply(int(status_line.split()[1]), headers, body)


def _request(*authorization: bytes) -> bytes:
    fields = b"".join(b"Authorization: " + value + b"\r\n" for value in authorization)
    return b"GET " + PATH + b" HTTP/1.1\r\nHost: admin\r\n" + fields + b"Connection: close\r\n\r\n"


def _echoes(reply: RawReply, caplog: pytest.LogCaptureFixture, secret: bytes) -> list[str]:
    found = [f"body: {reply.body[:80]!r}"] if secret in reply.body else []
    for record in caplog.records:
        text = record.getMessage() + repr(vars(record))
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        if secret.decode() in text:
            found.append(f"log: {record.name} {record.getMessage()}")
    return found


@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer " + SECRET + b"\xff",  # not UTF-8: a 500 with a traceback once
        b"Bearer " + SECRET + b"\xc3",  # a truncated UTF-8 sequence
        b"Bearer " + SECRET + b"\t" + SECRET,  # HTAB is legal in a field value, not in a token
        b"Bearer " + SECRET + b" " + SECRET,  # two words
        b"Bearer \xe2\x80\x8b" + SECRET,  # valid UTF-8, invisible: no token of ours
        b"Bearer\t" + SECRET,  # no space after the scheme
        b"Bearer",
        b"",
    ],
    ids=[
        "non-utf8",
        "truncated-utf8",
        "inner-tab",
        "two-words",
        "zero-width",
        "tab",
        "bare",
        "empty",
    ],
)
async def test_a_malformed_authorization_is_401_problem_json_and_never_echoed(
    listener: WebListener, caplog: pytest.LogCaptureFixture, authorization: bytes
) -> None:
    with caplog.at_level(logging.DEBUG):
        reply = await raw_request(listener.port, _request(authorization))
    assert reply.status == 401
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert json.loads(reply.body)["type"].rsplit("/", 1)[1] in ("missing-token", "invalid-token")
    assert not [r for r in caplog.records if r.exc_info]  # the client's mistake, not a trace
    assert _echoes(reply, caplog, SECRET) == []


async def test_two_authorization_headers_are_401_even_with_a_good_first(
    listener: WebListener,
) -> None:
    good = b"Bearer " + TOKENS["admin"][1].encode()
    assert (await raw_request(listener.port, _request(good))).status == 200  # the twin
    reply = await raw_request(listener.port, _request(good, b"Bearer " + SECRET))
    assert reply.status == 401
    assert json.loads(reply.body)["type"].endswith("/invalid-token")


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (_request(b"Bearer " + SECRET + b"\x00"), 400),  # aiohttp's parser quoted the line
        (_request(b"Bearer " + SECRET * 5000), 431),  # 64 KB: the same, truncated to 100 bytes
        (_request(b"Bearer " + SECRET + b"\r"), 400),  # a bare CR
        (_request(b"Bearer " + SECRET + b"\x01"), 400),  # a control character
        (_request(b"Bearer " + SECRET + b"\x7f"), 400),  # DEL
        (
            b"GET " + PATH + b" HTTP/1.1\r\nHost: admin\r\nX-" + SECRET + b"\x7f: 1\r\n\r\n",
            400,
        ),  # a bad header name
        (b"GET " + PATH + b"?" + SECRET * 1000 + b" HTTP/1.1\r\nHost: admin\r\n\r\n", 431),
    ],
    ids=["nul", "64k-token", "bare-cr", "control", "del", "bad-name", "long-target"],
)
async def test_a_request_the_parser_refuses_gets_a_generic_problem_and_no_echo(
    listener: WebListener, caplog: pytest.LogCaptureFixture, head: bytes, status: int
) -> None:
    with caplog.at_level(logging.DEBUG):
        reply = await raw_request(listener.port, head)
    assert reply.status == status
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert json.loads(reply.body)["status"] == status
    assert _echoes(reply, caplog, SECRET) == []
    refused = [r for r in caplog.records if r.getMessage() == "malformed HTTP request refused"]
    assert len(refused) == 1
    assert not refused[0].exc_info
