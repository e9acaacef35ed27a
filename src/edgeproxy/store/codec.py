"""Row <-> model mapping shared by both back ends (SQLite returns text where PostgreSQL types)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from edgeproxy.domain.errors import FieldError
from edgeproxy.domain.model import (
    Activation,
    ActivationStatus,
    ActivationType,
    Activity,
    ActivityType,
    Binding,
    BlockedCertificate,
    CaSet,
    CaSetStatus,
    Certificate,
    Crl,
    Network,
    Node,
    NodeOutcome,
    NodeProgress,
    Rollout,
    Version,
)
from edgeproxy.store.db import Record

Row = Record


def ts(value: Any) -> datetime | None:
    """A timestamp column as an aware UTC datetime (SQLite stores ISO text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC)


def required_ts(value: Any) -> datetime:
    parsed = ts(value)
    if parsed is None:
        raise ValueError("timestamp column is NULL")
    return parsed


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def certificate_to_json(cert: Certificate) -> dict[str, Any]:
    return {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "startDate": cert.start_date.isoformat(),
        "endDate": cert.end_date.isoformat(),
        "fingerprint": cert.fingerprint,
        "serialNumber": cert.serial_number,
        "signatureAlgorithm": cert.signature_algorithm,
        "certificatePem": cert.certificate_pem,
        "description": cert.description,
    }


def certificate_from_json(data: Mapping[str, Any]) -> Certificate:
    return Certificate(
        subject=data["subject"],
        issuer=data["issuer"],
        start_date=required_ts(data["startDate"]),
        end_date=required_ts(data["endDate"]),
        fingerprint=data["fingerprint"],
        serial_number=data["serialNumber"],
        signature_algorithm=data["signatureAlgorithm"],
        certificate_pem=data["certificatePem"],
        description=data.get("description"),
    )


def field_errors_to_json(errors: tuple[FieldError, ...]) -> str:
    return dumps([e.as_dict() for e in errors])


def field_errors_from_json(text: str) -> tuple[FieldError, ...]:
    return tuple(FieldError(**item) for item in json.loads(text))


def ca_set_from_row(row: Row, latest_version: int | None) -> CaSet:
    return CaSet(
        id=int(row["id"]),
        name=row["name"],
        description=row["description"],
        status=CaSetStatus(row["status"]),
        created_by=row["created_by"],
        created_at=required_ts(row["created_at"]),
        latest_version=latest_version,
        staging_version=row["staging_version"],
        production_version=row["production_version"],
        deleted_by=row["deleted_by"],
        delete_requested_at=ts(row["delete_requested_at"]),
        deleted_at=ts(row["deleted_at"]),
        delete_failure=row["delete_failure"],
    )


def version_from_row(row: Row) -> Version:
    return Version(
        ca_set_id=int(row["ca_set_id"]),
        version=int(row["version"]),
        description=row["description"],
        allow_insecure_sha1=bool(row["allow_insecure_sha1"]),
        require_root_certificate=bool(row["require_root_certificate"]),
        certificates=tuple(certificate_from_json(c) for c in json.loads(row["certificates"])),
        created_by=row["created_by"],
        created_at=required_ts(row["created_at"]),
        modified_by=row["modified_by"],
        modified_at=ts(row["modified_at"]),
        first_activated_at=ts(row["first_activated_at"]),
        warnings=field_errors_from_json(row["warnings"]),
    )


def activation_from_row(row: Row) -> Activation:
    return Activation(
        id=int(row["id"]),
        ca_set_id=int(row["ca_set_id"]),
        version=int(row["version"]),
        network=Network(row["network"]),
        type=ActivationType(row["type"]),
        status=ActivationStatus(row["status"]),
        created_by=row["created_by"],
        created_at=required_ts(row["created_at"]),
        revision=int(row["revision"]),
        previous_version=row["previous_version"],
        completed_at=ts(row["completed_at"]),
        failure_reason=row["failure_reason"],
        percent_complete=int(row["percent_complete"]),
        warnings=field_errors_from_json(row["warnings"]),
        rollout=rollout_from_row(row, "r_") if row["r_id"] is not None else None,
    )


def rollout_nodes_to_json(nodes: Mapping[str, NodeOutcome] | None) -> str | None:
    if nodes is None:
        return None
    return dumps(
        {
            name: {"state": o.state.value, "detail": o.detail, "lost": o.lost}
            for name, o in nodes.items()
        }
    )


def rollout_from_row(row: Row, prefix: str = "") -> Rollout:
    """A `rollouts` row; `prefix` names its columns when joined to its change's row."""
    text = row[f"{prefix}nodes"]
    nodes = (
        {
            name: NodeOutcome(NodeProgress(o["state"]), o["detail"], o["lost"])
            for name, o in json.loads(text).items()
        }
        if text is not None
        else None
    )
    return Rollout(
        kind=row[f"{prefix}kind"],
        network=Network(row[f"{prefix}network"]),
        revision=int(row[f"{prefix}revision"]),
        watch=row[f"{prefix}watch"],
        started_at=required_ts(row[f"{prefix}started_at"]),
        nodes=nodes,
        status=ActivationStatus(row[f"{prefix}status"]),
        completed_at=ts(row[f"{prefix}completed_at"]),
        id=int(row[f"{prefix}id"]),
    )


def activity_from_row(row: Row) -> Activity:
    return Activity(
        ca_set_id=int(row["ca_set_id"]),
        type=ActivityType(row["type"]),
        at=required_ts(row["at"]),
        by=row["actor"],
        network=Network(row["network"]) if row["network"] else None,
        version=row["version"],
        edge_certificate=row["edge_certificate"],
        acknowledged_refusals=row["acknowledged_refusals"],
    )


def bindings_to_json(bindings: tuple[Binding, ...]) -> str:
    return dumps(
        [
            {
                "edgeCertificate": b.edge_certificate,
                "hostnames": list(b.hostnames),
                "caSet": b.ca_set,
                "sendCaListToClient": b.send_ca_list_to_client,
                "source": b.source,
                "origin": b.origin,
            }
            for b in bindings
        ]
    )


def node_from_row(row: Row) -> Node:
    return Node(
        name=row["name"],
        network=Network(row["network"]),
        roles=tuple(json.loads(row["roles"])),
        started_at=required_ts(row["started_at"]),
        last_seen=required_ts(row["last_seen"]),
        bindings=tuple(
            Binding(
                edge_certificate=b["edgeCertificate"],
                hostnames=tuple(b["hostnames"]),
                ca_set=b["caSet"],
                send_ca_list_to_client=bool(b["sendCaListToClient"]),
                source=b.get("source", "config"),
                origin=b.get("origin"),
            )
            for b in json.loads(row["bindings"])
        ),
        applied_revision=int(row["applied_revision"]),
        applied_versions=json.loads(row["applied_versions"]),
        apply_errors=json.loads(row["apply_errors"]),
        applied_at=ts(row["applied_at"]),
    )


def block_from_row(row: Row) -> BlockedCertificate:
    return BlockedCertificate(
        id=int(row["id"]),
        ca_set_id=int(row["ca_set_id"]),
        fingerprint=row["fingerprint"],
        issuer=row["issuer"],
        serial_number=row["serial_number"],
        reason=row["reason"],
        expires_at=ts(row["expires_at"]),
        created_by=row["created_by"],
        created_at=required_ts(row["created_at"]),
    )


def crl_from_row(row: Row) -> Crl:
    number = row["crl_number"]
    return Crl(
        id=int(row["id"]),
        ca_set_id=int(row["ca_set_id"]),
        issuer=row["issuer"],
        issuer_fingerprint=row["issuer_fingerprint"],
        this_update=required_ts(row["this_update"]),
        next_update=ts(row["next_update"]),
        # Decimal text: a CRL number may be 20 octets, wider than any SQL integer (RFC 5280).
        crl_number=int(number) if number is not None else None,
        revoked_count=int(row["revoked_count"]),
        fingerprint=row["fingerprint"],
        crl_pem=row["crl_pem"],
        description=row["description"],
        created_by=row["created_by"],
        created_at=required_ts(row["created_at"]),
    )
