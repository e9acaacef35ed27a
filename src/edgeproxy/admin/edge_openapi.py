"""The OpenAPI paths and schemas of the edge-certificate API (`edge_routes.py`, under /edge/v1).

Data, like openapi.py, which merges it into the one document; `operation` is openapi.py's
`_operation`, handed in (this module cannot import that one: it is imported by it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeproxy.admin.edge_routes import BINDING, CERTS, ONE
from edgeproxy.admin.edge_serialize import EDGE_BASE
from edgeproxy.admin.openapi_schemas import _ROLLOUT as ROLLOUT_FIELDS
from edgeproxy.admin.openapi_schemas import (
    BOOL,
    DATE,
    INT,
    SHA256,
    TEXT,
    Schema,
    array,
    closed,
    enum,
    listing,
    nullable,
    ref,
)
from edgeproxy.domain.edge_certificates import MAX_HOSTNAMES, MAX_VERIFY_DEPTH
from edgeproxy.domain.edge_model import ALPN_PROTOCOLS, ChangeType
from edgeproxy.domain.model import ActivationStatus, Network, Role

Operation = Callable[..., dict[str, Any]]
_FINDINGS = array(ref("Finding"))
_MODE = {"type": "string", "enum": ["require", "request"]}
_ON_FAILURE = {"type": "string", "enum": ["deny", "forward"]}
_HEADERS = array({"type": "string", "enum": ["xfcc", "rfc9440"]})
_FAILURE_MODE = {"type": "string", "enum": ["soft", "hard"]}
_NODES = array(TEXT)
_SOURCE = {"type": "string", "enum": ["store", "config"]}
_HOSTNAMES = {**array(TEXT), "minItems": 1, "maxItems": MAX_HOSTNAMES}
_ALPN = {
    **array({"type": "string", "enum": list(ALPN_PROTOCOLS)}),
    "minItems": 1,
    "maxItems": len(ALPN_PROTOCOLS),
    "uniqueItems": True,
    "description": "the protocols ALPN may select, in the server's order of preference "
    f"(default {', '.join(ALPN_PROTOCOLS)}); a client offering none of them is refused in the "
    "handshake, one offering no ALPN gets HTTP/1.1 where it is listed",
}
_PEM_NOTE = (
    "`certificateChainPem`: the server certificate chain, PEM, leaf first. `privateKeyPem`: "
    "its unencrypted private key, PEM; accepted only in this field, sealed under the "
    "key-encryption key before it is stored, and never returned, logged or recorded."
)

EDGE_PARAMETERS: dict[str, Schema] = {
    "edgeCertificateName": {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "the edge certificate's name",
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
    },
    "network": {
        "name": "network",
        "in": "path",
        "required": True,
        "description": "the network of the binding",
        "schema": enum(Network),
    },
    "changeId": {
        "name": "changeId",
        "in": "path",
        "required": True,
        "description": "the binding change's id",
        "schema": {"type": "integer", "minimum": 0},
    },
}

_OCSP = closed(
    {
        "enabled": BOOL,
        "failureMode": _FAILURE_MODE,
        "responder": nullable(TEXT),
        "checkIntermediates": BOOL,
    }
)
_OCSP_BODY = closed(
    {
        "enabled": nullable(BOOL),
        "failureMode": nullable(_FAILURE_MODE),
        "responder": nullable(TEXT),
        "checkIntermediates": nullable(BOOL),
    },
    optional=("enabled", "failureMode", "responder", "checkIntermediates"),
)
_MATCHER: Schema = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": False,
    "properties": {
        "subject": {"type": "object", "additionalProperties": TEXT},
        **{k: TEXT for k in ("sanDns", "sanUri", "sanEmail", "issuer")},
        **{k: TEXT for k in ("fingerprintSha256", "spkiSha256")},
        "anyVerified": {"const": True},
    },
    "description": "exactly one key; globs: * within a label or segment, ** across",
}
_RULE = closed(
    {
        "name": TEXT,
        "pathPrefix": TEXT,
        "methods": array(TEXT),
        "requireCertificate": BOOL,
        "allow": array(_MATCHER),
        "deny": array(_MATCHER),
    },
    optional=("name", "methods", "requireCertificate", "allow", "deny"),
)
AUTHORIZATION = {
    **closed(
        {
            "mode": {"type": "string", "enum": ["enforce", "report"]},
            "default": {"type": "string", "enum": ["allow", "deny"]},
            "rules": array(_RULE),
        },
        optional=("mode", "default", "rules"),
    ),
    "description": "who may call what (docs/dataplane.md#authorization); a bad one answers 400 "
    "`invalid-authorization` with the JSON pointer of the value at fault",
}
_AUTH_FIELDS: dict[str, Schema] = {
    "caSetName": TEXT,
    "mode": _MODE,
    "onFailure": _ON_FAILURE,
    "sendCaListToClient": BOOL,
    "identityHeaders": _HEADERS,
    "verifyDepth": {"type": "integer", "minimum": 1, "maximum": MAX_VERIFY_DEPTH},
    "ocsp": _OCSP,
    "authorization": nullable(AUTHORIZATION),
}

EDGE_SCHEMAS: dict[str, Schema] = {
    "ServerCertificate": closed(
        {
            "subject": TEXT,
            "issuer": TEXT,
            "startDate": DATE,
            "endDate": DATE,
            "fingerprint": SHA256,
            "serialNumber": TEXT,
            "dnsNames": array(TEXT),
            "keyType": TEXT,
            "chainLength": INT,
        }
    ),
    "BindingSummary": closed({"caSetName": TEXT, "link": nullable(TEXT)}),
    "EdgeCertificate": closed(
        {
            "name": TEXT,
            "source": _SOURCE,
            "hostnames": array(TEXT),
            "origin": nullable(TEXT),
            "default": nullable(BOOL),
            "alpn": nullable(_ALPN),
            "certificate": nullable(ref("ServerCertificate")),
            "certificateChainPem": nullable(TEXT),
            "generation": nullable(INT),
            "createdBy": nullable(TEXT),
            "createdDate": nullable(DATE),
            "modifiedBy": nullable(TEXT),
            "modifiedDate": nullable(DATE),
            "rotatedDate": nullable(DATE),
            "mutualAuthentication": closed(
                {n.value: nullable(ref("BindingSummary")) for n in Network}
            ),
            "nodes": {**_NODES, "description": "live edge nodes serving it"},
            "warnings": _FINDINGS,
            "edgeCertificateLink": TEXT,
        }
    ),
    "BindingChange": closed(
        {
            "changeId": INT,
            "edgeCertificate": TEXT,
            "network": enum(Network),
            "changeType": enum(ChangeType),
            "caSetName": nullable(TEXT),
            "status": enum(ActivationStatus),
            "failureReason": nullable(TEXT),
            "createdBy": TEXT,
            "createdDate": DATE,
            "completedDate": nullable(DATE),
            "changeLink": TEXT,
            **ROLLOUT_FIELDS,
        }
    ),
    "MutualAuthentication": closed(
        {
            "edgeCertificate": TEXT,
            "network": enum(Network),
            **_AUTH_FIELDS,
            "modifiedBy": TEXT,
            "modifiedDate": DATE,
            "latestChange": nullable(ref("BindingChange")),
        }
    ),
    "EdgeCertificateCreate": closed(
        {
            "name": TEXT,
            "hostnames": _HOSTNAMES,
            "origin": TEXT,
            "default": nullable(BOOL),
            "alpn": nullable(_ALPN),
            "certificateChainPem": TEXT,
            "privateKeyPem": TEXT,
        },
        optional=("default", "alpn"),
    ),
    "EdgeCertificateUpdate": closed(
        {
            "hostnames": nullable(_HOSTNAMES),
            "origin": nullable(TEXT),
            "default": nullable(BOOL),
            "alpn": nullable(_ALPN),
        },
        optional=("hostnames", "origin", "default", "alpn"),
    ),
    "EdgeCertificateRotate": closed({"certificateChainPem": TEXT, "privateKeyPem": TEXT}),
    "MutualAuthenticationBody": closed(
        {
            "caSetName": TEXT,
            **{
                k: nullable(v)
                for k, v in _AUTH_FIELDS.items()
                if k not in ("caSetName", "ocsp", "authorization")
            },
            "ocsp": nullable(_OCSP_BODY),
            "authorization": nullable(AUTHORIZATION),
        },
        optional=tuple(k for k in _AUTH_FIELDS if k != "caSetName"),
    ),
}

_NAME = ("edgeCertificateName",)
_BOUND = ("edgeCertificateName", "network")
_NO_CERT = {404: "No edge certificate of this name."}
_RULES = (
    "Breaks a rule: chain order, key not matching the leaf, expired or not yet valid, weak "
    "key, unreadable key (never echoed), bad host name or origin."
)
_READ_ONLY = "The edge certificate is declared in a node's file (`edge-certificate-read-only`)."


def edge_paths(operation: Operation) -> dict[str, dict[str, Any]]:
    return {
        CERTS: {
            "post": operation(
                "createEdgeCertificate",
                "Create an edge certificate: host names, origin, server chain and private key",
                role=Role.EDITOR,
                ok=(201, ref("EdgeCertificate")),
                body=ref("EdgeCertificateCreate"),
                errors={
                    409: "The name or a host name is taken, another certificate is the "
                    "default, or this admin node has no key-encryption key.",
                    422: _RULES,
                },
                note=_PEM_NOTE + " Host names the leaf's subjectAltNames do not cover, and "
                "a leaf expiring within 30 days, are warnings.",
            ),
            "get": operation(
                "listEdgeCertificates",
                "Every edge certificate: the store's, and those nodes declare in their files "
                "(`source: config`, read-only)",
                role=Role.VIEWER,
                ok=(200, listing("edgeCertificates", "EdgeCertificate")),
            ),
        },
        ONE: {
            "get": operation(
                "getEdgeCertificate",
                "Get one edge certificate (never its private key)",
                role=Role.VIEWER,
                ok=(200, ref("EdgeCertificate")),
                params=_NAME,
                errors=_NO_CERT,
            ),
            "patch": operation(
                "updateEdgeCertificate",
                "Change an edge certificate's host names, origin, default flag or ALPN protocols",
                role=Role.EDITOR,
                ok=(200, ref("EdgeCertificate")),
                params=_NAME,
                body=ref("EdgeCertificateUpdate"),
                errors={
                    **_NO_CERT,
                    409: f"A host name is taken or another is the default. {_READ_ONLY}",
                    422: "A bad host name or origin.",
                },
            ),
            "delete": operation(
                "deleteEdgeCertificate",
                "Delete an edge certificate that is bound nowhere",
                role=Role.EDITOR,
                ok=(204, None),
                params=_NAME,
                errors={
                    **_NO_CERT,
                    409: f"Still bound (`edge-certificate-bound`, naming where). {_READ_ONLY}",
                },
            ),
        },
        f"{ONE}/certificate": {
            "put": operation(
                "rotateEdgeCertificate",
                "Rotate: replace the server chain and private key in one change",
                role=Role.EDITOR,
                ok=(200, ref("EdgeCertificate")),
                params=_NAME,
                body=ref("EdgeCertificateRotate"),
                errors={**_NO_CERT, 409: f"No key-encryption key here. {_READ_ONLY}", 422: _RULES},
                note=_PEM_NOTE + " Open connections keep the certificate they started with; "
                "new handshakes get the new one.",
            ),
        },
        BINDING: {
            "put": operation(
                "putBinding",
                "Bind the edge certificate to a CA set on a network (or change the binding)",
                role=Role.ADMIN,
                ok=(202, ref("BindingChange")),
                params=_BOUND,
                body=ref("MutualAuthenticationBody"),
                errors={
                    404: "No store-managed edge certificate of this name.",
                    409: "The CA set does not exist or has no version active on this network "
                    "(`ca-set-not-active`, naming it), or a change of this binding is in "
                    "flight (`binding-change-in-progress`).",
                    422: "Contradictory or unknown settings (e.g. onFailure forward with mode "
                    "require), or a CA list too large to send.",
                },
                note="The change converges like an activation: poll `changeLink` until "
                "COMPLETE (every expected node applied it or was lost) or FAILED (a node could "
                "not apply it; the previous binding is restored).",
            ),
            "get": operation(
                "getBinding",
                "The binding on a network, with its latest change",
                role=Role.VIEWER,
                ok=(200, ref("MutualAuthentication")),
                params=_BOUND,
                errors={404: "No such edge certificate, or no binding on this network."},
            ),
            "delete": operation(
                "deleteBinding",
                "Remove the binding: the edge certificate then fails closed on that network",
                role=Role.ADMIN,
                ok=(202, ref("BindingChange")),
                params=_BOUND,
                errors={
                    404: "No such edge certificate, or no binding on this network.",
                    409: "A change of this binding is in flight.",
                },
            ),
        },
        f"{EDGE_BASE}/binding-changes/{{changeId}}": {
            "get": operation(
                "getBindingChange",
                "A binding change and its per-node progress",
                role=Role.VIEWER,
                ok=(200, ref("BindingChange")),
                params=("changeId",),
                errors={404: "No such binding change."},
            ),
        },
    }
