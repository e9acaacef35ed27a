"""JSON Schemas (OpenAPI 3.1 = JSON Schema 2020-12) of the admin API's bodies.

Response schemas mirror `serialize.py` field for field and are closed (`additionalProperties:
false`, every field required, since serialize always writes every key), so the tests catch a
field added on one side only. Request schemas mirror `bodies.py`: unknown fields are refused and
optional fields may be null (the parser treats null as absent).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from edgeproxy.admin.bodies import MAX_ID
from edgeproxy.admin.routes import MAX_EXPIRY_THRESHOLD_DAYS
from edgeproxy.config.values import NAME
from edgeproxy.domain import rules
from edgeproxy.domain.model import (
    ActivationStatus,
    ActivationType,
    ActivityType,
    CaSetStatus,
    CertificateStatus,
    Network,
)

Schema = dict[str, Any]
_STATUSES = "|".join(CertificateStatus)

# RFC 3339 timestamps in UTC, as serialize._time writes them.
DATE = {"type": "string", "format": "date-time"}
TEXT = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
URI = {"type": "string", "format": "uri"}
SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
# docs/management.md: 3-64 characters of [A-Za-z0-9_.%-], never containing "...".
CA_SET_NAME_PATTERN = r"^(?!.*\.\.\.)[A-Za-z0-9_.%-]{3,64}$"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """`schema` or null (serialize writes None as null; the parser reads null as absent)."""
    if "$ref" in schema or "enum" in schema:
        return {"oneOf": [schema, {"type": "null"}]}
    return {**schema, "type": [schema["type"], "null"]}


def enum(values: type[StrEnum]) -> Schema:
    return {"type": "string", "enum": [v.value for v in values]}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def closed(properties: dict[str, Schema], *, optional: tuple[str, ...] = ()) -> Schema:
    """An object with exactly these properties; all required except `optional`."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def listing(key: str, item: str) -> Schema:
    """The `{key: [item, …]}` envelope of every list endpoint."""
    return closed({key: array(ref(item))})


def _description(what: str) -> Schema:
    return nullable({"type": "string", "maxLength": rules.MAX_DESCRIPTION, "description": what})


_FINDING = closed(
    {
        "type": {**TEXT, "description": "stable slug, e.g. `expired`"},
        "detail": TEXT,
        "pointer": {**TEXT, "description": "JSON pointer into the request, e.g. /certificates/0"},
    }
)
_WARNINGS = closed({"warnings": array(ref("Finding"))})

_NODES = array(TEXT)
# A change converging on the edge nodes of its network (docs/management.md "Convergence").
_ROLLOUT: dict[str, Schema] = {
    "expectedNodes": {
        **_NODES,
        "description": "the edge nodes of the network not lost when the change started: the "
        "change is COMPLETE once each applied it or was declared lost",
    },
    "pendingNodes": {**_NODES, "description": "expected nodes that have not applied it yet"},
    "appliedNodes": {**_NODES, "description": "expected nodes that applied it"},
    "failedNodes": {**_NODES, "description": "expected nodes that reported they could not"},
    "lostNodes": {
        **_NODES,
        "description": "expected nodes no longer waited for: silent past "
        "fleet.node_lost_after, gone from the fleet, or forgotten (`DELETE /nodes/{nodeName}`)",
    },
    "warnings": {
        **array(ref("Finding")),
        "description": "how it converged: `no-edge-nodes` (nothing was waited for) or "
        "`nodes-lost` (naming each lost node and why)",
    },
}

COMPONENT_SCHEMAS: dict[str, Schema] = {
    "Finding": _FINDING,
    "CaSet": closed(
        {
            "caSetId": INT,
            "caSetName": TEXT,
            "description": nullable(TEXT),
            "caSetStatus": enum(CaSetStatus),
            "latestVersion": nullable(INT),
            "stagingVersion": nullable(INT),
            "productionVersion": nullable(INT),
            "createdBy": TEXT,
            "createdDate": DATE,
            "deletedBy": nullable(TEXT),
            "deletedDate": nullable(DATE),
            "caSetLink": TEXT,
            "versionsLink": TEXT,
            "warnings": {
                **array(ref("Finding")),
                "description": "needs an operator: `crl-expired` for each CRL in effect that is "
                "past its nextUpdate",
            },
        }
    ),
    "Certificate": closed(
        {
            "subject": TEXT,
            "issuer": TEXT,
            "startDate": DATE,
            "endDate": DATE,
            "fingerprint": SHA256,
            "serialNumber": {"type": "string", "pattern": "^[0-9a-f]+$"},
            "signatureAlgorithm": TEXT,
            "certificatePem": {"type": "string", "pattern": "^-----BEGIN CERTIFICATE-----"},
            "description": nullable(TEXT),
        }
    ),
    "Version": closed(
        {
            "caSetId": INT,
            "version": INT,
            "description": nullable(TEXT),
            "allowInsecureSha1": BOOL,
            "requireRootCertificate": BOOL,
            "stagingStatus": {"type": "string", "enum": ["ACTIVE", "INACTIVE"]},
            "productionStatus": {"type": "string", "enum": ["ACTIVE", "INACTIVE"]},
            "editable": {
                **BOOL,
                "description": "false once activated on any network, ever, and while the set is "
                "deleted or being deleted",
            },
            "history": {
                **BOOL,
                "description": "true when the set is deleted: the version is kept, read-only, as "
                "its history",
            },
            "createdBy": TEXT,
            "createdDate": DATE,
            "modifiedBy": nullable(TEXT),
            "modifiedDate": nullable(DATE),
            "certificates": array(ref("Certificate")),
            "validation": _WARNINGS,
            "versionLink": TEXT,
        }
    ),
    "ValidationResult": closed(
        {
            "valid": BOOL,
            "certificates": array(ref("Certificate")),
            "errors": array(ref("Finding")),
            "warnings": array(ref("Finding")),
        }
    ),
    "Activation": closed(
        {
            "activationId": INT,
            "caSetId": INT,
            "version": INT,
            "network": enum(Network),
            "activationType": enum(ActivationType),
            "activationStatus": enum(ActivationStatus),
            "percentComplete": {"type": "integer", "minimum": 0, "maximum": 100},
            "failureReason": nullable(TEXT),
            "createdBy": TEXT,
            "createdDate": DATE,
            "completedDate": nullable(DATE),
            "validation": _WARNINGS,
            "activationLink": TEXT,
            **_ROLLOUT,
        }
    ),
    "Activity": closed(
        {
            "type": enum(ActivityType),
            "network": nullable(enum(Network)),
            "version": nullable(INT),
            "activityDate": DATE,
            "activityBy": TEXT,
            "edgeCertificate": {
                **nullable(TEXT),
                "description": "the edge certificate a BIND/UNBIND_EDGE_CERTIFICATE changed",
            },
            "acknowledgedRefusals": {**INT, "description": "clients the activation refuses"},
        },
        optional=("acknowledgedRefusals",),
    ),
    "DeleteStatus": closed(
        {
            "status": enum(ActivationStatus),
            "caSetId": INT,
            "caSetName": TEXT,
            "startTime": DATE,
            "endTime": nullable(DATE),
            "failureReason": nullable(TEXT),
        }
    ),
    "Association": closed(
        {
            "node": {
                **nullable(TEXT),
                "description": "the node declaring it in its file; null for a store binding",
            },
            "network": enum(Network),
            "edgeCertificate": TEXT,
            "hostnames": array(TEXT),
            "source": {"type": "string", "enum": ["config", "store"]},
            "nodes": {**array(TEXT), "description": "the live nodes serving it"},
        }
    ),
    "Binding": closed(
        {
            "edgeCertificate": TEXT,
            "hostnames": array(TEXT),
            "caSet": TEXT,
            "sendCaListToClient": BOOL,
            "source": {"type": "string", "enum": ["config", "store"]},
        }
    ),
    "Node": closed(
        {
            "name": TEXT,
            "network": enum(Network),
            "roles": array(TEXT),
            "live": {**BOOL, "description": "heartbeat within the node TTL"},
            "lost": {
                **BOOL,
                "description": "silent past fleet.node_lost_after: changes no longer wait for it",
            },
            "startedDate": DATE,
            "lastSeenDate": DATE,
            "appliedRevision": INT,
            "appliedDate": nullable(DATE),
            "appliedVersions": {"type": "object", "additionalProperties": nullable(INT)},
            "applyErrors": {"type": "object", "additionalProperties": TEXT},
            "bindings": array(ref("Binding")),
        }
    ),
    "Forgotten": closed(
        {
            "forgottenNodes": {
                **_NODES,
                "description": "the registrations removed: the node and its workers",
            },
            "changes": {
                **array(closed({"kind": TEXT, "status": enum(ActivationStatus), **_ROLLOUT})),
                "description": "changes in flight that stopped waiting for them "
                "(kind `activation`: activations and deactivations)",
            },
        }
    ),
    "Crl": closed(
        {
            "crlId": INT,
            "caSetId": INT,
            "issuer": {**TEXT, "description": "RFC 4514"},
            "issuerFingerprint": {
                **SHA256,
                "description": "SHA-256 of the set's CA certificate that signed the CRL",
            },
            "thisUpdate": DATE,
            "nextUpdate": nullable(DATE),
            "crlNumber": nullable({"type": "string", "pattern": "^[0-9]+$"}),
            "revokedCount": {"type": "integer", "minimum": 0},
            "fingerprint": SHA256,
            "crlPem": {"type": "string", "pattern": "^-----BEGIN X509 CRL-----"},
            "description": nullable(TEXT),
            "effective": {
                **BOOL,
                "description": "the newest CRL of its issuer (thisUpdate, then CRL number): "
                "the one edge nodes check clients against",
            },
            "expired": {**BOOL, "description": "past its nextUpdate"},
            "warnings": array(ref("Finding")),
            "createdBy": TEXT,
            "createdDate": DATE,
        }
    ),
    "Problem": {
        # RFC 9457: extension members are allowed; the ones we send are listed.
        "type": "object",
        "required": ["type", "title", "detail", "status", "instance", "errors"],
        "properties": {
            "type": URI,
            "title": TEXT,
            "detail": TEXT,
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "instance": TEXT,
            "errors": array(closed({"type": URI, "detail": TEXT, "pointer": TEXT})),
            "activationId": {**INT, "description": "the activation in flight (409)"},
            "duplicateVersion": {**INT, "description": "the version with these certificates"},
            "link": {**TEXT, "description": "link to the duplicate version"},
            "crlId": {**INT, "description": "the CRL already uploaded (409 duplicate-crl)"},
            "associations": {
                **array(
                    closed(
                        {"node": nullable(TEXT), "edgeCertificate": TEXT, "network": enum(Network)}
                    )
                ),
                "description": "edge certificates that bind the set (409 ca-set-in-use); node "
                "null: a store binding",
            },
            "bindings": {
                **array(closed({"network": enum(Network), "caSetName": TEXT})),
                "description": "where the edge certificate is bound (409 edge-certificate-bound)",
            },
            "changeId": {**INT, "description": "the binding change in flight (409)"},
            "caSetName": {**TEXT, "description": "the CA set that cannot be bound (409)"},
            "caSetId": {**INT, "description": "that set's id, when it exists"},
            "wouldBeRefused": {
                **array(ref("AffectedClient")),
                "description": "409 activation-would-refuse-clients",
            },
            "valid": {**BOOL, "description": "false (400 certificate-validation-failure)"},
            "certificates": {
                **array(ref("Certificate")),
                "description": "every certificate read (400 certificate-validation-failure)",
            },
            "warnings": {
                **array(ref("Finding")),
                "description": "what passes but needs attention (400 certificate-validation-"
                "failure)",
            },
        },
    },
}

# -- parameters (routes.py) ---------------------------------------------------------------------


def _path_param(name: str, what: str) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": what,
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
    }


def _query_param(name: str, schema: Schema, what: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": what, "schema": schema}


PARAMETERS = {
    "caSetId": _path_param("caSetId", "the CA set's id"),
    "version": _path_param("version", "the version number within the set"),
    "activationId": _path_param("activationId", "the activation's id"),
    "crlId": _path_param("crlId", "the CRL's id"),
    "nodeName": {
        "name": "nodeName",
        "in": "path",
        "required": True,
        "description": "a node's name (node.name); its workers' registrations go with it",
        "schema": {"type": "string", "pattern": f"^{NAME.pattern}$"},
    },
    "caSetNamePrefix": _query_param("caSetNamePrefix", {"type": "string"}, "name starts with"),
    "activatedOn": _query_param(
        "activatedOn",
        enum(Network),
        "only sets with an active version on this network. Given, it must name one: an empty "
        "`activatedOn=` answers 400 `invalid-network` rather than listing every set",
    ),
    "certificateStatus": _query_param(
        "certificateStatus",
        {"type": "string", "pattern": f"^(({_STATUSES})?,)*({_STATUSES})?$"},
        f"comma-separated {' and/or '.join(CertificateStatus)}; absent: every certificate",
    ),
    "expiryThresholdInDays": _query_param(
        "expiryThresholdInDays",
        {"type": "integer", "minimum": 0, "maximum": MAX_EXPIRY_THRESHOLD_DAYS, "default": 30},
        "EXPIRING means: expires within this many days",
    ),
}


# -- request bodies (bodies.py) ------------------------------------------------------------------

CA_SET_CREATE = closed(
    {
        "caSetName": {
            "type": "string",
            "minLength": 3,
            "maxLength": 64,
            "pattern": CA_SET_NAME_PATTERN,
            "description": "unique among CA sets that are not deleted; immutable",
        },
        "description": _description("free text"),
    },
    optional=("description",),
)

VERSION_BODY = closed(
    {
        "allowInsecureSha1": nullable({**BOOL, "default": False}),
        "requireRootCertificate": nullable({**BOOL, "default": False}),
        "description": _description("free text"),
        "certificates": {
            **array(
                closed(
                    {
                        "certificatePem": {
                            **TEXT,
                            "description": "one or more PEM CERTIFICATE blocks, nothing else",
                        },
                        "description": nullable(TEXT),
                    },
                    optional=("description",),
                )
            ),
            "description": "1-300 certificates in all. Fewer or more is a rule, not a shape: "
            "`[]` answers 422 `no-certificates` (validate: 200, `valid` false), never 400",
        },
    },
    optional=("allowInsecureSha1", "requireRootCertificate", "description"),
)

ACTIVATE_BODY = closed(
    {
        "network": enum(Network),
        "acknowledgeImpact": nullable(
            {**BOOL, "default": False, "description": "go ahead although it refuses clients"}
        ),
    },
    optional=("acknowledgeImpact",),
)

DEACTIVATE_BODY = closed(
    {
        "network": enum(Network),
        "force": nullable(
            {**BOOL, "default": False, "description": "deactivate even while nodes bind the set"}
        ),
    },
    optional=("force",),
)

CRL_CREATE = closed(
    {
        "crlPem": {
            **TEXT,
            "description": "one PEM X509 CRL block, signed by a CA of one of the set's "
            'versions. Anything else, "" included, answers 422 `malformed-pem`, never 400',
        },
        "description": _description("free text"),
    },
    optional=("description",),
)
