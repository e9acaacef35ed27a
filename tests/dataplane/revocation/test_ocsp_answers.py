"""OCSP answers a real responder would not give (forged, stale), and the cache: one responder
request for many handshakes, coalesced lookups, later requests that do not wait."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging

import pytest
from cryptography.x509 import ocsp

from edgeproxy.config.model import OcspConfig
from support.revocation_pki import API, HOUR, Pki

from .conftest import StartEdge, StartResponder
from .harness import Client, Origin, Refused, get_once
from .responders import BuiltBackend

HARD = OcspConfig(enabled=True, failure_mode="hard", timeout=3.0)
SOFT = OcspConfig(enabled=True, failure_mode="soft", timeout=3.0)


def by_ca(pki: Pki, **kw: object) -> BuiltBackend:
    return BuiltBackend(pki.ca.cert, pki.ca.key, **kw)  # type: ignore[arg-type]


async def test_answer_signed_by_the_issuer_is_trusted(
    pki: Pki, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    """The accepting twin of the forgery below: same builder, the issuer's key."""
    url = (await responder(by_ca(pki))).url
    e = await edge(HARD)
    assert await get_once(e, pki.client_context(pki.issue("erin", ocsp_url=url))) == (200, b"ok")
    assert e.records.records[-1].revocation == "good"


async def test_forged_answer_signed_by_an_unrelated_key_is_refused(
    pki: Pki, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    forged = BuiltBackend(pki.unrelated.cert, pki.unrelated.key)  # "good", and a lie
    url = (await responder(forged)).url
    e = await edge(HARD)

    status, body = await get_once(e, pki.client_context(pki.issue("frank", ocsp_url=url)))

    assert status == 403
    assert json.loads(body)["reason"] == "ocsp_unavailable"
    assert origin.hits == 0
    assert e.sample("edgeproxy_ocsp_responses_total", status="error") == 1
    assert e.sample("edgeproxy_ocsp_responses_total", status="good") == 0


async def test_forged_answer_claiming_the_issuers_identity_is_refused(
    pki: Pki, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    """ResponderID names the issuer, but the signature is another key's."""
    forged = BuiltBackend(pki.ca.cert, pki.unrelated.key, include_signer=False)
    url = (await responder(forged)).url
    e = await edge(SOFT)

    assert await get_once(e, pki.client_context(pki.issue("grace", ocsp_url=url))) == (200, b"ok")
    assert e.records.records[-1].revocation == "unavailable"  # soft: forwarded, not believed


async def test_stale_answer_past_next_update_is_not_trusted(
    pki: Pki, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    stale = by_ca(pki, this_update=-3 * HOUR, next_update=-2 * HOUR)
    url = (await responder(stale)).url
    e = await edge(HARD)

    status, body = await get_once(e, pki.client_context(pki.issue("heidi", ocsp_url=url)))

    assert status == 403
    assert json.loads(body)["reason"] == "ocsp_unavailable"
    assert e.records.records[-1].revocation == "unavailable"


async def test_answer_from_the_future_is_not_trusted(
    pki: Pki, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    early = by_ca(pki, this_update=HOUR, next_update=2 * HOUR)
    url = (await responder(early)).url
    e = await edge(HARD)
    status, _ = await get_once(e, pki.client_context(pki.issue("ivan", ocsp_url=url)))
    assert status == 403


async def test_one_responder_request_serves_many_handshakes(
    pki: Pki, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    r = await responder(by_ca(pki))
    judy = pki.issue("judy", ocsp_url=r.url)
    e = await edge(HARD)

    for _ in range(5):
        assert await get_once(e, pki.client_context(judy)) == (200, b"ok")

    assert r.hits == 1
    assert e.sample("edgeproxy_ocsp_cache_hits_total") == 4
    assert [rec.revocation for rec in e.records.records] == ["good"] * 5


async def test_concurrent_first_requests_share_one_responder_request(
    pki: Pki, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    r = await responder(by_ca(pki))
    r.gate = asyncio.Event()  # hold the answer until every connection waits for it
    kim = pki.issue("kim", ocsp_url=r.url)
    e = await edge(HARD)
    clients = [await Client.open(e, pki.client_context(kim)) for _ in range(4)]

    pending = [asyncio.create_task(c.get()) for c in clients]
    for _ in range(200):  # bounded: until every request waits for the answer
        if e.waiting_for_revocation() == 4:
            break
        await asyncio.sleep(0.01)
    assert e.waiting_for_revocation() == 4
    assert origin.hits == 0  # nothing reached the origin before the answer
    r.gate.set()
    results = await asyncio.gather(*pending)
    for c in clients:
        await c.close()

    assert [status for status, _, _ in results] == [200] * 4
    assert r.hits == 1
    assert origin.hits == 4


async def test_a_request_body_waits_with_its_head_then_reaches_the_origin_whole(
    pki: Pki, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    r = await responder(by_ca(pki))
    r.gate = asyncio.Event()
    e = await edge(HARD)
    client = await Client.open(e, pki.client_context(pki.issue("lou", ocsp_url=r.url)))
    try:
        pending = asyncio.create_task(client.get("/upload", body=b"x" * 200_000))
        for _ in range(200):  # bounded: until the request waits for the answer
            if e.waiting_for_revocation():
                break
            await asyncio.sleep(0.01)
        assert e.waiting_for_revocation() == 1
        assert origin.hits == 0
        r.gate.set()
        status, body, _ = await pending
    finally:
        await client.close()
    assert (status, body) == (200, b"got 200000")


async def test_client_leaving_while_its_request_waits(
    pki: Pki, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    """Reads are paused while the request waits (bounded buffering), so the edge learns of the
    reset when the answer lets it act; the connection then ends and one record is written."""
    r = await responder(by_ca(pki))
    r.gate = asyncio.Event()
    e = await edge(HARD)
    client = await Client.open(e, pki.client_context(pki.issue("max", ocsp_url=r.url)))
    client.writer.write(f"GET / HTTP/1.1\r\nHost: {API}\r\n\r\n".encode())
    for _ in range(200):  # bounded: until the request waits for the answer
        if e.waiting_for_revocation():
            break
        await asyncio.sleep(0.01)
    assert e.waiting_for_revocation() == 1
    client.writer.transport.abort()  # gone without a word
    r.gate.set()
    for _ in range(300):  # bounded: until the edge has let the connection go
        if e.proxy.connection_count == 0:
            break
        await asyncio.sleep(0.01)
    assert e.proxy.connection_count == 0
    assert len(e.records.records) == 1


async def test_later_requests_on_a_connection_do_not_ask_again(
    pki: Pki, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    r = await responder(by_ca(pki))
    leo = pki.issue("leo", ocsp_url=r.url)
    e = await edge(HARD)
    client = await Client.open(e, pki.client_context(leo))
    try:
        for _ in range(3):
            status, _, closed = await client.get()
            assert status == 200
            assert not closed
    finally:
        await client.close()
    assert r.hits == 1
    assert origin.hits == 3


async def test_revoked_answer_is_cached_and_refused_in_the_handshake(
    pki: Pki,
    origin: Origin,
    responder: StartResponder,
    edge: StartEdge,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edgeproxy.access")
    r = await responder(by_ca(pki, status=ocsp.OCSPCertStatus.REVOKED))
    mia = pki.issue("mia", ocsp_url=r.url)
    e = await edge(OcspConfig(enabled=True))  # soft: revoked is refused all the same

    asked = dt.datetime.now(dt.UTC)
    status, _ = await get_once(e, pki.client_context(mia))
    assert status == 403
    for _ in range(2):  # now cached: refused in the handshake (require mode)
        with pytest.raises(Refused) as refused:
            await get_once(e, pki.client_context(mia))
        print("client saw:", refused.value)
    assert e.handshake_failures("revoked") == 2
    assert r.hits == 1
    # The refusal's log line names the source and the answer's revocationTime (the responder
    # says: an hour before it answered).
    (line,) = [
        json.loads(record.__dict__["json_line"])
        for record in caplog.records
        if record.getMessage() == "handshake failed"
    ]  # the second refusal is sampled
    assert (line["revocation"], line["revocation_source"]) == ("revoked", "ocsp")
    revoked_at = dt.datetime.fromisoformat(line["revoked_at"])
    assert abs(revoked_at - (asked - dt.timedelta(hours=1))) < dt.timedelta(minutes=1)
    assert line["detail"].endswith(f"(OCSP, revoked {line['revoked_at']})")


async def test_ocsp_disabled_never_asks(
    pki: Pki, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    r = await responder(by_ca(pki, status=ocsp.OCSPCertStatus.REVOKED))
    e = await edge(OcspConfig(enabled=False))
    assert await get_once(e, pki.client_context(pki.issue("ned", ocsp_url=r.url))) == (200, b"ok")
    assert r.hits == 0
    assert e.records.records[-1].revocation == "not_checked"


async def test_request_mode_cached_revocation_is_a_403_naming_it(
    pki: Pki, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    r = await responder(by_ca(pki, status=ocsp.OCSPCertStatus.REVOKED))
    olga = pki.issue("olga", ocsp_url=r.url)
    e = await edge(HARD, mode="request")

    for _ in range(2):  # first: the wait; second: the handshake-time cache hit
        status, body = await get_once(e, pki.client_context(olga))
        assert status == 403
        assert json.loads(body)["reason"] == "revoked"
    assert r.hits == 1
    assert [rec.revocation for rec in e.records.records] == ["revoked", "revoked"]


async def test_issuer_sent_by_the_client_signs_the_answer(
    pki: Pki, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    """Leaf → intermediate (sent in the handshake) → root (the anchor): the intermediate is the
    OCSP issuer; an answer signed by the root would not be (its twin, below)."""
    ca = pki.intermediate
    r = await responder(BuiltBackend(ca.cert, ca.key, status=ocsp.OCSPCertStatus.REVOKED))
    paul = pki.issue("paul", ocsp_url=r.url, issuer=ca)
    e = await edge(HARD)
    status, body = await get_once(e, pki.client_context(paul))
    assert status == 403
    assert json.loads(body)["reason"] == "revoked"

    wrong = await responder(by_ca(pki))  # "good", signed by the root: not the leaf's issuer
    quinn = pki.issue("quinn", ocsp_url=wrong.url, issuer=ca)
    status, body = await get_once(e, pki.client_context(quinn))
    assert status == 403
    assert json.loads(body)["reason"] == "ocsp_unavailable"
