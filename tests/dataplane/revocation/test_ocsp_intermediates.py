"""`ocsp.check_intermediates` end to end against the real `openssl ocsp` responder.

The client sends leaf -> intermediate; the version's anchors are the root (the client CA) only.
The intermediate's AIA names a local responder that answers for the root's certificates (the
intermediate), and for the intermediate's (the leaf) when the leaf's AIA names it too: one URL,
each request routed by the issuer it names to an `openssl ocsp` signing as that issuer.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.x509 import ocsp

from edgeproxy.config.model import OcspConfig, OcspFailureMode
from edgeproxy.revocation.verify import key_hash
from edgeproxy.tls.trust import TrustAnchors
from support.revocation_pki import Ca, Issued, Pki

from .conftest import StartEdge, StartResponder
from .harness import Client, Origin, Refused, get_once
from .responders import OpenSslBackend
from .test_ocsp_openssl import _closed_port

pytestmark = [
    pytest.mark.slow,  # one `openssl ocsp` process per responder request
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]


def _config(
    failure_mode: OcspFailureMode = "soft", *, check_intermediates: bool = True
) -> OcspConfig:
    return OcspConfig(
        enabled=True,
        failure_mode=failure_mode,
        timeout=3.0,
        check_intermediates=check_intermediates,
    )


@dataclass
class ByIssuer:
    """One responder for several CAs: each request goes to the backend of the issuer it names."""

    backends: dict[bytes, OpenSslBackend] = field(default_factory=dict)
    serials: list[int] = field(default_factory=list)  # every serial asked about, in order

    def add(self, backend: OpenSslBackend) -> None:
        self.backends[key_hash(backend.ca.cert)] = backend

    async def __call__(self, request: bytes) -> bytes:
        req = ocsp.load_der_ocsp_request(request)
        self.serials.append(req.serial_number)
        return await self.backends[req.issuer_key_hash](request)


@dataclass
class Chain:
    router: ByIssuer
    intermediate: Ca
    leaf: Issued


async def _chain(
    pki: Pki,
    tmp: Path,
    responder: StartResponder,
    intermediate: str,
    *,
    intermediate_url: str | None = None,
) -> Chain:
    """leaf ("V") -> intermediate (`intermediate`: "V" good, "R" revoked) -> root; the
    intermediate's AIA names the shared responder unless `intermediate_url` is given."""
    router = ByIssuer()
    url = (await responder(router)).url
    inter = pki.intermediate_ca("Chain Issuing CA", intermediate_url or url)
    leaf = pki.issue("chained", ocsp_url=url, issuer=inter)
    router.add(OpenSslBackend(tmp, pki.ca, pki.ca, {inter.serial: intermediate}))
    router.add(OpenSslBackend(tmp, inter, inter, {leaf.serial: "V"}))
    return Chain(router, inter, leaf)


async def test_revoked_intermediate_gets_403_then_the_handshake_is_refused(
    pki: Pki, tmp: Path, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    chain = await _chain(pki, tmp, responder, "R")
    e = await edge(_config("soft"))  # revoked is refused whatever the failure mode

    client = await Client.open(e, pki.client_context(chain.leaf))
    status, body, closed = await client.get()
    await client.close()

    assert (status, closed) == (403, True)
    assert json.loads(body)["reason"] == "revoked"
    assert origin.hits == 0
    assert e.records.records[-1].revocation == "revoked"
    assert sorted(chain.router.serials) == sorted([chain.leaf.serial, chain.intermediate.serial])

    # The intermediate is now cached as revoked: the verify step refuses at depth 1.
    with pytest.raises(Refused):
        await get_once(e, pki.client_context(chain.leaf))
    assert e.handshake_failures("revoked") == 1
    assert len(chain.router.serials) == 2


async def test_revoked_intermediate_is_not_checked_by_default(
    pki: Pki, tmp: Path, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    chain = await _chain(pki, tmp, responder, "R")
    e = await edge(_config("hard", check_intermediates=False))

    assert await get_once(e, pki.client_context(chain.leaf)) == (200, b"ok")
    assert chain.router.serials == [chain.leaf.serial]  # the leaf only, as before
    assert e.records.records[-1].revocation == "good"


async def test_good_chain_is_forwarded_after_asking_for_both(
    pki: Pki, tmp: Path, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    chain = await _chain(pki, tmp, responder, "V")
    e = await edge(_config("hard"))

    assert await get_once(e, pki.client_context(chain.leaf)) == (200, b"ok")
    assert sorted(chain.router.serials) == sorted([chain.leaf.serial, chain.intermediate.serial])
    assert e.records.records[-1].revocation == "good"
    assert e.sample("edgeproxy_ocsp_responses_total", status="good") == 2

    # Both answers cached: the next connection asks nobody and counts one cache hit.
    assert await get_once(e, pki.client_context(chain.leaf)) == (200, b"ok")
    assert len(chain.router.serials) == 2
    assert e.sample("edgeproxy_ocsp_cache_hits_total") == 1


async def test_an_intermediate_that_is_an_anchor_is_not_checked(
    pki: Pki, tmp: Path, origin: Origin, responder: StartResponder, edge: StartEdge
) -> None:
    chain = await _chain(pki, tmp, responder, "R")
    e = await edge(_config("hard"))
    anchors = TrustAnchors("partners", 2, (pki.ca.der, chain.intermediate.der), False, ())
    e.install(anchors)

    assert await get_once(e, pki.client_context(chain.leaf)) == (200, b"ok")
    assert chain.router.serials == [chain.leaf.serial]


@pytest.mark.parametrize(("mode", "expected"), [("soft", 200), ("hard", 403)])
async def test_intermediate_responder_down_follows_the_failure_mode(
    pki: Pki,
    tmp: Path,
    origin: Origin,
    responder: StartResponder,
    edge: StartEdge,
    mode: OcspFailureMode,
    expected: int,
) -> None:
    down = f"http://127.0.0.1:{_closed_port()}/ocsp"
    chain = await _chain(pki, tmp, responder, "V", intermediate_url=down)
    e = await edge(_config(mode))

    status, body = await get_once(e, pki.client_context(chain.leaf))

    assert status == expected
    assert chain.router.serials == [chain.leaf.serial]  # the leaf's responder answered good
    assert e.records.records[-1].revocation == "unavailable"
    assert e.sample("edgeproxy_ocsp_responses_total", status="error") == 1
    assert origin.hits == (1 if expected == 200 else 0)
    if expected == 403:
        assert json.loads(body)["reason"] == "ocsp_unavailable"
