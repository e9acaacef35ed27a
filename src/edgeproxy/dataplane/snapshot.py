"""The last applied trust state on local disk: what a node enforces while the store is down
(docs/architecture.md)."""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from edgeproxy.domain.certificates import parse_certificate_pem
from edgeproxy.domain.model import Network, Version
from edgeproxy.tls.trust import TrustAnchors

log = logging.getLogger(__name__)
FORMAT = 1


@dataclass(frozen=True)
class ActiveSet:
    """A CA set's active version as a node enforces it: anchors plus what the metrics show."""

    anchors: TrustAnchors
    expiries: tuple[tuple[str, float], ...]  # (SHA-256 fingerprint, notAfter Unix time)

    @property
    def version(self) -> int:
        return self.anchors.version

    @classmethod
    def from_version(
        cls, ca_set: str, version: Version | None, crls_der: tuple[bytes, ...] = ()
    ) -> ActiveSet:
        """`crls_der`: the set's effective CRLs (the store's `TrustView.crls`), any version."""
        assert version is not None
        ders = tuple(
            cert.public_bytes(Encoding.DER)
            for c in version.certificates
            for cert in parse_certificate_pem(c.certificate_pem)
        )
        return cls(
            TrustAnchors(
                ca_set, version.version, ders, version.require_root_certificate, tuple(crls_der)
            ),
            tuple((c.fingerprint, c.end_date.timestamp()) for c in version.certificates),
        )

    @classmethod
    def from_der(
        cls,
        ca_set: str,
        version: int,
        ders: tuple[bytes, ...],
        root: bool,
        crls_der: tuple[bytes, ...] = (),
    ) -> ActiveSet:
        certs = [x509.load_der_x509_certificate(d) for d in ders]
        return cls(
            TrustAnchors(ca_set, version, ders, root, crls_der),
            tuple(
                (c.fingerprint(hashes.SHA256()).hex(), c.not_valid_after_utc.timestamp())
                for c in certs
            ),
        )


def write_snapshot(
    path: Path, network: Network, revision: int, active: dict[str, ActiveSet | None]
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
                "requireRootCertificate": a.anchors.require_root_certificate,
                "certificatesDer": [
                    base64.b64encode(d).decode() for d in a.anchors.certificates_der
                ],
                "crlsDer": [base64.b64encode(d).decode() for d in a.anchors.crls_der],
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


def read_snapshot(path: Path, network: Network) -> tuple[int, dict[str, ActiveSet | None]] | None:
    """The snapshot's (revision, active sets), or None when absent, unreadable or foreign."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT or document.get("network") != network.value:
            log.warning("ignoring a trust snapshot of another format or network")
            return None
        active: dict[str, ActiveSet | None] = {}
        for name, entry in document["caSets"].items():
            active[name] = (
                None
                if entry is None
                else ActiveSet.from_der(
                    name,
                    int(entry["version"]),
                    tuple(base64.b64decode(d) for d in entry["certificatesDer"]),
                    bool(entry["requireRootCertificate"]),
                    # Absent in snapshots written before CRLs existed: none, as then.
                    tuple(base64.b64decode(d) for d in entry.get("crlsDer", ())),
                )
            )
        return int(document["revision"]), active
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.error("unreadable trust snapshot", extra={"path": str(path), "error": str(error)})
        return None
