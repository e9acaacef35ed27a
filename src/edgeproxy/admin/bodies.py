"""Strict request parsing: JSON objects with known fields of the right types, nothing else."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from edgeproxy.config.values import NAME
from edgeproxy.domain.certificates import CertificateInput
from edgeproxy.domain.errors import BadRequest, FieldError
from edgeproxy.domain.model import Network
from edgeproxy.service.versions import VersionDraft

_TYPE_NAMES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    list: "an array",
    dict: "an object",
}


def _bad(type_: str, detail: str, pointer: str) -> BadRequest:
    return BadRequest(type_, detail, (FieldError(type_, detail, pointer),))


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object (the app's client_max_size caps it: 413)."""
    raw = await request.read()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise _bad("malformed-json", f"the body is not valid JSON: {error.msg}", "") from None
    except (UnicodeDecodeError, RecursionError):
        # Bytes that are no Unicode text, or nesting deeper than the parser's stack (the size
        # cap still allows ~10^6 levels): both are client errors, never a 500.
        raise _bad("malformed-json", "the body is not valid JSON text", "") from None
    if not isinstance(data, dict):
        raise _bad("malformed-json", "the body must be a JSON object", "")
    return data


def fields(
    data: Mapping[str, Any],
    *,
    required: Mapping[str, type] = {},  # read-only defaults
    optional: Mapping[str, type] = {},
    pointer: str = "",
) -> dict[str, Any]:
    """Check an object's fields: unknown ones, missing ones and wrong types are 400s."""
    for name in data:
        if name not in required and name not in optional:
            raise _bad("unknown-field", f"unknown field {name!r}", f"{pointer}/{name}")
    out: dict[str, Any] = {}
    for name, kind in {**required, **optional}.items():
        if name not in data or (data[name] is None and name in optional):
            if name in required:
                raise _bad("missing-field", f"field {name!r} is required", f"{pointer}/{name}")
            continue
        value = data[name]
        # bool is an int in Python; JSON true is not a number.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _bad(
                "wrong-type", f"field {name!r} must be {_TYPE_NAMES[kind]}", f"{pointer}/{name}"
            )
        out[name] = value
    return out


def query(request: web.Request, allowed: Iterable[str]) -> dict[str, str]:
    known = set(allowed)
    for name in request.query:
        if name not in known:
            raise _bad("unknown-query-parameter", f"unknown query parameter {name!r}", "")
    return {k: v for k, v in request.query.items() if k in known}


def required_query(params: Mapping[str, str], name: str) -> str:
    if name not in params:
        raise _bad("missing-query-parameter", f"the query parameter {name} is required", "")
    return params[name]


def activation(data: Mapping[str, Any]) -> tuple[Network, bool]:
    """An activation's body (activate, rollback): the network and whether the operator
    acknowledged the clients it would refuse."""
    body = fields(data, required={"network": str}, optional={"acknowledgeImpact": bool})
    return network(body["network"]), bool(body.get("acknowledgeImpact"))


def network(value: Any, pointer: str = "/network") -> Network:
    try:
        return Network(value)
    except ValueError:
        raise _bad("invalid-network", "network must be STAGING or PRODUCTION", pointer) from None


def timestamp(value: str, pointer: str) -> datetime:
    """An RFC 3339 date-time with its offset (`2027-01-31T12:00:00Z`), as an aware datetime."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise _bad(
            "invalid-timestamp",
            "must be an RFC 3339 date-time with an offset, e.g. 2027-01-31T12:00:00Z",
            pointer,
        )
    return parsed.astimezone(UTC)


def version_draft(data: Mapping[str, Any]) -> VersionDraft:
    body = fields(
        data,
        required={"certificates": list},
        optional={"allowInsecureSha1": bool, "requireRootCertificate": bool, "description": str},
    )
    certificates = []
    for index, item in enumerate(body["certificates"]):
        if not isinstance(item, dict):
            raise _bad("wrong-type", "each certificate must be an object", f"/certificates/{index}")
        entry = fields(
            item,
            required={"certificatePem": str},
            optional={"description": str},
            pointer=f"/certificates/{index}",
        )
        certificates.append(CertificateInput(entry["certificatePem"], entry.get("description")))
    return VersionDraft(
        allow_insecure_sha1=body.get("allowInsecureSha1", False),
        require_root_certificate=body.get("requireRootCertificate", False),
        description=body.get("description"),
        certificates=tuple(certificates),
    )


# Ids and version numbers are SQL BIGINTs (SQLite INTEGER, PostgreSQL bigint).
MAX_ID = 2**63 - 1


def decimal(value: str, maximum: int) -> int | None:
    """`value` as an integer in 0..maximum, else None.

    ASCII digits only: str.isdigit() accepts '²', which int() refuses; and the length is bounded
    before int() runs (a longer number would overflow the database column or int()'s digit limit).
    """
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(maximum)):
        return None
    number = int(value)
    return number if number <= maximum else None


def node_name(request: web.Request) -> str:
    name = request.match_info["nodeName"]
    if not NAME.fullmatch(name):
        raise _bad(
            "invalid-path-parameter",
            "nodeName must be a node name: 1-64 characters of A-Z a-z 0-9 _ . -, starting with a "
            "letter or digit",
            "",
        )
    return name


def int_param(request: web.Request, name: str) -> int:
    number = decimal(request.match_info[name], MAX_ID)
    if number is None:
        raise _bad("invalid-path-parameter", f"{name} must be a positive integer", "")
    return number
