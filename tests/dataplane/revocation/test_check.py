"""`Revocation.retain` after a trust swap: the OCSP state of an edge certificate that went away
is dropped with its cache; the others keep theirs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from OpenSSL import SSL

from edgeproxy.config.model import EdgeCertificateConfig, MutualAuthConfig, OcspConfig
from edgeproxy.dataplane.revocation.check import Revocation
from edgeproxy.revocation.answer import Answer, Status
from edgeproxy.tls.trust import PreparedEdge, TrustAnchors, TrustState

WALL = datetime(2030, 1, 1, tzinfo=UTC)
KEY = (b"k" * 20, 7)  # (issuer key hash, serial)
REVOKED = Answer(Status.REVOKED, WALL + timedelta(hours=1), WALL - timedelta(hours=1))


def _edge(name: str) -> EdgeCertificateConfig:
    return EdgeCertificateConfig(
        name=name,
        hostnames=(f"{name}.test",),
        certificate=Path("unused.pem"),
        private_key=Path("unused.key"),
        origin="http://127.0.0.1:9",
        mutual_authentication=MutualAuthConfig("partners", ocsp=OcspConfig(enabled=True)),
    )


STAYS, GOES = _edge("stays"), _edge("goes")


def _state(*edges: EdgeCertificateConfig, version: int) -> TrustState:
    anchors = TrustAnchors("partners", version, (f"v{version}".encode(),))
    context = SSL.Context(SSL.TLS_METHOD)  # never handshakes: only the edge's name is read
    return TrustState([PreparedEdge(e, anchors, context, (e.name,)) for e in edges])


@pytest.fixture
async def revocation() -> AsyncIterator[Revocation]:
    service = Revocation(wall=lambda: WALL)
    yield service
    await service.close()


async def test_an_edge_that_went_away_loses_its_binding_and_cache(
    revocation: Revocation,
) -> None:
    stays, goes = revocation.binding(STAYS), revocation.binding(GOES)
    stays.cache.put(KEY, REVOKED)
    goes.cache.put(KEY, REVOKED)
    before = _state(STAYS, GOES, version=1)
    revocation.retain(before, None)

    revocation.retain(_state(STAYS, version=2), before)

    assert revocation.binding(STAYS) is stays
    assert stays.cache.peek(KEY) is Status.REVOKED
    assert KEY[1] in stays.cache.revoked_serials
    back = revocation.binding(GOES)  # bound again later: it starts empty
    assert back is not goes
    assert back.cache.peek(KEY) is None
    assert len(back.cache) == 0


async def test_a_swap_that_keeps_every_edge_keeps_every_binding(revocation: Revocation) -> None:
    stays, also = revocation.binding(STAYS), revocation.binding(GOES)
    also.cache.put(KEY, REVOKED)
    before = _state(STAYS, GOES, version=1)
    revocation.retain(before, None)

    revocation.retain(_state(STAYS, GOES, version=2), before)

    assert revocation.binding(STAYS) is stays
    assert revocation.binding(GOES) is also
    assert also.cache.peek(KEY) is Status.REVOKED
