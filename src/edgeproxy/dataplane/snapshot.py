"""The last applied trust state on local disk: what a node enforces while the store is down
(docs/architecture.md).

It holds, per bound CA set, the active version's certificates and CRLs (DER), and the
store-managed edge certificates with their bindings on this network: the chain, and the private
key exactly as the store holds it, sealed under the key-encryption key (never in clear)."""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgeproxy.config.model import EdgeCertificateConfig
from edgeproxy.dataplane.store_edges import edge_config, mutual_auth
from edgeproxy.domain.edge_model import ALPN_PROTOCOLS, EdgeMaterial
from edgeproxy.domain.model import BlockedCertificate, Network
from edgeproxy.domain.secrets import Sealed
from edgeproxy.store.edge_codec import auth_from_json, auth_to_json
from edgeproxy.tls.blocklist import BlockList
from edgeproxy.tls.trust import TrustAnchors

log = logging.getLogger(__name__)
FORMAT = 2
READABLE = (1, 2)  # format 1: written before store-managed edge certificates existed


@dataclass(frozen=True)
class Snapshot:
    revision: int
    active: dict[str, TrustAnchors | None]
    edges: tuple[EdgeCertificateConfig, ...] = ()  # the store-managed ones


def _edge_json(edge: EdgeCertificateConfig) -> dict[str, Any]:
    material = edge.material
    assert material is not None
    key_id, nonce, ciphertext = material.sealed_key.to_text()
    auth = edge.mutual_authentication
    return {
        "name": edge.name,
        "hostnames": list(edge.hostnames),
        "origin": edge.origin,
        "default": edge.default,
        "alpn": list(edge.alpn),
        "chainPem": material.chain_pem,
        "generation": material.generation,
        "sealedKey": {"keyId": key_id, "nonce": nonce, "ciphertext": ciphertext},
        "binding": None
        if edge.unbound
        else {"caSet": auth.ca_set, "settings": json.loads(auth_to_json(mutual_auth(auth)))},
    }


def _edge_from_json(entry: dict[str, Any]) -> EdgeCertificateConfig:
    sealed = entry["sealedKey"]
    binding = entry["binding"]
    return edge_config(
        entry["name"],
        tuple(entry["hostnames"]),
        entry["origin"],
        bool(entry["default"]),
        EdgeMaterial(
            entry["chainPem"],
            Sealed.from_text(sealed["keyId"], sealed["nonce"], sealed["ciphertext"]),
            int(entry["generation"]),
        ),
        None
        if binding is None
        else auth_from_json(binding["caSet"], json.dumps(binding["settings"])),
        # Absent from snapshots written before store-managed edges had it: the default.
        tuple(entry.get("alpn", ALPN_PROTOCOLS)),
    )


def write_snapshot(
    path: Path,
    network: Network,
    revision: int,
    active: Mapping[str, TrustAnchors | None],
    edges: Sequence[EdgeCertificateConfig] = (),
) -> None:
    """Atomically replace the snapshot (write aside, fsync, rename): never a torn file.
    `edges`: the store-managed edge certificates in force (others are ignored)."""
    document = {
        "format": FORMAT,
        "network": network.value,
        "revision": revision,
        "caSets": {
            name: None
            if a is None
            else {
                "version": a.version,
                "requireRootCertificate": a.require_root_certificate,
                "certificatesDer": [base64.b64encode(d).decode() for d in a.certificates_der],
                "crlsDer": [base64.b64encode(d).decode() for d in a.crls_der],
                "blocked": [
                    {"fingerprint": f, "issuer": i, "serialNumber": n, "expires": e}
                    for f, i, n, e in a.blocked.key
                ],
            }
            for name, a in active.items()
        },
        "edgeCertificates": [_edge_json(e) for e in edges if e.material is not None],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _blocked(entries: list[dict[str, Any]]) -> BlockList:
    """The block list as the snapshot keeps it (absent before blocks existed: none)."""
    return BlockList.of(
        BlockedCertificate(
            id=0,
            ca_set_id=0,
            fingerprint=e["fingerprint"],
            issuer=e["issuer"],
            serial_number=e["serialNumber"],
            reason="",
            expires_at=None if e["expires"] is None else datetime.fromtimestamp(e["expires"], UTC),
            created_by="",
            created_at=datetime.fromtimestamp(0, UTC),
        )
        for e in entries
    )


def read_snapshot(path: Path, network: Network) -> Snapshot | None:
    """The snapshot, or None when absent, unreadable or foreign.

    Parses every certificate: call it off the event loop."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") not in READABLE or document.get("network") != network.value:
            log.warning("ignoring a trust snapshot of another format or network")
            return None
        active: dict[str, TrustAnchors | None] = {}
        for name, entry in document["caSets"].items():
            active[name] = (
                None
                if entry is None
                else TrustAnchors.from_der(
                    name,
                    int(entry["version"]),
                    tuple(base64.b64decode(d) for d in entry["certificatesDer"]),
                    bool(entry["requireRootCertificate"]),
                    # Absent in snapshots written before CRLs existed: none, as then.
                    tuple(base64.b64decode(d) for d in entry.get("crlsDer", ())),
                    _blocked(entry.get("blocked", ())),
                )
            )
        edges = tuple(_edge_from_json(e) for e in document.get("edgeCertificates", ()))
        return Snapshot(int(document["revision"]), active, edges)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.error("unreadable trust snapshot", extra={"path": str(path), "error": str(error)})
        return None
