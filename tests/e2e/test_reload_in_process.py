"""Reloads seen from the wire, on an in-process node (the reload event is what SIGHUP sets; the
signal wiring itself is covered by test_signals.py): certificate rotation, and TLS sessions that
must not outlive the trust version they were verified under (docs/dataplane.md, contexts per
version)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import replace

import pytest
from cryptography import x509

from support.nodes import InProcessNode, default_edges, poll
from support.origin import RecordingOrigin

from .clients import REFUSALS, TIMEOUT, PinnedHTTPSConnection, aget, exchange
from .conftest import Running
from .pki import SERVER_NAMES, E2ePki

pytestmark = pytest.mark.slow


def served_certificate(pki: E2ePki, port: int) -> x509.Certificate:
    """The leaf the edge presents for api.test (a handshake with alice's certificate)."""
    context = pki.client_context(pki.alice)
    with (
        socket.create_connection(("127.0.0.1", port), TIMEOUT) as sock,
        context.wrap_socket(sock, server_hostname="api.test") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


async def test_reload_rotates_the_edge_certificate_for_new_connections(
    node: Running, pki: E2ePki
) -> None:
    files = node.node.files
    old = await asyncio.to_thread(served_certificate, pki, node.port)
    rotated = pki.server_ca.ca.issue_cert(*SERVER_NAMES)
    files.server_chain.write_bytes(b"".join(b.bytes() for b in rotated.cert_chain_pems))
    files.server_key.write_bytes(rotated.private_key_pem.bytes())
    new = x509.load_pem_x509_certificate(rotated.cert_chain_pems[0].bytes())
    assert new.serial_number != old.serial_number

    # The twin: files changed on disk do nothing until the reload (contexts are built once).
    assert (await asyncio.to_thread(served_certificate, pki, node.port)) == old

    assert isinstance(node.node, InProcessNode)
    await node.node.reload()
    assert (await asyncio.to_thread(served_certificate, pki, node.port)) == new
    assert (await aget(pki, node.port, "api.test", pki.alice)).status == 200


def resume(
    context: ssl.SSLContext, port: int, path: str, session: ssl.SSLSession | None
) -> tuple[int, ssl.SSLSession | None, bool | None]:
    """One request on a new connection offering `session`: (status, session, resumed?)."""
    conn = PinnedHTTPSConnection("api.test", port, context=context, timeout=TIMEOUT)
    conn.session = session
    try:
        response = exchange(conn, path)
        assert isinstance(conn.sock, ssl.SSLSocket)
        return response.status, conn.sock.session, conn.sock.session_reused
    finally:
        conn.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_session_from_an_older_trust_version_never_resumes(
    node: Running, pki: E2ePki, version: ssl.TLSVersion
) -> None:
    context = pki.client_context(pki.alice)
    context.minimum_version = context.maximum_version = version
    status, session, _ = await asyncio.to_thread(resume, context, node.port, "/s1", None)
    assert status == 200
    assert session is not None
    # The twin: under the same trust version the session resumes.
    status, session, reused = await asyncio.to_thread(resume, context, node.port, "/s2", session)
    assert (status, reused) == (200, True)

    # Version 2 no longer trusts CA A: alice's session must not let her skip verification.
    v2 = await node.admin.create_version(node.set_id, [pki.ca_b.pem])
    final = await node.admin.settle(node.set_id, await node.admin.activate(node.set_id, v2))
    assert final["activationStatus"] == "COMPLETE"
    with pytest.raises(REFUSALS):
        await asyncio.to_thread(resume, context, node.port, "/s3", session)


async def test_reload_binding_another_ca_set_enforces_that_sets_active_version(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    # A second set, active on STAGING, that no edge certificate binds yet.
    second = await node.admin.create_set("second")
    version = await node.admin.create_version(second, [pki.ca_b.pem])
    final = await node.admin.settle(second, await node.admin.activate(second, version))
    assert final["activationStatus"] == "COMPLETE"
    response = await aget(pki, node.port, "forward.test", pki.bob, "/before-rebind")
    assert response.status == 200
    assert origin.last("/before-rebind").one("X-Client-Cert-Verify") == "FAILED:unknown_ca"

    # Reload with `forward` bound to the second set: bob's CA is now the trusted one there.
    assert isinstance(node.node, InProcessNode)
    files = node.node.files
    files.edges = [
        replace(e, ca_set="second") if e.name == "forward" else e for e in default_edges()
    ]
    files.write()
    await node.node.reload()

    async def verified() -> str | None:
        await aget(pki, node.port, "forward.test", pki.bob, "/after-rebind")
        verdict = origin.last("/after-rebind").one("X-Client-Cert-Verify")
        return verdict if verdict == "SUCCESS" else None

    await poll(verified, "bob to verify against the newly bound set", interval=0.2)
    # The other bindings kept theirs.
    assert (await aget(pki, node.port, "api.test", pki.alice)).status == 200
