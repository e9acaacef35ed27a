"""An OCSP answer that turns `revoked` reaches the connections already open for that certificate
(dataplane/connections.py): they serve no further request; others are left alone."""

from __future__ import annotations

from cryptography.x509 import ocsp

from edgeproxy.config.model import OcspConfig
from support.revocation_pki import Pki

from .conftest import StartResponder
from .harness import Client, Origin, Refused, StartEdgeClocked
from .responders import BuiltBackend

SOFT = OcspConfig(enabled=True)


async def test_a_revoked_answer_retires_the_open_connections_of_that_certificate(
    pki: Pki, origin: Origin, responder: StartResponder, edge_with_clock: StartEdgeClocked
) -> None:
    backend = BuiltBackend(pki.ca.cert, pki.ca.key)
    r = await responder(backend)
    nina, omar = pki.issue("nina", ocsp_url=r.url), pki.issue("omar", ocsp_url=r.url)
    e, clock = await edge_with_clock(SOFT)
    kept = await Client.open(e, pki.client_context(nina))
    other = await Client.open(e, pki.client_context(omar))
    try:
        assert (await kept.get("/nina-1"))[0] == 200
        assert (await other.get("/omar-1"))[0] == 200
        assert r.hits == 2

        # Later, nina is revoked; her good answer ages out, and a new connection asks again.
        backend.status = ocsp.OCSPCertStatus.REVOKED
        clock.t += 2 * 3600
        fresh = await Client.open(e, pki.client_context(nina))
        try:
            assert (await fresh.get("/nina-new"))[0] == 403
        finally:
            await fresh.close()
        assert r.hits == 3
        hits = origin.hits

        try:
            await kept.get("/nina-2")
        except Refused:
            pass
        else:
            raise AssertionError("the open connection of a revoked certificate served a request")
        assert origin.hits == hits
        assert (await other.get("/omar-2"))[0] == 200  # omar's answer is still good
        closed = e.sample(
            "edgeproxy_connections_closed_total", edge_certificate="api", reason="revoked"
        )
        assert closed == 2  # the one left open, and the one that asked (refused anyway)
    finally:
        await kept.close()
        await other.close()
