"""OpenAPI of safe trust changes (docs/api.md "Safe trust changes"): the impact, diff and rollback
operations and their schemas, merged into the document by openapi.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    nullable,
    ref,
)
from edgeproxy.domain.model import Network, Role

Operation = Callable[..., dict[str, Any]]

_CLIENT = closed(
    {
        "fingerprintSha256": {**SHA256, "description": "SHA-256 of the client's leaf (DER)"},
        "subject": TEXT,
        "issuer": TEXT,
        "sans": array(TEXT),
        "reason": nullable(
            {
                **TEXT,
                "description": "why the edge would refuse it: under this version "
                "(wouldBeRefused), under the version in force (newlyAccepted); a handshake "
                "reason such as unknown_ca, expired, revoked, no_active_version",
            }
        ),
        "firstSeen": DATE,
        "lastSeen": DATE,
        "handshakes": INT,
        "requests": INT,
        "lastOutcome": {**TEXT, "description": "`accepted`, or the reason of the last refusal"},
        "nodes": array(TEXT),
        "edgeCertificates": array(TEXT),
    }
)
_CERT = closed({"fingerprint": SHA256, "subject": TEXT})

SAFETY_SCHEMAS: dict[str, Schema] = {
    "AffectedClient": _CLIENT,
    "Impact": closed(
        {
            "caSetId": INT,
            "version": INT,
            "network": enum(Network),
            "activeVersion": nullable(INT),
            "clientsObserved": {**INT, "description": "distinct client leaves in the window"},
            "wouldBeRefused": array(ref("AffectedClient")),
            "newlyAccepted": array(ref("AffectedClient")),
        }
    ),
    "VersionDiff": closed(
        {
            "caSetId": INT,
            "from": INT,
            "to": INT,
            "added": array(_CERT),
            "removed": array(_CERT),
            "unchanged": array(_CERT),
            "flags": array(closed({"name": TEXT, "from": BOOL, "to": BOOL})),
        }
    ),
    "RollbackBody": closed(
        {
            "network": enum(Network),
            "acknowledgeImpact": nullable(
                {**BOOL, "default": False, "description": "go ahead although it refuses clients"}
            ),
        },
        optional=("acknowledgeImpact",),
    ),
}


def _required_query(name: str, schema: Schema, what: str) -> Schema:
    return {"name": name, "in": "query", "required": True, "description": what, "schema": schema}


SAFETY_PARAMETERS: dict[str, Schema] = {
    "networkQuery": _required_query("network", enum(Network), "the network to judge against"),
    "fromVersion": _required_query(
        "from", {"type": "integer", "minimum": 0}, "the version to compare with (the older one)"
    ),
}

_WINDOW = (
    "Clients are those the edge nodes recorded on the network's edge certificates bound to the "
    "set within `edge.client_records.window_days` (docs/configuration.md)."
)


def safety_paths(operation: Operation, sets: str) -> dict[str, dict[str, Any]]:
    version = f"{sets}/{{caSetId}}/versions/{{version}}"
    return {
        f"{version}/impact": {
            "get": operation(
                "getImpact",
                "Which clients seen on a network this version would refuse or newly accept",
                role=Role.VIEWER,
                ok=(200, ref("Impact")),
                params=("caSetId", "version", "networkQuery"),
                errors={
                    404: "No such CA set or version.",
                    409: "The CA set is deleted.",
                },
                note=f"{_WINDOW} Each recorded chain is verified against the version and "
                "against the version in force with the data plane's own verifier; "
                "`wouldBeRefused` lists the clients the version in force accepts and this one "
                "refuses.",
            ),
        },
        f"{version}/diff": {
            "get": operation(
                "getVersionDiff",
                "Certificates added, removed and unchanged from another version to this one",
                role=Role.VIEWER,
                ok=(200, ref("VersionDiff")),
                params=("caSetId", "version", "fromVersion"),
                errors={404: "No such CA set or version.", 409: "The CA set is deleted."},
            ),
        },
        f"{sets}/{{caSetId}}/rollback": {
            "post": operation(
                "rollback",
                "Activate again the version that was active before the current one",
                role=Role.ADMIN,
                ok=(202, ref("Activation")),
                params=("caSetId",),
                body=ref("RollbackBody"),
                errors={
                    404: "No CA set with this id.",
                    409: "Nothing to roll back to (`nothing-to-roll-back`), an activation is in "
                    "flight, the set is deleted, or the previous version would refuse clients "
                    "seen there (`activation-would-refuse-clients`; pass acknowledgeImpact).",
                    400: "Malformed request, or a certificate of the previous version no longer "
                    "passes validation (`certificate-validation-failure-activate`).",
                    422: "The CA list is too large for edge certificates that send it.",
                },
                note="Goes through the normal activation path (the same checks and warnings).",
            ),
        },
    }
