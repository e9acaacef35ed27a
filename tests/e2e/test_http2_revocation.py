"""The per-request OCSP gate over HTTP/2 (docs/dataplane.md "Revocation"): a client whose
certificate the responder has not answered for yet is held before anything reaches the origin,
and once the answer says revoked it is refused exactly as over HTTP/1.1: 403 with the same
problem document, the origin never reached. A good answer lets the held stream through.

The responder here is the CA itself (RFC 6960 section 4.2.2.2), answering from a set of revoked
serials once the test opens its gate; each node starts with an empty OCSP cache."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from support.nodes import EdgeSpec, poll
from support.ocsp import Responder
from support.origin import RecordingOrigin
from support.pki import trustme_issuer

from .clients import curl
from .conftest import AccessLog, MakeFiles, StartNode
from .pki import CaCert, Client, E2ePki

pytestmark = pytest.mark.slow


class Answers:
    """CA A's OCSP answers, signed by the CA itself: revoked for the serials in `revoked`."""

    def __init__(self, ca: CaCert, leaves: list[Client]) -> None:
        self.ca = ca
        self.leaves = {c.leaf.serial_number: c.leaf for c in leaves}
        self.revoked: set[int] = set()

    async def __call__(self, body: bytes) -> bytes:
        asked = ocsp.load_der_ocsp_request(body)
        key = trustme_issuer(self.ca.ca).key
        now = datetime.now(UTC)
        revoked = asked.serial_number in self.revoked
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=self.leaves[asked.serial_number],
            issuer=self.ca.cert,
            algorithm=asked.hash_algorithm,
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD,
            this_update=now - timedelta(minutes=1),
            next_update=now + timedelta(hours=1),
            revocation_time=now - timedelta(hours=1) if revoked else None,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
        )
        answer = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.ca.cert).sign(
            key, hashes.SHA256()
        )
        return answer.public_bytes(serialization.Encoding.DER)


async def _gated(
    pki: E2ePki,
    origin: RecordingOrigin,
    node_files: MakeFiles,
    start_node: StartNode,
    responder: Responder,
    http: str,
    path: str,
) -> tuple[int | None, dict[str, Any]]:
    """A node with an empty OCSP cache; alice's first request over `http` (curl's --http1.1 or
    --http2) while the responder holds its answer: (status, the response's JSON)."""
    gate = responder.gate = asyncio.Event()
    hits = responder.hits
    ocsp_table = {"enabled": True, "responder": responder.url, "failure_mode": "hard"}
    ocsp_table["timeout"] = 10.0  # the gate, not the timeout, decides
    edges = [EdgeSpec("api", ("api.test",), ocsp=ocsp_table)]
    running = await start_node(node_files(edges=edges))
    await running.admin.publish([pki.ca_a.pem])
    request = asyncio.create_task(
        curl(pki, running.port, "api.test", pki.alice, path, extra=(http,))
    )
    try:
        await poll(lambda: responder.hits > hits, "the edge to ask the responder")
        assert not request.done()  # held while the answer is pending ...
        assert path not in origin.paths()  # ... and nothing reached the origin
        gate.set()
        run, status, body = await request
    finally:
        gate.set()
        if not request.done():
            request.cancel()
    assert run.code == 0, run
    return status, json.loads(body)


async def test_a_revoked_client_is_refused_over_http2_as_over_http1(
    pki: E2ePki,
    origin: RecordingOrigin,
    node_files: MakeFiles,
    start_node: StartNode,
    access_log: AccessLog,
) -> None:
    answers = Answers(pki.ca_a, [pki.alice])
    responder = await Responder(answers).start()
    try:
        answers.revoked.add(pki.alice.leaf.serial_number)
        outcomes = {
            http: await _gated(
                pki, origin, node_files, start_node, responder, http, f"/revoked{http}"
            )
            for http in ("--http1.1", "--http2")
        }
        answers.revoked.clear()  # the twin: a good answer lets the held stream through
        good = await _gated(pki, origin, node_files, start_node, responder, "--http2", "/good")
    finally:
        await responder.close()
    assert outcomes["--http2"] == outcomes["--http1.1"]
    status, problem = outcomes["--http2"]
    assert status == 403
    assert (problem["type"].rsplit("/", 1)[1], problem["reason"]) == (
        "client-certificate-rejected",
        "revoked",
    )
    assert not [p for p in origin.paths() if p.startswith("/revoked")]
    lines = {r.path: r for r in access_log.records("request")}
    assert (lines["/revoked--http2"].protocol, lines["/revoked--http2"].status) == ("h2", 403)
    assert (lines["/revoked--http1.1"].protocol, lines["/revoked--http1.1"].status) == ("h1", 403)
    assert good[0] == 200
    assert good[1]["path"] == "/good"
    assert origin.last("/good").one("X-Client-Cert-Verify") == "SUCCESS"
