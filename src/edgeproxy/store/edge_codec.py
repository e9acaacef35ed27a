"""Row <-> model mapping of edge certificates, bindings and binding changes (both back ends)."""

from __future__ import annotations

import json
from typing import Any

from edgeproxy.domain.edge_model import (
    ALPN_PROTOCOLS,
    BindingChange,
    ChangeType,
    EdgeBinding,
    EdgeCertificate,
    MutualAuth,
    OcspSettings,
)
from edgeproxy.domain.model import ActivationStatus, Network
from edgeproxy.domain.secrets import Sealed
from edgeproxy.store.codec import (
    Row,
    dumps,
    field_errors_from_json,
    required_ts,
    rollout_from_row,
    ts,
)


def auth_to_json(auth: MutualAuth) -> str:
    """Every setting but the CA set (its own column, so bindings are found by set)."""
    return dumps(
        {
            "mode": auth.mode,
            "onFailure": auth.on_failure,
            "sendCaListToClient": auth.send_ca_list_to_client,
            "identityHeaders": list(auth.identity_headers),
            "verifyDepth": auth.verify_depth,
            "ocsp": {
                "enabled": auth.ocsp.enabled,
                "failureMode": auth.ocsp.failure_mode,
                "responder": auth.ocsp.responder,
                "checkIntermediates": auth.ocsp.check_intermediates,
            },
            "authorization": None if auth.authorization is None else json.loads(auth.authorization),
        }
    )


def auth_from_json(ca_set: str, text: str) -> MutualAuth:
    data: dict[str, Any] = json.loads(text)
    ocsp = data["ocsp"]
    return MutualAuth(
        ca_set=ca_set,
        mode=data["mode"],
        on_failure=data["onFailure"],
        send_ca_list_to_client=bool(data["sendCaListToClient"]),
        identity_headers=tuple(data["identityHeaders"]),
        verify_depth=int(data["verifyDepth"]),
        ocsp=OcspSettings(
            enabled=bool(ocsp["enabled"]),
            failure_mode=ocsp["failureMode"],
            responder=ocsp["responder"],
            check_intermediates=bool(ocsp["checkIntermediates"]),
        ),
        # Absent from settings stored before authorization rules existed: none.
        authorization=None if data.get("authorization") is None else dumps(data["authorization"]),
    )


def previous_to_json(auth: MutualAuth | None) -> str | None:
    if auth is None:
        return None
    return dumps({"caSet": auth.ca_set, "settings": json.loads(auth_to_json(auth))})


def previous_from_json(text: str | None) -> MutualAuth | None:
    if text is None:
        return None
    data = json.loads(text)
    return auth_from_json(data["caSet"], dumps(data["settings"]))


def edge_certificate_from_row(row: Row) -> EdgeCertificate:
    return EdgeCertificate(
        name=row["name"],
        hostnames=tuple(json.loads(row["hostnames"])),
        origin=row["origin"],
        default=bool(row["is_default"]),
        chain_pem=row["chain_pem"],
        sealed_key=Sealed.from_text(row["key_id"], row["key_nonce"], row["key_ciphertext"]),
        generation=int(row["generation"]),
        warnings=field_errors_from_json(row["warnings"]),
        created_by=row["created_by"],
        created_at=required_ts(row["created_at"]),
        modified_by=row["modified_by"],
        modified_at=ts(row["modified_at"]),
        rotated_at=ts(row["rotated_at"]),
        # NULL on rows stored before the column existed: the default.
        alpn=ALPN_PROTOCOLS if row["alpn"] is None else tuple(json.loads(row["alpn"])),
    )


def binding_from_row(row: Row) -> EdgeBinding:
    return EdgeBinding(
        edge_certificate=row["edge_certificate"],
        network=Network(row["network"]),
        auth=auth_from_json(row["ca_set_name"], row["settings"]),
        modified_by=row["modified_by"],
        modified_at=required_ts(row["modified_at"]),
    )


def change_from_row(row: Row) -> BindingChange:
    """A `binding_changes` row joined to its rollout (columns `r_*`, see edge_queries.py)."""
    return BindingChange(
        id=int(row["id"]),
        edge_certificate=row["edge_certificate"],
        network=Network(row["network"]),
        type=ChangeType(row["type"]),
        ca_set=row["ca_set_name"],
        previous=previous_from_json(row["previous"]),
        status=ActivationStatus(row["status"]),
        revision=int(row["revision"]),
        created_by=row["created_by"],
        created_at=required_ts(row["created_at"]),
        completed_at=ts(row["completed_at"]),
        failure_reason=row["failure_reason"],
        rollout=rollout_from_row(row, "r_") if row["r_id"] is not None else None,
    )
