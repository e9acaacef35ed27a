"""Edge certificates, bindings and binding changes to the API's JSON shapes (docs/api.md
"Edge certificates"). A private key has no field here: nothing can serialise it."""

from __future__ import annotations

import json
from typing import Any

from edgeproxy.admin.serialize import _problems as problems
from edgeproxy.admin.serialize import _time as time
from edgeproxy.admin.serialize import rollout
from edgeproxy.domain.edge_model import BindingChange, EdgeBinding, LeafInfo, MutualAuth, Source
from edgeproxy.domain.model import Network
from edgeproxy.domain.rollout import RolloutView
from edgeproxy.service.edge_certificates import EdgeView

EDGE_BASE = "/edge/v1"


def edge_link(name: str) -> str:
    return f"{EDGE_BASE}/edge-certificates/{name}"


def binding_link(name: str, network: Network) -> str:
    return f"{edge_link(name)}/mutual-authentication/{network.value}"


def _leaf(leaf: LeafInfo) -> dict[str, Any]:
    return {
        "subject": leaf.subject,
        "issuer": leaf.issuer,
        "startDate": time(leaf.start_date),
        "endDate": time(leaf.end_date),
        "fingerprint": leaf.fingerprint,
        "serialNumber": leaf.serial_number,
        "dnsNames": list(leaf.dns_names),
        "keyType": leaf.key_type,
        "chainLength": leaf.chain_length,
    }


def edge_certificate(v: EdgeView) -> dict[str, Any]:
    cert, declared = v.cert, v.declared
    summary: dict[str, Any] = {n.value: None for n in Network}
    if cert is not None:
        for b in v.bindings:
            summary[b.network.value] = {
                "caSetName": b.auth.ca_set,
                "link": binding_link(v.name, b.network),
            }
    elif declared is not None:
        for network, ca_set in declared.ca_sets.items():
            summary[network.value] = {"caSetName": ca_set, "link": None}
    return {
        "name": v.name,
        "source": (Source.STORE if cert is not None else Source.CONFIG).value,
        "hostnames": list(cert.hostnames if cert else declared.hostnames if declared else ()),
        "origin": cert.origin if cert else declared.origin if declared else None,
        "default": cert.default if cert else None,
        "alpn": list(cert.alpn) if cert else None,
        "certificate": _leaf(v.leaf) if v.leaf is not None else None,
        "certificateChainPem": cert.chain_pem if cert else None,
        "generation": cert.generation if cert else None,
        "createdBy": cert.created_by if cert else None,
        "createdDate": time(cert.created_at) if cert else None,
        "modifiedBy": cert.modified_by if cert else None,
        "modifiedDate": time(cert.modified_at) if cert else None,
        "rotatedDate": time(cert.rotated_at) if cert else None,
        "mutualAuthentication": summary,
        "nodes": list(v.nodes),
        "warnings": problems(v.warnings or (cert.warnings if cert else ())),
        "edgeCertificateLink": edge_link(v.name),
    }


def auth(a: MutualAuth) -> dict[str, Any]:
    return {
        "caSetName": a.ca_set,
        "mode": a.mode,
        "onFailure": a.on_failure,
        "sendCaListToClient": a.send_ca_list_to_client,
        "identityHeaders": list(a.identity_headers),
        "verifyDepth": a.verify_depth,
        "ocsp": {
            "enabled": a.ocsp.enabled,
            "failureMode": a.ocsp.failure_mode,
            "responder": a.ocsp.responder,
            "checkIntermediates": a.ocsp.check_intermediates,
        },
        "authorization": None if a.authorization is None else json.loads(a.authorization),
    }


def change(c: BindingChange) -> dict[str, Any]:
    return {
        "changeId": c.id,
        "edgeCertificate": c.edge_certificate,
        "network": c.network.value,
        "changeType": c.type.value,
        "caSetName": c.ca_set,
        "status": c.status.value,
        "failureReason": c.failure_reason,
        "createdBy": c.created_by,
        "createdDate": time(c.created_at),
        "completedDate": time(c.completed_at),
        "changeLink": f"{EDGE_BASE}/binding-changes/{c.id}",
        **rollout(RolloutView.of(c.rollout)),
    }


def binding(b: EdgeBinding, latest: BindingChange | None) -> dict[str, Any]:
    return {
        "edgeCertificate": b.edge_certificate,
        "network": b.network.value,
        **auth(b.auth),
        "modifiedBy": b.modified_by,
        "modifiedDate": time(b.modified_at),
        "latestChange": change(latest) if latest is not None else None,
    }
