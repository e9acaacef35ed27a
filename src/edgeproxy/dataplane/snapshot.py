"""The last applied trust state on local disk: what a node enforces while the store is down
(docs/architecture.md)."""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edgeproxy.domain.model import BlockedCertificate, Network
from edgeproxy.tls.blocklist import BlockList
from edgeproxy.tls.trust import TrustAnchors

log = logging.getLogger(__name__)
FORMAT = 1


def write_snapshot(
    path: Path, network: Network, revision: int, active: Mapping[str, TrustAnchors | None]
) -> None:
    """Atomically replace the snapshot (write aside, fsync, rename): never a torn file."""
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


def read_snapshot(
    path: Path, network: Network
) -> tuple[int, dict[str, TrustAnchors | None]] | None:
    """The snapshot's (revision, active sets), or None when absent, unreadable or foreign.

    Parses every certificate: call it off the event loop."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT or document.get("network") != network.value:
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
        return int(document["revision"]), active
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.error("unreadable trust snapshot", extra={"path": str(path), "error": str(error)})
        return None
