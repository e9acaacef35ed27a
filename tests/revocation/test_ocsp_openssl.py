"""OCSP end to end against the real `openssl ocsp` responder (one process per responder request).

Each test issues its client certificates with an AIA OCSP URL naming the local responder, then
speaks HTTP through the in-process edge with a stdlib `ssl` client.
"""

from __future__ import annotations

import json
import shutil
import socket

import pytest

from edgeproxy.config import OcspConfig

from .conftest import StartEdge, StartResponder
from .harness import Client, Origin, Refused, get_once
from .pki import Pki
from .responders import OpenSslBackend

pytestmark = [
    pytest.mark.slow,  # one `openssl ocsp` process per responder request
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]

SOFT = OcspConfig(enabled=True, failure_mode="soft", timeout=3.0)
HARD = OcspConfig(enabled=True, failure_mode="hard", timeout=3.0)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_good_certificate_is_forwarded(
    pki: Pki, tmp, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    backend = OpenSslBackend(tmp, pki.ca, pki.ca)
    ocsp = await responder(backend)
    alice = pki.issue("alice", ocsp_url=ocsp.url)
    backend.statuses[alice.serial] = "V"
    e = await edge(HARD)

    status, body = await get_once(e, pki.client_context(alice))

    assert (status, body) == (200, b"ok")
    assert origin.hits == 1
    assert backend.runs == 1
    assert e.records.records[-1].revocation == "good"
    assert e.sample("edgeproxy_ocsp_responses_total", status="good") == 1


async def test_revoked_certificate_gets_403_and_close_origin_untouched(
    pki: Pki, tmp, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    backend = OpenSslBackend(tmp, pki.ca, pki.ca)
    ocsp = await responder(backend)
    mallory = pki.issue("mallory", ocsp_url=ocsp.url)
    backend.statuses[mallory.serial] = "R"
    e = await edge(SOFT)  # revoked is refused whatever the failure mode

    client = await Client.open(e, pki.client_context(mallory))
    status, body, closed = await client.get()
    await client.close()

    assert status == 403
    assert closed
    assert json.loads(body)["reason"] == "revoked"
    assert origin.hits == 0
    assert e.records.records[-1].revocation == "revoked"
    assert e.sample("edgeproxy_ocsp_responses_total", status="revoked") == 1

    # Now cached: the next handshake is refused in TLS, reason revoked.
    with pytest.raises(Refused):
        await get_once(e, pki.client_context(mallory))
    assert e.handshake_failures("revoked") == 1
    assert backend.runs == 1
    assert e.sample("edgeproxy_ocsp_cache_hits_total") == 1


@pytest.mark.parametrize(("ocsp", "expected"), [(SOFT, 200), (HARD, 403)])
async def test_unknown_certificate_follows_the_failure_mode(
    pki: Pki,
    tmp,
    origin: Origin,
    responder: StartResponder,
    edge: StartEdge,
    ocsp: OcspConfig,
    expected: int,
) -> None:
    backend = OpenSslBackend(tmp, pki.ca, pki.ca)  # an empty index: every serial is unknown
    url = (await responder(backend)).url
    stranger = pki.issue("stranger", ocsp_url=url)
    e = await edge(ocsp)

    status, body = await get_once(e, pki.client_context(stranger))

    assert status == expected
    assert e.records.records[-1].revocation == "unknown"
    assert e.sample("edgeproxy_ocsp_responses_total", status="unknown") == 1
    if expected == 403:
        assert json.loads(body)["reason"] == "ocsp_unavailable"
        assert origin.hits == 0


@pytest.mark.parametrize(("ocsp", "expected"), [(SOFT, 200), (HARD, 403)])
async def test_responder_down_follows_the_failure_mode(
    pki: Pki, origin: Origin, edge: StartEdge, ocsp: OcspConfig, expected: int
) -> None:
    bob = pki.issue("bob", ocsp_url=f"http://127.0.0.1:{_closed_port()}/ocsp")
    e = await edge(ocsp)

    status, body = await get_once(e, pki.client_context(bob))

    assert status == expected
    assert origin.hits == (1 if expected == 200 else 0)
    assert e.records.records[-1].revocation == "unavailable"
    assert e.sample("edgeproxy_ocsp_responses_total", status="error") == 1
    if expected == 403:
        assert json.loads(body)["reason"] == "ocsp_unavailable"


async def test_delegated_responder_with_ocsp_signing_is_trusted(
    pki: Pki, tmp, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    backend = OpenSslBackend(tmp, pki.ca, pki.delegated)
    ocsp = await responder(backend)
    mallory = pki.issue("mallory", ocsp_url=ocsp.url)
    backend.statuses[mallory.serial] = "R"
    e = await edge(HARD)

    status, body = await get_once(e, pki.client_context(mallory))

    assert status == 403
    assert json.loads(body)["reason"] == "revoked"


async def test_delegated_responder_without_ocsp_signing_is_refused(
    pki: Pki, tmp, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    backend = OpenSslBackend(tmp, pki.ca, pki.no_eku)  # a client certificate signing answers
    ocsp = await responder(backend)
    carol = pki.issue("carol", ocsp_url=ocsp.url)
    backend.statuses[carol.serial] = "V"
    e = await edge(HARD)

    status, body = await get_once(e, pki.client_context(carol))

    assert status == 403
    assert json.loads(body)["reason"] == "ocsp_unavailable"
    assert e.records.records[-1].revocation == "unavailable"
    assert e.sample("edgeproxy_ocsp_responses_total", status="error") == 1
    assert origin.hits == 0


async def test_configured_responder_overrides_the_certificates_aia(
    pki: Pki, tmp, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    backend = OpenSslBackend(tmp, pki.ca, pki.ca)
    ocsp = await responder(backend)
    dave = pki.issue("dave", ocsp_url=f"http://127.0.0.1:{_closed_port()}/ocsp")
    backend.statuses[dave.serial] = "V"
    e = await edge(OcspConfig(enabled=True, failure_mode="hard", responder=ocsp.url))

    assert await get_once(e, pki.client_context(dave)) == (200, b"ok")
    assert ocsp.hits == 1
