"""The snapshot keeps each set's blocked certificates: a node on its last applied state while the
store is down still refuses them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from edgeproxy.dataplane.snapshot import read_snapshot, write_snapshot
from edgeproxy.domain.model import BlockedCertificate, Network
from edgeproxy.tls.blocklist import BlockList
from edgeproxy.tls.trust import TrustAnchors

NOW = datetime.now(UTC).replace(microsecond=0)


def test_the_snapshot_keeps_blocked_certificates(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_der = x509.load_pem_x509_certificate(ca.cert_pem.bytes()).public_bytes(Encoding.DER)
    blocks = BlockList.of(
        [
            BlockedCertificate(1, 1, "ab" * 32, None, None, "leaked", None, "ops", NOW),
            BlockedCertificate(
                2, 1, None, "CN=Partner CA", "1a2b", "lost", NOW + timedelta(days=1), "ops", NOW
            ),
        ]
    )
    path = tmp_path / "snapshot.json"
    active = {"partners": TrustAnchors.from_der("partners", 4, (ca_der,), blocked=blocks)}
    write_snapshot(path, Network.STAGING, 9, active)
    loaded = read_snapshot(path, Network.STAGING)
    assert loaded is not None
    anchors = loaded.active["partners"]
    assert anchors is not None
    assert anchors.blocked.key == blocks.key
    assert anchors.key == active["partners"].key

    document = json.loads(path.read_text())
    del document["caSets"]["partners"]["blocked"]  # as written before blocks existed
    path.write_text(json.dumps(document))
    old = read_snapshot(path, Network.STAGING)
    assert old is not None
    assert old.active["partners"] is not None
    assert not old.active["partners"].blocked
