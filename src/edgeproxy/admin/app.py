"""The admin application factory: routes, auth, problem mapping, security headers."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from edgeproxy.admin.auth import TokenAuthenticator, require_role
from edgeproxy.admin.block_routes import block_routes
from edgeproxy.admin.console import CONSOLE_HANDLERS, console_routes, session_principal_digest
from edgeproxy.admin.edge_routes import edge_routes
from edgeproxy.admin.keys import AUTH, PRINCIPAL, SERVICE, SESSIONS
from edgeproxy.admin.openapi import openapi_document
from edgeproxy.admin.problems import problem_middleware
from edgeproxy.admin.routes import REQUIRED_ROLE, routes
from edgeproxy.admin.safety_routes import safety_routes
from edgeproxy.admin.sessions import SessionStore
from edgeproxy.domain.errors import Forbidden, Unauthorized
from edgeproxy.service.truststore import Truststore

CONSOLE_IDLE_TIMEOUT = 900.0  # seconds, when the caller names none (admin.console_idle_timeout)
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    response = await handler(request)
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    route_handler = request.match_info.route.handler
    needed = REQUIRED_ROLE.get(route_handler)
    if needed is None:
        # Only the explicitly public documents skip auth; an unmarked route fails closed.
        if route_handler in _PUBLIC or request.match_info.http_exception:
            return await handler(request)
        raise Forbidden("route-not-authorised", "this route declares no role")
    credentials = request.headers.getall("Authorization", [])
    if len(credentials) > 1:
        # Not a list-valued field: two of them is a malformed request, whichever one is good.
        raise Unauthorized("invalid-token", "send exactly one Authorization header")
    # A bearer token wins; without one, the console's session cookie (with its CSRF token on
    # every state-changing call) stands for the token it was signed in with.
    digest = None if credentials else session_principal_digest(request)
    if digest is not None:
        principal = request.app[AUTH].principal(digest)
    else:
        principal = request.app[AUTH].authenticate(credentials[0] if credentials else None)
    require_role(principal, needed)
    request[PRINCIPAL] = principal
    return await handler(request)


async def serve_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


# The documents anyone may read: no token, no role; the console's pages and sign-in, which
# check the session themselves.
_PUBLIC = frozenset({serve_openapi}) | CONSOLE_HANDLERS


def create_admin_app(
    service: Truststore,
    authenticator: TokenAuthenticator,
    *,
    max_body_bytes: int = 1024 * 1024,
    sessions: SessionStore | None = None,
) -> web.Application:
    app = web.Application(
        client_max_size=max_body_bytes,
        middlewares=[security_headers, problem_middleware, auth_middleware],
    )
    app[SERVICE] = service
    app[AUTH] = authenticator
    app[SESSIONS] = SessionStore(CONSOLE_IDLE_TIMEOUT) if sessions is None else sessions
    app.router.add_routes(routes)
    app.router.add_routes(block_routes)
    app.router.add_routes(console_routes)
    app.router.add_routes(edge_routes)
    app.router.add_routes(safety_routes)
    app.router.add_get("/openapi.json", serve_openapi)
    return app
