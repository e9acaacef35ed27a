"""The OpenAPI part of blocked certificates (block_routes.py): paths, schemas, the path parameter.

`openapi.py` merges these in, handing over its operation builder so every operation is described
the same way.
"""

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
    closed,
    listing,
    nullable,
    ref,
)
from edgeproxy.admin.serialize import BASE
from edgeproxy.domain.blocks import MAX_BLOCKED_PER_SET, MAX_REASON
from edgeproxy.domain.model import Role

_SERIAL = {"type": "string", "pattern": "^[0-9a-f]{1,40}$"}

BLOCK_SCHEMAS: dict[str, Schema] = {
    "BlockedCertificate": closed(
        {
            "blockId": INT,
            "caSetId": INT,
            "fingerprintSha256": {**nullable(SHA256), "description": "set, or issuer and serial"},
            "issuer": nullable({**TEXT, "description": "RFC 4514"}),
            "serialNumber": nullable({**_SERIAL, "description": "hex, no leading zeros"}),
            "reason": TEXT,
            "expiresAt": {**nullable(DATE), "description": "null: until unblocked"},
            "expired": {**BOOL, "description": "past expiresAt: it refuses no one any more"},
            "createdBy": TEXT,
            "createdDate": DATE,
        }
    ),
    "BlockCreate": closed(
        {
            "fingerprintSha256": nullable(
                {
                    **TEXT,
                    "description": "SHA-256 of the certificate's DER, 64 hex digits "
                    "(colons allowed)",
                }
            ),
            "issuer": nullable({**TEXT, "description": "the certificate's issuer DN, RFC 4514"}),
            "serialNumber": nullable(
                {**TEXT, "description": "the certificate's serial number in hex (colons, 0x)"}
            ),
            "reason": {**TEXT, "maxLength": MAX_REASON, "description": "why (shown and audited)"},
            "expiresAt": nullable(
                {**DATE, "description": "when the block lapses by itself; absent: never"}
            ),
        },
        optional=("fingerprintSha256", "issuer", "serialNumber", "expiresAt"),
    ),
}

BLOCK_PARAMETERS: dict[str, Schema] = {
    "blockId": {
        "name": "blockId",
        "in": "path",
        "required": True,
        "description": "the block's id",
        "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    }
}


def block_paths(operation: Callable[..., dict[str, Any]]) -> dict[str, dict[str, Any]]:
    blocks = f"{BASE}/ca-sets/{{caSetId}}/blocked-certificates"
    gone = "The CA set is deleted or being deleted."
    return {
        blocks: {
            "post": operation(
                "blockCertificate",
                "Block one client certificate of a CA set now, on every network",
                role=Role.EDITOR,
                ok=(201, ref("BlockedCertificate")),
                params=("caSetId",),
                body=ref("BlockCreate"),
                errors={
                    404: "No CA set with this id.",
                    409: f"{gone} Or the certificate is blocked already (`duplicate-block`, "
                    "with `blockId`).",
                    422: "Not exactly one of fingerprintSha256 or issuer + serialNumber "
                    "(`ambiguous-block`, `incomplete-block`), a malformed fingerprint, DN or "
                    "serial, an empty reason, an expiry in the past, or more than "
                    f"{MAX_BLOCKED_PER_SET} blocks in the set.",
                },
                note="Edge nodes refuse the certificate's handshakes (reason `blocked`) and close "
                "its open connections after their in-flight request once they applied the "
                "change, like a CRL; the BLOCK_CERTIFICATE activity records who.",
            ),
            "get": operation(
                "listBlockedCertificates",
                "List a CA set's blocked certificates, expired ones marked",
                role=Role.VIEWER,
                ok=(200, listing("blockedCertificates", "BlockedCertificate")),
                params=("caSetId",),
                errors={404: "No CA set with this id."},
            ),
        },
        f"{blocks}/{{blockId}}": {
            "delete": operation(
                "unblockCertificate",
                "Lift a block (the UNBLOCK_CERTIFICATE activity remains)",
                role=Role.EDITOR,
                ok=(204, None),
                params=("caSetId", "blockId"),
                errors={404: "No such CA set or block.", 409: gone},
            ),
        },
    }
