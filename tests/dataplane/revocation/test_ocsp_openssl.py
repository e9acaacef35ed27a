"""OCSP end to end against the real `openssl ocsp` responder (one process per responder request).

Each test issues its client certificates with an AIA OCSP URL naming the local responder, then
speaks HTTP through the in-process edge with a stdlib `ssl` client.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgeproxy.config.model import OcspConfig
from support.ocsp import Responder
from support.revocation_pki import Issued, Pki

from .conftest import StartEdge, StartResponder
from .harness import Client, Origin, Refused, get_once
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


@dataclass
class OpenSsl:
    """A running `openssl ocsp` responder for the client CA, and the clients it knows about."""

    pki: Pki
    backend: OpenSslBackend
    responder: Responder

    def client(
        self, name: str, status: str | None = None, *, ocsp_url: str | None = None
    ) -> Issued:
        """A client leaf whose AIA names this responder (or `ocsp_url`), in the responder's index
        as `status` ("V" good, "R" revoked; None: not listed, so unknown)."""
        leaf = self.pki.issue(name, ocsp_url=ocsp_url or self.responder.url)
        if status is not None:
            self.backend.statuses[leaf.serial] = status
        return leaf


StartOpenSsl = Callable[..., Awaitable[OpenSsl]]


@pytest.fixture
def openssl(pki: Pki, tmp: Path, responder: StartResponder) -> StartOpenSsl:
    """openssl(signer=None): a responder signing with `signer`'s key (default: the CA's own)."""

    async def start(signer: Issued | None = None) -> OpenSsl:
        backend = OpenSslBackend(tmp, pki.ca, signer or pki.ca)
        return OpenSsl(pki, backend, await responder(backend))

    return start


async def test_good_certificate_is_forwarded(
    pki: Pki, origin: Origin, openssl: StartOpenSsl, edge: StartEdge
) -> None:
    ocsp = await openssl()
    alice = ocsp.client("alice", "V")
    e = await edge(HARD)

    status, body = await get_once(e, pki.client_context(alice))

    assert (status, body) == (200, b"ok")
    assert origin.hits == 1
    assert ocsp.backend.runs == 1
    assert e.records.records[-1].revocation == "good"
    assert e.sample("edgeproxy_ocsp_responses_total", status="good") == 1


async def test_revoked_certificate_gets_403_and_close_origin_untouched(
    pki: Pki, origin: Origin, openssl: StartOpenSsl, edge: StartEdge
) -> None:
    ocsp = await openssl()
    mallory = ocsp.client("mallory", "R")
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
    assert ocsp.backend.runs == 1
    assert e.sample("edgeproxy_ocsp_cache_hits_total") == 1


@pytest.mark.parametrize(("ocsp", "expected"), [(SOFT, 200), (HARD, 403)])
async def test_unknown_certificate_follows_the_failure_mode(
    pki: Pki,
    origin: Origin,
    openssl: StartOpenSsl,
    edge: StartEdge,
    ocsp: OcspConfig,
    expected: int,
) -> None:
    stranger = (await openssl()).client("stranger")  # an empty index: every serial is unknown
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
    pki: Pki, origin: Origin, openssl: StartOpenSsl, edge: StartEdge
) -> None:
    mallory = (await openssl(pki.delegated)).client("mallory", "R")
    e = await edge(HARD)

    status, body = await get_once(e, pki.client_context(mallory))

    assert status == 403
    assert json.loads(body)["reason"] == "revoked"


async def test_delegated_responder_without_ocsp_signing_is_refused(
    pki: Pki, origin: Origin, openssl: StartOpenSsl, edge: StartEdge
) -> None:
    ocsp = await openssl(pki.no_eku)  # a client certificate signing answers
    carol = ocsp.client("carol", "V")
    e = await edge(HARD)

    status, body = await get_once(e, pki.client_context(carol))

    assert status == 403
    assert json.loads(body)["reason"] == "ocsp_unavailable"
    assert e.records.records[-1].revocation == "unavailable"
    assert e.sample("edgeproxy_ocsp_responses_total", status="error") == 1
    assert origin.hits == 0


async def test_configured_responder_overrides_the_certificates_aia(
    pki: Pki, origin: Origin, openssl: StartOpenSsl, edge: StartEdge
) -> None:
    ocsp = await openssl()
    dave = ocsp.client("dave", "V", ocsp_url=f"http://127.0.0.1:{_closed_port()}/ocsp")
    e = await edge(OcspConfig(enabled=True, failure_mode="hard", responder=ocsp.responder.url))

    assert await get_once(e, pki.client_context(dave)) == (200, b"ok")
    assert ocsp.responder.hits == 1
