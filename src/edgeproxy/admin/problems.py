"""Errors to `application/problem+json` (RFC 9457), in one place."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from edgeproxy.domain.errors import DomainError
from edgeproxy.store import StoreUnavailable

PROBLEM_BASE = "https://edgeproxy.dev/problems/"
log = logging.getLogger(__name__)


def problem_response(
    *,
    status: int,
    type_: str,
    title: str,
    detail: str,
    instance: str,
    errors: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + type_,
        "title": title,
        "detail": detail,
        "status": status,
        "instance": instance,
        "errors": [{**e, "type": PROBLEM_BASE + e["type"]} for e in (errors or [])],
    }
    body.update(extra or {})
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/problem+json",
        headers=headers,
    )


def from_domain(error: DomainError, instance: str) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="edgeproxy"'} if error.status == 401 else None
    return problem_response(
        status=error.status,
        type_=error.type,
        title=error.title,
        detail=error.detail,
        instance=instance,
        errors=[e.as_dict() for e in error.errors],
        extra=dict(error.extra),
        headers=headers,
    )


@web.middleware
async def problem_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as error:
        return from_domain(error, request.path)
    except StoreUnavailable as error:
        # An operating condition (the edge keeps enforcing its last state), not a bug: no trace.
        log.warning("store unavailable", extra={"error": str(error)})
        return problem_response(
            status=503,
            type_="store-unavailable",
            title="Service unavailable",
            detail="the truststore's database cannot be reached; retry shortly",
            instance=request.path,
            headers={"Retry-After": "5"},
        )
    except web.HTTPException as error:
        if error.status < 400:
            raise
        slug = error.reason.lower().replace(" ", "-")
        return problem_response(
            status=error.status,
            type_=slug,
            title=error.reason,
            detail=error.text or error.reason,
            instance=request.path,
            headers={k: v for k, v in error.headers.items() if k.lower() == "allow"},
        )
    except Exception:
        # Never echo internals (they may hold request content); the log has the trace.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(
            status=500,
            type_="internal-error",
            title="Internal error",
            detail="the server failed to handle the request; see its log",
            instance=request.path,
        )
