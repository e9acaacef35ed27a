"""The operator console (docs/api.md#console): its static files, and the sign-in/sign-out that turn
a token into a session cookie. Every other action of the console is a call to the public API."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from edgeproxy.admin import bodies
from edgeproxy.admin.keys import AUTH, SESSIONS
from edgeproxy.admin.sessions import COOKIE, CSRF_HEADER, SECURE_COOKIE, ConsoleSession
from edgeproxy.domain.errors import BadRequest, Unauthorized

STATIC = Path(__file__).parent / "static"
PREFIX = "/console"
_FILE = re.compile(r"[a-z0-9-]+\.(html|js|css|svg|png)")
_TYPES = {
    "html": "text/html",
    "js": "text/javascript",
    "css": "text/css",
    "svg": "image/svg+xml",
    "png": "image/png",
}
# The console's own pages load only their own scripts and styles, and talk only to this origin.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)

console_routes = web.RouteTableDef()


def cookie_name(request: web.Request) -> str:
    return SECURE_COOKIE if request.secure else COOKIE


def _session_body(request: web.Request, session: ConsoleSession) -> dict[str, object]:
    principal = request.app[AUTH].principal(session.digest)
    return {
        "name": principal.name,
        "role": principal.role.value,
        "csrfToken": session.csrf,
        "csrfHeader": CSRF_HEADER,
        "idleTimeoutSeconds": request.app[SESSIONS].idle_timeout,
    }


def _static(name: str) -> web.Response:
    kind = name.rsplit(".", 1)[-1]
    path = STATIC / name
    if not _FILE.fullmatch(name) or not path.is_file():
        raise web.HTTPNotFound()
    response = web.Response(body=path.read_bytes(), content_type=_TYPES[kind])
    if kind == "html":
        response.headers["Content-Security-Policy"] = CONSOLE_CSP
    return response


@console_routes.get("/")
async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound(f"{PREFIX}/")


@console_routes.get(f"{PREFIX}/")
async def console_page(request: web.Request) -> web.Response:
    return _static("index.html")


@console_routes.get(f"{PREFIX}/static/{{name}}")
async def console_file(request: web.Request) -> web.Response:
    return _static(request.match_info["name"])


@console_routes.post(f"{PREFIX}/session")
async def sign_in(request: web.Request) -> web.Response:
    """Sign in: `{token}` as JSON (a form post from another site cannot send that type)."""
    bodies.query(request, [])
    if request.content_type != "application/json":
        raise BadRequest("unsupported-media-type", "send the token as application/json")
    body = bodies.fields(await bodies.json_object(request), required={"token": str})
    auth = request.app[AUTH]
    digest = auth.digest(body["token"])
    auth.principal(digest)
    old = request.cookies.get(cookie_name(request))
    if old:
        request.app[SESSIONS].end(old)
    session = request.app[SESSIONS].create(digest)
    response = web.json_response(_session_body(request, session), status=201)
    response.set_cookie(
        cookie_name(request),
        session.id,
        path="/",
        httponly=True,
        secure=request.secure,
        samesite="Strict",
    )
    return response


@console_routes.get(f"{PREFIX}/session")
async def current_session(request: web.Request) -> web.Response:
    """Who is signed in, and the CSRF token (a reloaded page has lost it): cookie only."""
    bodies.query(request, [])
    return web.json_response(_session_body(request, _cookie_session(request)))


@console_routes.delete(f"{PREFIX}/session")
async def sign_out(request: web.Request) -> web.Response:
    bodies.query(request, [])
    session = _cookie_session(request)
    request.app[SESSIONS].end(session.id)
    response = web.Response(status=204)
    response.del_cookie(
        cookie_name(request), path="/", secure=request.secure, httponly=True, samesite="Strict"
    )
    return response


def _cookie_session(request: web.Request) -> ConsoleSession:
    session_id = request.cookies.get(cookie_name(request))
    if not session_id:
        raise Unauthorized("session-expired", "not signed in to the console")
    return request.app[SESSIONS].use(session_id, request.method, request.headers.get(CSRF_HEADER))


def session_principal_digest(request: web.Request) -> str | None:
    """The token digest of the console session a request's cookie names (None: no cookie).
    Raises 401 for an ended session and 403 for a state-changing call without its CSRF token."""
    if not request.cookies.get(cookie_name(request)):
        return None
    return _cookie_session(request).digest


CONSOLE_HANDLERS = frozenset({root, console_page, console_file, sign_in, current_session, sign_out})
