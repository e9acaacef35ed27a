"""OpenAPI 3.1 document of the admin API (docs/api.md): exactly the routes `routes.py` serves.

Written as data, one `_operation` per route; the common error responses follow from what the
operation does (every authenticated route can answer 400 and 401, a route above `viewer` 403, a
route that reads a body 413). The tests compare this document with the router and check every
response they receive against it.
"""

from __future__ import annotations

from typing import Any

from edgeproxy.admin.edge_openapi import EDGE_PARAMETERS, EDGE_SCHEMAS, edge_paths
from edgeproxy.admin.openapi_blocks import BLOCK_PARAMETERS, BLOCK_SCHEMAS, block_paths
from edgeproxy.admin.openapi_safety import SAFETY_PARAMETERS, SAFETY_SCHEMAS, safety_paths
from edgeproxy.admin.openapi_schemas import (
    ACTIVATE_BODY,
    CA_SET_CREATE,
    COMPONENT_SCHEMAS,
    CRL_CREATE,
    DEACTIVATE_BODY,
    PARAMETERS,
    VERSION_BODY,
    Schema,
    listing,
    ref,
)
from edgeproxy.admin.serialize import BASE
from edgeproxy.admin.sessions import COOKIE, CSRF_HEADER
from edgeproxy.domain import rules
from edgeproxy.domain.model import Role

JSON = "application/json"
PROBLEM = "application/problem+json"
_ERROR_MEANINGS = {
    400: "Malformed request: unknown field or query parameter, wrong type, bad JSON or path id.",
    401: "No bearer token, or not a valid one.",
    403: "The token's role is below the one this operation needs.",
    404: "No such resource.",
    409: "Conflicts with the current state.",
    413: "The request body is over the size limit (1 MiB by default).",
    422: "Well-formed, but breaks a management rule (docs/management.md).",
    503: "The store (the database) cannot be reached; retry later.",
}


def _content(media_type: str, schema: Schema) -> dict[str, Any]:
    return {media_type: {"schema": schema}}


def _problem(status: int, why: str | None) -> dict[str, Any]:
    return {
        "description": why or _ERROR_MEANINGS[status],
        "content": _content(PROBLEM, ref("Problem")),
    }


def _operation(
    operation_id: str,
    summary: str,
    *,
    role: Role,
    ok: tuple[int, Schema | None],
    params: tuple[str, ...] = (),
    body: Schema | None = None,
    errors: dict[int, str] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One operation. `errors` adds statuses beyond the common ones, each with its reason;
    `note` adds to the description what the schemas cannot say."""
    status, schema = ok
    responses: dict[str, Any] = {
        str(status): {
            "description": "Success.",
            **({"content": _content(JSON, schema)} if schema is not None else {}),
        }
    }
    common = {400: None, 401: None, 503: None}
    if role is not Role.VIEWER:
        common[403] = None
    if body is not None:
        common[413] = None
    for code, why in sorted({**common, **(errors or {})}.items()):
        responses[str(code)] = _problem(code, why)
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "description": f"{summary}. Requires the `{role.value}` role (or a higher one)."
        + (f" {note}" if note else ""),
        "x-required-role": role.value,
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in params],
        "responses": responses,
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": _content(JSON, body)}
    return operation


_NOT_FOUND_SET = {404: "No CA set with this id."}
_NOT_FOUND_VERSION = {404: "No such CA set or version."}
_SET_GONE = "The CA set is deleted or being deleted."
_FROZEN = "The version was activated before (`ca-set-version-was-previously-active`)"
_CERT_RULES = (
    "Breaks a limit or rule: duplicate of another version (`duplicate-ca-set-version`, with a "
    f"link), version limit ({rules.MAX_VERSIONS_PER_SET} per set), description over "
    f"{rules.MAX_DESCRIPTION} characters."
)


def _cert_failure(operation: str) -> str:
    return (
        "Malformed request, or a certificate fails validation: "
        f"`certificate-validation-failure-{operation}`, each error with a pointer /certificates/N."
    )


_HISTORY = (
    "A deleted CA set keeps its versions as read-only history: they are still served (200), "
    "with `history` true and `editable` false, and every write to them answers 409 "
    "`ca-set-deleted`."
)
_NO_CERTIFICATES = (
    "`certificates: []` is well-formed JSON but no version: 400 with the error `no-certificates`."
)
_SET = ("caSetId",)
_VERSION = ("caSetId", "version")


def _paths() -> dict[str, dict[str, Any]]:
    sets = f"{BASE}/ca-sets"
    versions = f"{sets}/{{caSetId}}/versions"
    version = f"{versions}/{{version}}"
    return {
        sets: {
            "post": _operation(
                "createCaSet",
                "Create a CA set",
                role=Role.EDITOR,
                ok=(201, ref("CaSet")),
                body=ref("CaSetCreate"),
                errors={
                    409: "A CA set that is not deleted has this name.",
                    400: "Malformed request, or a bad name (`ca-set-name-validation-failure`).",
                    422: "Description too long, or the limit of "
                    f"{rules.MAX_CA_SETS} CA sets is reached.",
                },
            ),
            "get": _operation(
                "listCaSets",
                "List the CA sets that are not deleted",
                role=Role.VIEWER,
                ok=(200, listing("caSets", "CaSet")),
                params=("caSetNamePrefix", "activatedOn"),
            ),
        },
        f"{sets}/{{caSetId}}": {
            "get": _operation(
                "getCaSet",
                "Get a CA set (deleted ones too)",
                role=Role.VIEWER,
                ok=(200, ref("CaSet")),
                params=_SET,
                errors=_NOT_FOUND_SET,
            ),
            "delete": _operation(
                "deleteCaSet",
                "Start deleting a CA set (asynchronous soft delete)",
                role=Role.ADMIN,
                ok=(202, ref("DeleteStatus")),
                params=_SET,
                errors={
                    **_NOT_FOUND_SET,
                    409: "A version is active, an activation is in flight, an edge certificate "
                    "binds the set (`ca-set-in-use`), or it is deleted or being deleted.",
                },
            ),
        },
        f"{sets}/{{caSetId}}/status/delete": {
            "get": _operation(
                "deleteStatus",
                "Status of the CA set's deletion",
                role=Role.VIEWER,
                ok=(200, ref("DeleteStatus")),
                params=_SET,
                errors={404: "No such CA set, or no deletion was requested."},
            ),
        },
        versions: {
            "post": _operation(
                "createVersion",
                "Create a version",
                role=Role.EDITOR,
                ok=(201, ref("Version")),
                params=_SET,
                body=ref("VersionBody"),
                errors={
                    **_NOT_FOUND_SET,
                    400: _cert_failure("create"),
                    409: _SET_GONE,
                    422: _CERT_RULES,
                },
                note=_NO_CERTIFICATES,
            ),
            "get": _operation(
                "listVersions",
                "List a CA set's versions",
                role=Role.VIEWER,
                ok=(200, listing("versions", "Version")),
                params=_SET,
                errors=_NOT_FOUND_SET,
                note=_HISTORY,
            ),
        },
        version: {
            "get": _operation(
                "getVersion",
                "Get a version",
                role=Role.VIEWER,
                ok=(200, ref("Version")),
                params=_VERSION,
                errors=_NOT_FOUND_VERSION,
                note=_HISTORY,
            ),
            "put": _operation(
                "updateVersion",
                "Replace an editable version's content",
                role=Role.EDITOR,
                ok=(200, ref("Version")),
                params=_VERSION,
                body=ref("VersionBody"),
                errors={
                    **_NOT_FOUND_VERSION,
                    400: _cert_failure("update"),
                    409: _SET_GONE,
                    422: f"{_FROZEN}. Or: {_CERT_RULES}",
                },
                note=_NO_CERTIFICATES,
            ),
            "delete": _operation(
                "deleteVersion",
                "Delete an editable version",
                role=Role.EDITOR,
                ok=(204, None),
                params=_VERSION,
                errors={**_NOT_FOUND_VERSION, 409: _SET_GONE, 422: _FROZEN},
            ),
        },
        f"{version}/clone": {
            "post": _operation(
                "cloneVersion",
                "Copy any version into a new editable one (exempt from the duplicate rule)",
                role=Role.EDITOR,
                ok=(201, ref("Version")),
                params=_VERSION,
                errors={**_NOT_FOUND_VERSION, 409: _SET_GONE, 422: "The version limit is reached."},
            ),
        },
        f"{version}/certificates": {
            "get": _operation(
                "listCertificates",
                "List a version's certificates, optionally only expiring or expired ones",
                role=Role.VIEWER,
                ok=(200, listing("certificates", "Certificate")),
                params=(*_VERSION, "certificateStatus", "expiryThresholdInDays"),
                errors=_NOT_FOUND_VERSION,
                note=_HISTORY,
            ),
        },
        f"{BASE}/certificates/validate": {
            "post": _operation(
                "validate",
                "Check certificates as a version create would; nothing is stored",
                role=Role.VIEWER,
                ok=(200, ref("ValidationResult")),
                body=ref("VersionBody"),
                errors={
                    400: "Malformed request, or a certificate fails validation: "
                    "`certificate-validation-failure` with the whole report (`valid` false, "
                    "`certificates`, `errors`, `warnings`).",
                    422: f"The description is over {rules.MAX_DESCRIPTION} characters.",
                },
                note="`certificates: []` is well-formed: 400 `certificate-validation-failure` "
                "with the error `no-certificates`.",
            ),
        },
        f"{version}/activate": {
            "post": _operation(
                "activate",
                "Make the version the active one of its set on a network (asynchronous)",
                role=Role.ADMIN,
                ok=(202, ref("Activation")),
                params=_VERSION,
                body=ref("ActivateBody"),
                errors={
                    **_NOT_FOUND_VERSION,
                    409: "Already active there, an activation is in flight for the set "
                    "(`activation-in-progress`), the set is deleted or being deleted, or the "
                    "version would refuse clients seen there that the version in force accepts "
                    "(`activation-would-refuse-clients`, with `wouldBeRefused`; pass "
                    "acknowledgeImpact).",
                    400: "Malformed request, or a certificate no longer passes validation "
                    "(`certificate-validation-failure-activate`).",
                    422: "The CA list is too large for edge certificates that send it.",
                },
            ),
        },
        f"{version}/deactivate": {
            "post": _operation(
                "deactivate",
                "Remove the version from a network (asynchronous)",
                role=Role.ADMIN,
                ok=(202, ref("Activation")),
                params=_VERSION,
                body=ref("DeactivateBody"),
                errors={
                    **_NOT_FOUND_VERSION,
                    409: "Not active there, an activation is in flight, the set is deleted, or "
                    "live edge certificates bind the set (`ca-set-in-use`; pass force).",
                },
            ),
        },
        f"{sets}/{{caSetId}}/activations": {
            "get": _operation(
                "listActivations",
                "List a CA set's activations and deactivations, newest first",
                role=Role.VIEWER,
                ok=(200, listing("activations", "Activation")),
                params=_SET,
                errors=_NOT_FOUND_SET,
            ),
        },
        f"{version}/activations/{{activationId}}": {
            "get": _operation(
                "getActivation",
                "Get one activation",
                role=Role.VIEWER,
                ok=(200, ref("Activation")),
                params=(*_VERSION, "activationId"),
                errors={404: "No such activation of this version."},
            ),
        },
        f"{sets}/{{caSetId}}/activities": {
            "get": _operation(
                "listActivities",
                "The CA set's change history, newest first",
                role=Role.VIEWER,
                ok=(200, listing("activities", "Activity")),
                params=_SET,
                errors=_NOT_FOUND_SET,
            ),
        },
        f"{sets}/{{caSetId}}/associations": {
            "get": _operation(
                "listAssociations",
                "Edge certificates of live nodes that bind the CA set",
                role=Role.VIEWER,
                ok=(200, listing("associations", "Association")),
                params=_SET,
                errors=_NOT_FOUND_SET,
            ),
        },
        f"{sets}/{{caSetId}}/crls": {
            "post": _operation(
                "addCrl",
                "Upload a CRL to a CA set; it applies to every version while newest of its issuer",
                role=Role.EDITOR,
                ok=(201, ref("Crl")),
                params=_SET,
                body=ref("CrlCreate"),
                errors={
                    **_NOT_FOUND_SET,
                    409: f"{_SET_GONE} Or the CRL was uploaded already (`duplicate-crl`).",
                    400: "Malformed request, or the CRL fails validation "
                    "(`crl-validation-failure`; each error names the rule): not one well-formed "
                    "X509 CRL block (a private key is refused and never echoed), expired "
                    "(`crl-expired`), not signed by a CA of the set's versions, a delta or "
                    "indirect CRL.",
                    422: f"A description over {rules.MAX_DESCRIPTION} characters.",
                },
                note='`crlPem: ""` is well-formed: 400 `crl-validation-failure` with the error '
                "`malformed-pem`.",
            ),
            "get": _operation(
                "listCrls",
                "List a CA set's CRLs, each marked effective (newest of its issuer) or not",
                role=Role.VIEWER,
                ok=(200, listing("crls", "Crl")),
                params=_SET,
                errors=_NOT_FOUND_SET,
            ),
        },
        f"{sets}/{{caSetId}}/crls/{{crlId}}": {
            "delete": _operation(
                "deleteCrl",
                "Delete a CRL (the DELETE_CRL activity remains)",
                role=Role.EDITOR,
                ok=(204, None),
                params=(*_SET, "crlId"),
                errors={404: "No such CA set or CRL.", 409: _SET_GONE},
            ),
        },
        f"{BASE}/nodes": {
            "get": _operation(
                "listNodes",
                "The nodes that registered, with what they applied",
                role=Role.VIEWER,
                ok=(200, listing("nodes", "Node")),
            ),
        },
        f"{BASE}/nodes/{{nodeName}}": {
            "delete": _operation(
                "forgetNode",
                "Forget a node that is gone for good",
                role=Role.ADMIN,
                ok=(200, ref("Forgotten")),
                params=("nodeName",),
                errors={404: "No node registered under this name."},
                note="Removes the node's registrations (its workers' too) and stops every change "
                "in flight from waiting for it: it is listed in their `lostNodes`, forgotten by "
                "the caller. A forgotten node that still runs registers again at its next report "
                "(`edgeproxy nodes forget NAME`).",
            ),
        },
        **safety_paths(_operation, sets),
        "/openapi.json": {
            "get": {
                "operationId": "openapiDocument",
                "summary": "This document",
                "description": "Public: no token needed.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": _content(JSON, {"type": "object"}),
                    }
                },
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "edgeproxy admin API",
            "version": "2",
            "description": "CA sets, versions and activations of the edgeproxy truststore "
            "(shaped like mTLS Edge Truststore v2). Every GET also answers HEAD. Errors are "
            "RFC 9457 problem+json. Roles: viewer (read) < editor (+ sets, versions, CRLs, blocks) "
            "< admin (+ activate, deactivate, delete); `x-required-role` names each operation's "
            "role. The operator console (`/console/`) calls these same operations with the "
            "session cookie its sign-in sets instead of the token (docs/api.md, Console).",
        },
        "security": [{"bearer": []}, {"consoleSession": []}],
        "paths": {**_paths(), **block_paths(_operation), **edge_paths(_operation)},
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from the admin configuration (compared by SHA-256).",
                },
                "consoleSession": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": COOKIE,
                    "description": "The console's session (`__Host-` prefixed over TLS), made by "
                    "signing in with a token at `POST /console/session`; the token's role "
                    f"applies. Every call but GET and HEAD must also send the `{CSRF_HEADER}` "
                    "header with the session's CSRF token (403 `csrf-token-missing` or "
                    "`csrf-token-invalid` otherwise); an idle or ended session is 401 "
                    "`session-expired`.",
                },
            },
            "parameters": {
                **PARAMETERS,
                **BLOCK_PARAMETERS,
                **EDGE_PARAMETERS,
                **SAFETY_PARAMETERS,
            },
            "schemas": {
                **COMPONENT_SCHEMAS,
                "CaSetCreate": CA_SET_CREATE,
                "VersionBody": VERSION_BODY,
                "ActivateBody": ACTIVATE_BODY,
                "DeactivateBody": DEACTIVATE_BODY,
                "CrlCreate": CRL_CREATE,
                **BLOCK_SCHEMAS,
                **EDGE_SCHEMAS,
                **SAFETY_SCHEMAS,
            },
        },
    }
