"""CRLs in the handshake (docs/management.md, docs/dataplane.md): real stdlib `ssl` clients against
the in-process edge."""

from __future__ import annotations

import asyncio
import json

import pytest

from edgeproxy.config.model import OcspConfig
from support.revocation_pki import HOUR, Pki, now

from .conftest import StartEdge
from .harness import Client, Origin, Refused, get_once

SOFT = OcspConfig(enabled=False, failure_mode="soft")
HARD = OcspConfig(enabled=False, failure_mode="hard")


async def test_revoked_serial_is_refused_in_the_handshake(
    pki: Pki, origin: Origin, edge: StartEdge
) -> None:
    alice, mallory = pki.issue("alice"), pki.issue("mallory")
    e = await edge(crls=(pki.ca.crl((mallory.serial,)),))

    assert await get_once(e, pki.client_context(alice)) == (200, b"ok")  # the accepting twin
    with pytest.raises(Refused, match=r"(?i)certificate revoked"):  # alert certificate_revoked
        await get_once(e, pki.client_context(mallory))

    assert e.handshake_failures("revoked") == 1
    assert origin.hits == 1


async def test_request_mode_names_the_revocation(pki: Pki, origin: Origin, edge: StartEdge) -> None:
    mallory = pki.issue("mallory")
    e = await edge(mode="request", crls=(pki.ca.crl((mallory.serial,)),))

    status, body = await get_once(e, pki.client_context(mallory))

    assert status == 403
    assert json.loads(body)["reason"] == "revoked"
    assert e.records.records[-1].revocation == "revoked"
    assert origin.hits == 0


async def test_newer_crl_refuses_new_connections_and_closes_the_open_one_it_names(
    pki: Pki, origin: Origin, edge: StartEdge
) -> None:
    bob, cleo = pki.issue("bob"), pki.issue("cleo")
    e = await edge(crls=(pki.ca.crl(()),))
    old = await Client.open(e, pki.client_context(bob))
    kept = await Client.open(e, pki.client_context(cleo))
    try:
        assert (await old.get())[0] == 200
        assert (await kept.get())[0] == 200

        e.swap(crls=(pki.ca.crl((bob.serial,)),))  # a newer CRL lists bob: no restart

        with pytest.raises(Refused):
            await get_once(e, pki.client_context(bob))
        closed = "edgeproxy_connections_closed_total"
        for _ in range(200):  # the open connections are judged again in the background
            if e.sample(closed, edge_certificate="api", reason="revoked"):
                break
            await asyncio.sleep(0.02)
        hits = origin.hits
        with pytest.raises(Refused):  # bob's open connection serves no further request
            await old.get()
        assert origin.hits == hits
        assert (await kept.get())[0] == 200  # cleo is not on the list: her connection stays
        assert e.sample(closed, edge_certificate="api", reason="revoked") == 1
    finally:
        await old.close()
        await kept.close()
    assert e.handshake_failures("revoked") == 1

    e.swap(crls=(pki.ca.crl(()),))  # and back: bob is trusted again on a new connection
    assert await get_once(e, pki.client_context(bob)) == (200, b"ok")


async def test_crl_from_an_unrelated_issuer_is_ignored(
    pki: Pki, origin: Origin, edge: StartEdge
) -> None:
    carol = pki.issue("carol")
    # Same serial, other issuer: the CRL is not carol's issuer's, so it says nothing about her.
    e = await edge(crls=(pki.unrelated.crl((carol.serial,)),))
    assert await get_once(e, pki.client_context(carol)) == (200, b"ok")


async def test_stale_crl_under_soft_is_accepted_and_counted(
    pki: Pki, origin: Origin, edge: StartEdge
) -> None:
    dave, mallory = pki.issue("dave"), pki.issue("mallory")
    stale = pki.ca.crl((mallory.serial,), next_update=now() - HOUR)
    e = await edge(SOFT, crls=(stale,))

    assert await get_once(e, pki.client_context(dave)) == (200, b"ok")
    assert e.sample("edgeproxy_crl_stale_accepted_total", ca_set="partners") == 1
    with pytest.raises(Refused):  # what the stale list does name stays refused
        await get_once(e, pki.client_context(mallory))
    assert e.handshake_failures("revoked") == 1


async def test_stale_crl_under_hard_is_refused(pki: Pki, origin: Origin, edge: StartEdge) -> None:
    dave = pki.issue("dave")
    e = await edge(HARD, crls=(pki.ca.crl((), next_update=now() - HOUR),))

    with pytest.raises(Refused):
        await get_once(e, pki.client_context(dave))

    assert e.handshake_failures("ocsp_unavailable") == 1
    assert e.sample("edgeproxy_crl_stale_accepted_total", ca_set="partners") == 0
    assert origin.hits == 0


async def test_stale_crl_under_hard_in_request_mode_is_a_403(
    pki: Pki, origin: Origin, edge: StartEdge
) -> None:
    dave = pki.issue("dave")
    e = await edge(HARD, mode="request", crls=(pki.ca.crl((), next_update=now() - HOUR),))

    status, body = await get_once(e, pki.client_context(dave))

    assert status == 403
    assert json.loads(body)["reason"] == "ocsp_unavailable"
    assert e.records.records[-1].revocation == "unavailable"
    assert origin.hits == 0
