"""Responses the proxy writes itself: small application/problem+json documents (RFC 9457).

They name a stable `type` and a reason, never echo request data or secrets, and are cached:
a flood of bad requests costs one dict lookup each.
"""

from __future__ import annotations

import json
from functools import lru_cache

PROBLEM_BASE = "https://edgeproxy.dev/problems/"
PROBLEM_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    421: "Misdirected Request",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# status -> (problem type slug, detail) for the fixed cases.
_DEFAULTS = {
    400: ("bad-request", "The request is not valid HTTP."),
    405: ("method-not-allowed", "This method is not served by the edge."),
    408: ("request-timeout", "The request head was not received in time."),
    413: ("content-too-large", "The request body exceeds the size limit."),
    421: ("misdirected-request", "The Host does not name this edge certificate's hostnames."),
    431: ("request-header-fields-too-large", "The request head exceeds the size limit."),
    502: ("origin-unavailable", "The origin could not be reached or answered badly."),
    503: ("shutting-down", "The edge is shutting down."),
    504: ("origin-timeout", "The origin did not answer in time."),
}


@lru_cache(maxsize=128)
def problem_body(
    status: int, slug: str | None = None, detail: str | None = None, reason: str | None = None
) -> bytes:
    """The problem document itself (both protocols' local answers carry it)."""
    default_slug, default_detail = _DEFAULTS.get(status, ("error", ""))
    doc: dict[str, object] = {
        "type": PROBLEM_BASE + (slug or default_slug),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail or default_detail,
    }
    if reason is not None:
        doc["reason"] = reason
    return json.dumps(doc, separators=(",", ":")).encode()


@lru_cache(maxsize=128)
def problem_response(
    status: int,
    slug: str | None = None,
    detail: str | None = None,
    *,
    close: bool = True,
    head_only: bool = False,
    reason: str | None = None,
) -> bytes:
    """A complete HTTP/1.1 response carrying a problem document."""
    body = problem_body(status, slug, detail, reason)
    head = (
        f"HTTP/1.1 {status} {_TITLES.get(status, 'Error')}\r\n"
        f"Content-Type: {PROBLEM_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
    ).encode()
    return head if head_only else head + body


# Refusals by the binding's authorization rules (docs/dataplane.md): reason -> (slug, detail).
_AUTHORIZATION = {
    "policy_denied": (
        "policy-denied",
        "The binding's authorization rules do not let this client certificate make this request.",
    ),
    "invalid_path": (
        "invalid-path",
        "The request path holds a dot segment, an escaped slash or a stray %, so the "
        "authorization rules cannot match it unambiguously.",
    ),
}
Named = tuple[str | None, str | None, str | None]  # (slug, detail, reason) of a problem


def _named(status: int, reason: str | None) -> Named:
    """A certificate or authorization refusal when `reason` names one, else the status's own."""
    known = _AUTHORIZATION.get(reason) if reason is not None else None
    if known is not None:
        return known[0], known[1], reason
    if status == 403 and reason is not None:
        slug, detail = _certificate_problem(reason)
        return slug, detail, reason
    return None, None, None


def local_problem(status: int, reason: str | None, *, close: bool, head_only: bool) -> bytes:
    """The edge's own answer to an HTTP/1.1 request (`_named` says which problem)."""
    slug, detail, named = _named(status, reason)
    return problem_response(status, slug, detail, close=close, head_only=head_only, reason=named)


def local_document(status: int, reason: str | None = None) -> bytes:
    """The same answer's document alone, for HTTP/2, which frames it itself."""
    return problem_body(status, *_named(status, reason))


def _certificate_problem(reason: str) -> tuple[str, str]:
    if reason == "no_certificate":
        return "client-certificate-required", "A client certificate is required."
    return "client-certificate-rejected", f"The client certificate was not accepted: {reason}."


def client_certificate_problem(reason: str, *, close: bool, head_only: bool) -> bytes:
    """403 for a request-mode binding that denies a failed or missing client certificate
    (docs/dataplane.md)."""
    slug, detail = _certificate_problem(reason)
    return problem_response(403, slug, detail, close=close, head_only=head_only, reason=reason)
