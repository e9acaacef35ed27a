"""The client records' flush: a batch reaches the store with the leaf described once, a batch the
store refuses is kept and goes with the next one, and the window drops old records in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edgeproxy.config.model import ClientRecordsConfig, EdgeCertificateConfig, MutualAuthConfig
from edgeproxy.dataplane.client_flush import ClientFlusher
from edgeproxy.dataplane.clients import ClientRecorder
from edgeproxy.domain.model import Network
from edgeproxy.service.fleet import FleetService
from edgeproxy.store import Store, StoreUnavailable, open_store
from edgeproxy.tls.session import TlsSession, VerifyResult
from support.pki import Pki


def _session(chain: tuple[bytes, ...]) -> TlsSession:
    edge = EdgeCertificateConfig(
        name="api",
        hostnames=("api.example.com",),
        certificate=Path("api.pem"),
        private_key=Path("api.key"),
        origin="http://127.0.0.1:1",
        mutual_authentication=MutualAuthConfig(ca_set="partners"),
    )
    return TlsSession(
        edge, "api.example.com", "TLSv1.3", "TLS_AES_128_GCM_SHA256", chain,
        VerifyResult.SUCCESS, None, "partners", 1,
    )  # fmt: skip


async def _records(store: Store) -> list[tuple[str, int, int]]:
    async with store.transaction(write=False) as tx:
        rows = await tx.list_client_records(Network.STAGING, "partners")
    return [(r.subject, r.handshakes, r.requests) for r in rows]


async def test_batches_reach_the_store_and_survive_a_refused_one(
    store: Store, tmp_path: Path
) -> None:
    pki = Pki()
    issuer = pki.ca("Issuing CA")
    leaf = pki.client("client", issuer)
    chain = (leaf.der, issuer.der)
    recorder = ClientRecorder(10)
    config = ClientRecordsConfig(window_days=1)
    down = open_store(f"sqlite:///{tmp_path / 'never-opened.db'}")  # refuses every call
    flusher = ClientFlusher(recorder, FleetService(down), "edge-1", Network.STAGING, config)

    recorder.handshake(_session(chain))
    with pytest.raises(StoreUnavailable):
        await flusher.flush()
    assert len(flusher.pending) == 1

    recorder.handshake(_session(chain))
    recorder.request("api", flusher.pending[0].fingerprint)
    flusher.fleet = FleetService(store)
    await flusher.flush()
    assert flusher.pending == []
    # The refused batch and the new one, added up: 2 handshakes, 1 request.
    assert await _records(store) == [("CN=client", 2, 1)]

    # A day later the window is over: the recorder forgets the client before draining.
    flusher.clock = lambda: datetime.now(UTC) + timedelta(days=2)
    await flusher.flush()
    assert len(recorder) == 0
