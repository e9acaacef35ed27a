"""Domain objects to the API's JSON shapes (camelCase, as the reference product's v2 API)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from edgeproxy.domain.blocks import in_force
from edgeproxy.domain.certificates import ValidationReport
from edgeproxy.domain.clients import CertificateChange, Impact, VersionDiff
from edgeproxy.domain.crls import CrlState
from edgeproxy.domain.errors import FieldError
from edgeproxy.domain.model import (
    Activation,
    Activity,
    BlockedCertificate,
    CaSet,
    CaSetStatus,
    Certificate,
    Network,
    Node,
    Version,
)
from edgeproxy.domain.rollout import RolloutView
from edgeproxy.service.ca_sets import DeleteStatus
from edgeproxy.service.reconcile import Forgotten
from edgeproxy.service.shared import Association

BASE = "/mtls-edge-truststore/v2"


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _problems(items: tuple[FieldError, ...]) -> list[dict[str, str]]:
    return [i.as_dict() for i in items]


def ca_set(s: CaSet, warnings: tuple[FieldError, ...] = ()) -> dict[str, Any]:
    """A CA set; `warnings`: what needs an operator (a CRL in effect past its nextUpdate)."""
    return {
        "caSetId": s.id,
        "caSetName": s.name,
        "description": s.description,
        "caSetStatus": s.status.value,
        "latestVersion": s.latest_version,
        "stagingVersion": s.staging_version,
        "productionVersion": s.production_version,
        "createdBy": s.created_by,
        "createdDate": _time(s.created_at),
        # A deletion that failed returns the set to NOT_DELETED: it carries no deletion fields.
        "deletedBy": s.deleted_by if s.status is not CaSetStatus.NOT_DELETED else None,
        "deletedDate": _time(s.deleted_at) if s.status is CaSetStatus.DELETED else None,
        "caSetLink": f"{BASE}/ca-sets/{s.id}",
        "versionsLink": f"{BASE}/ca-sets/{s.id}/versions",
        "warnings": _problems(warnings),
    }


def certificate(c: Certificate) -> dict[str, Any]:
    return {
        "subject": c.subject,
        "issuer": c.issuer,
        "startDate": _time(c.start_date),
        "endDate": _time(c.end_date),
        "fingerprint": c.fingerprint,
        "serialNumber": c.serial_number,
        "signatureAlgorithm": c.signature_algorithm,
        "certificatePem": c.certificate_pem,
        "description": c.description,
    }


def version(v: Version, s: CaSet) -> dict[str, Any]:
    def status(network: Network) -> str:
        return "ACTIVE" if s.active_version(network) == v.version else "INACTIVE"

    return {
        "caSetId": v.ca_set_id,
        "version": v.version,
        "description": v.description,
        "allowInsecureSha1": v.allow_insecure_sha1,
        "requireRootCertificate": v.require_root_certificate,
        "stagingStatus": status(Network.STAGING),
        "productionStatus": status(Network.PRODUCTION),
        # A set deleted or being deleted takes no writes (409), whatever the version's own state.
        "editable": not v.locked and s.status is CaSetStatus.NOT_DELETED,
        "history": s.status is CaSetStatus.DELETED,
        "createdBy": v.created_by,
        "createdDate": _time(v.created_at),
        "modifiedBy": v.modified_by,
        "modifiedDate": _time(v.modified_at),
        "certificates": [certificate(c) for c in v.certificates],
        "validation": {"warnings": _problems(v.warnings)},
        "versionLink": f"{BASE}/ca-sets/{v.ca_set_id}/versions/{v.version}",
    }


def validation(report: ValidationReport) -> dict[str, Any]:
    return {
        "valid": report.ok,
        "certificates": [certificate(c) for c in report.certificates],
        "errors": _problems(report.errors),
        "warnings": _problems(report.warnings),
    }


def activation(a: Activation) -> dict[str, Any]:
    return {
        "activationId": a.id,
        "caSetId": a.ca_set_id,
        "version": a.version,
        "network": a.network.value,
        "activationType": a.type.value,
        "activationStatus": a.status.value,
        "percentComplete": a.percent_complete,
        "failureReason": a.failure_reason,
        "createdBy": a.created_by,
        "createdDate": _time(a.created_at),
        "completedDate": _time(a.completed_at),
        "validation": {"warnings": _problems(a.warnings)},
        "activationLink": (f"{BASE}/ca-sets/{a.ca_set_id}/versions/{a.version}/activations/{a.id}"),
        **rollout(RolloutView.of(a.rollout)),
    }


def rollout(view: RolloutView) -> dict[str, Any]:
    """The node lists of a change converging on its network (domain/rollout.py), and the warnings
    of how it went: no node to wait for, or nodes declared lost."""
    return {
        "expectedNodes": list(view.expected),
        "pendingNodes": list(view.pending),
        "appliedNodes": list(view.applied),
        "failedNodes": list(view.failed),
        "lostNodes": list(view.lost),
        "warnings": _problems(view.warnings),
    }


def activity(a: Activity) -> dict[str, Any]:
    return {
        "type": a.type.value,
        "network": a.network.value if a.network else None,
        "version": a.version,
        "activityDate": _time(a.at),
        "activityBy": a.by,
        "edgeCertificate": a.edge_certificate,
        **(
            {"acknowledgedRefusals": a.acknowledged_refusals}
            if a.acknowledged_refusals is not None
            else {}
        ),
    }


def impact(i: Impact) -> dict[str, Any]:
    return {
        "caSetId": i.ca_set_id,
        "version": i.version,
        "network": i.network.value,
        "activeVersion": i.active_version,
        "clientsObserved": i.clients_observed,
        "wouldBeRefused": [a.as_dict() for a in i.would_be_refused],
        "newlyAccepted": [a.as_dict() for a in i.newly_accepted],
    }


def version_diff(d: VersionDiff) -> dict[str, Any]:
    def certs(items: tuple[CertificateChange, ...]) -> list[dict[str, str]]:
        return [{"fingerprint": c.fingerprint, "subject": c.subject} for c in items]

    return {
        "caSetId": d.ca_set_id,
        "from": d.from_version,
        "to": d.to_version,
        "added": certs(d.added),
        "removed": certs(d.removed),
        "unchanged": certs(d.unchanged),
        "flags": [{"name": f.name, "from": f.before, "to": f.after} for f in d.flags],
    }


def delete_status(d: DeleteStatus) -> dict[str, Any]:
    return {
        "status": d.status.value,
        "caSetId": d.ca_set.id,
        "caSetName": d.ca_set.name,
        "startTime": _time(d.ca_set.delete_requested_at),
        "endTime": _time(d.ca_set.deleted_at),
        "failureReason": d.ca_set.delete_failure,
    }


def association(a: Association) -> dict[str, Any]:
    return {
        "node": a.node,
        "network": a.network.value,
        "edgeCertificate": a.edge_certificate,
        "hostnames": list(a.hostnames),
        "source": a.source,
        "nodes": list(a.nodes),
    }


def node(n: Node, *, live: bool, lost: bool) -> dict[str, Any]:
    return {
        "name": n.name,
        "network": n.network.value,
        "roles": list(n.roles),
        "live": live,
        "lost": lost,
        "startedDate": _time(n.started_at),
        "lastSeenDate": _time(n.last_seen),
        "appliedRevision": n.applied_revision,
        "appliedDate": _time(n.applied_at),
        "appliedVersions": n.applied_versions,
        "applyErrors": n.apply_errors,
        "bindings": [
            {
                "edgeCertificate": b.edge_certificate,
                "hostnames": list(b.hostnames),
                "caSet": b.ca_set,
                "sendCaListToClient": b.send_ca_list_to_client,
                "source": b.source,
            }
            for b in n.bindings
        ],
    }


def forgotten(f: Forgotten) -> dict[str, Any]:
    return {
        "forgottenNodes": list(f.nodes),
        "changes": [
            {"kind": r.kind, "status": r.status.value, **rollout(RolloutView.of(r))}
            for r in f.rollouts
        ],
    }


def blocked_certificate(b: BlockedCertificate, now: datetime) -> dict[str, Any]:
    return {
        "blockId": b.id,
        "caSetId": b.ca_set_id,
        "fingerprintSha256": b.fingerprint,
        "issuer": b.issuer,
        "serialNumber": b.serial_number,
        "reason": b.reason,
        "expiresAt": _time(b.expires_at),
        "expired": not in_force(b, now),
        "createdBy": b.created_by,
        "createdDate": _time(b.created_at),
    }


def crl(state: CrlState) -> dict[str, Any]:
    c = state.crl
    return {
        "crlId": c.id,
        "caSetId": c.ca_set_id,
        "issuer": c.issuer,
        "issuerFingerprint": c.issuer_fingerprint,
        "thisUpdate": _time(c.this_update),
        "nextUpdate": _time(c.next_update),
        # A string: CRL numbers reach 20 octets, past what JSON numbers carry exactly.
        "crlNumber": str(c.crl_number) if c.crl_number is not None else None,
        "revokedCount": c.revoked_count,
        "fingerprint": c.fingerprint,
        "crlPem": c.crl_pem,
        "description": c.description,
        "effective": state.effective,
        "expired": state.expired,
        "warnings": _problems(state.warnings),
        "createdBy": c.created_by,
        "createdDate": _time(c.created_at),
    }
