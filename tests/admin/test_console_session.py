"""The console's sign-in (docs/api.md, Console): a token becomes an HttpOnly SameSite=Strict
session cookie (Secure and `__Host-` over TLS); the API accepts the cookie in place of the token,
with the session's CSRF token on every state-changing call; sessions end when idle, on sign-out,
and when their token leaves the configuration."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp.test_utils import TestClient

from edgeproxy.admin.app import create_admin_app
from edgeproxy.admin.auth import TokenAuthenticator
from edgeproxy.admin.sessions import COOKIE, MAX_AGE, MAX_SESSIONS, SECURE_COOKIE, SessionStore
from edgeproxy.config.model import HostPort
from edgeproxy.runtime.weblistener import WebListener
from edgeproxy.service.truststore import Truststore

from .steps import TOKENS

IDLE = 60.0
BASE = "/mtls-edge-truststore/v2"


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Any],
    truststore: Truststore,
    authenticator: TokenAuthenticator,
    ticks: Ticks,
) -> TestClient:
    app = create_admin_app(truststore, authenticator, sessions=SessionStore(IDLE, ticks))
    return await aiohttp_client(app)


async def sign_in(client: TestClient, role: str) -> tuple[str, str]:
    """(session cookie value, CSRF token) of a new session for `role`'s token."""
    reply = await client.post("/console/session", json={"token": TOKENS[role][1]})
    assert reply.status == 201
    body = await reply.json()
    cookie = SimpleCookie(reply.headers["Set-Cookie"])[COOKIE]
    return cookie.value, body["csrfToken"]


def jar(session: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={session}"}


async def test_sign_in_sets_an_httponly_strict_cookie_and_never_echoes_the_token(
    client: TestClient,
) -> None:
    reply = await client.post("/console/session", json={"token": TOKENS["editor"][1]})
    assert reply.status == 201
    body = await reply.json()
    assert (body["name"], body["role"], body["csrfHeader"]) == (
        TOKENS["editor"][0],
        "editor",
        "X-CSRF-Token",
    )
    raw = reply.headers["Set-Cookie"]
    cookie = SimpleCookie(raw)[COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert not cookie["secure"]  # plain HTTP on loopback; Secure over TLS (below)
    assert TOKENS["editor"][1] not in raw + await reply.text()
    assert len(cookie.value) >= 40
    assert cookie.value != body["csrfToken"]


async def test_the_cookie_reads_the_api_and_writes_only_with_the_csrf_token(
    client: TestClient,
) -> None:
    session, csrf = await sign_in(client, "editor")
    assert (await client.get(f"{BASE}/ca-sets", headers=jar(session))).status == 200
    body = {"caSetName": "from-console"}
    missing = await client.post(f"{BASE}/ca-sets", json=body, headers=jar(session))
    assert (missing.status, (await missing.json())["type"].rsplit("/", 1)[1]) == (
        403,
        "csrf-token-missing",
    )
    wrong = await client.post(
        f"{BASE}/ca-sets", json=body, headers={**jar(session), "X-CSRF-Token": csrf[:-1] + "x"}
    )
    assert (await wrong.json())["type"].endswith("/csrf-token-invalid")
    listed = await (await client.get(f"{BASE}/ca-sets", headers=jar(session))).json()
    assert listed["caSets"] == []  # neither refused call created anything
    made = await client.post(
        f"{BASE}/ca-sets", json=body, headers={**jar(session), "X-CSRF-Token": csrf}
    )
    assert made.status == 201
    assert (await made.json())["createdBy"] == TOKENS["editor"][0]


async def test_a_viewer_session_keeps_the_viewer_role(client: TestClient) -> None:
    session, csrf = await sign_in(client, "viewer")
    reply = await client.post(
        f"{BASE}/ca-sets",
        json={"caSetName": "forged"},
        headers={**jar(session), "X-CSRF-Token": csrf},
    )
    assert (reply.status, (await reply.json())["type"].rsplit("/", 1)[1]) == (
        403,
        "insufficient-role",
    )


async def test_a_bearer_token_wins_over_the_cookie(client: TestClient) -> None:
    session, _ = await sign_in(client, "viewer")
    reply = await client.post(
        f"{BASE}/ca-sets",
        json={"caSetName": "by-bearer"},
        headers={**jar(session), "Authorization": f"Bearer {TOKENS['admin'][1]}"},
    )
    assert reply.status == 201
    assert (await reply.json())["createdBy"] == TOKENS["admin"][0]


async def test_an_idle_session_ends_and_a_used_one_lives_on(
    client: TestClient, ticks: Ticks
) -> None:
    session, _ = await sign_in(client, "viewer")
    for _ in range(3):  # each use restarts the idle clock
        ticks.now += IDLE - 1
        assert (await client.get(f"{BASE}/ca-sets", headers=jar(session))).status == 200
    ticks.now += IDLE + 1
    reply = await client.get(f"{BASE}/ca-sets", headers=jar(session))
    assert (reply.status, (await reply.json())["type"].rsplit("/", 1)[1]) == (
        401,
        "session-expired",
    )
    assert (await client.get("/console/session", headers=jar(session))).status == 401


async def test_sign_out_ends_the_session_and_clears_the_cookie(client: TestClient) -> None:
    session, csrf = await sign_in(client, "admin")
    refused = await client.delete("/console/session", headers=jar(session))
    assert refused.status == 403  # sign-out changes state: it needs the CSRF token too
    reply = await client.delete("/console/session", headers={**jar(session), "X-CSRF-Token": csrf})
    assert reply.status == 204
    cleared = SimpleCookie(reply.headers["Set-Cookie"])[COOKIE]
    assert cleared.value == ""
    assert cleared["max-age"] == "0"
    assert (await client.get(f"{BASE}/ca-sets", headers=jar(session))).status == 401


async def test_a_token_removed_by_reload_ends_its_sessions(
    client: TestClient, authenticator: TokenAuthenticator
) -> None:
    session, _ = await sign_in(client, "admin")
    authenticator.replace(())
    reply = await client.get(f"{BASE}/ca-sets", headers=jar(session))
    assert (reply.status, (await reply.json())["type"].rsplit("/", 1)[1]) == (401, "invalid-token")


async def test_sign_in_refuses_a_bad_token_and_a_form_post(client: TestClient) -> None:
    bad = await client.post("/console/session", json={"token": "nope"})
    assert bad.status == 401
    assert "Set-Cookie" not in bad.headers
    form = await client.post("/console/session", data={"token": TOKENS["admin"][1]})
    assert form.status == 400
    assert "Set-Cookie" not in form.headers
    assert (await form.json())["type"].endswith("/unsupported-media-type")


async def test_the_console_page_is_served_with_its_own_policy(client: TestClient) -> None:
    root = await client.get("/", allow_redirects=False)
    assert (root.status, root.headers["Location"]) == (302, "/console/")
    page = await client.get("/console/")
    assert page.status == 200
    assert page.content_type == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["X-Frame-Options"] == "DENY"
    script = await client.get("/console/static/app.js")
    assert (script.status, script.content_type) == (200, "text/javascript")
    for path in ("/console/static/..%2fconsole.py", "/console/static/nope.js"):
        assert (await client.get(path)).status == 404


def test_the_store_drops_the_least_recently_used_past_its_cap_and_ends_old_sessions() -> None:
    ticks = Ticks()
    store = SessionStore(IDLE, ticks)
    first = store.create("a" * 64)
    for _ in range(MAX_SESSIONS):
        ticks.now += 0.001
        store.create("b" * 64)
    assert len(store) == MAX_SESSIONS
    with pytest.raises(Exception, match="sign in again"):
        store.use(first.id, "GET", None)
    busy = store.create("c" * 64)
    for _ in range(int(MAX_AGE / (IDLE / 2)) + 1):
        ticks.now += IDLE / 2
        if ticks.now - busy.created > MAX_AGE:
            break
        store.use(busy.id, "GET", None)
    with pytest.raises(Exception, match="sign in again"):
        store.use(busy.id, "GET", None)


@pytest.fixture
async def tls_listener(
    truststore: Truststore, authenticator: TokenAuthenticator
) -> AsyncIterator[tuple[WebListener, ssl.SSLContext]]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    listener = WebListener(
        create_admin_app(truststore, authenticator),
        HostPort("127.0.0.1", 0),
        key="admin.listen",
        ssl_context=server,
    )
    await listener.start()
    yield listener, client
    await listener.stop()


async def test_over_tls_the_cookie_is_secure_and_host_prefixed(
    tls_listener: tuple[WebListener, ssl.SSLContext],
) -> None:
    listener, context = tls_listener
    async with aiohttp.ClientSession() as http:
        url = f"https://127.0.0.1:{listener.port}"
        async with http.post(
            f"{url}/console/session", json={"token": TOKENS["viewer"][1]}, ssl=context
        ) as reply:
            assert reply.status == 201
            cookie = SimpleCookie(reply.headers["Set-Cookie"])[SECURE_COOKIE]
        assert cookie["secure"]
        assert cookie["httponly"]
        assert cookie["samesite"] == "Strict"
        headers = {"Cookie": f"{SECURE_COOKIE}={cookie.value}"}
        async with http.get(f"{url}{BASE}/ca-sets", headers=headers, ssl=context) as reply:
            assert reply.status == 200
