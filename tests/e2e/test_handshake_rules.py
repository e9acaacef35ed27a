"""Which handshakes the listener takes (docs/dataplane.md): SNI picks the edge certificate (exact,
wildcard, case
and trailing dot aside), TLS 1.2 and 1.3 only; everything else is refused with its reason."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest

from support.nodes import Metrics, poll

from .clients import TIMEOUT, handshake_done, s_client, s_client_interactive
from .conftest import Running
from .pki import E2ePki

pytestmark = pytest.mark.slow


def with_alice(pki: E2ePki) -> tuple[str, ...]:
    return ("-cert", str(pki.alice.cert), "-key", str(pki.alice.key))


@pytest.mark.parametrize(
    ("sni", "edge"),
    [
        ("api.test", "api"),
        ("API.TEST", "api"),
        ("api.test.", "api"),
        ("www.api.test", "api"),
        ("other.test", "other"),
        ("forward.test", "forward"),
    ],
)
async def test_sni_selects_the_edge_certificate(
    node: Running, pki: E2ePki, sni: str, edge: str
) -> None:
    before = (await node.status.metrics()).handshakes("", edge)
    run = await s_client(pki, node.port, sni, *with_alice(pki))
    assert handshake_done(run), run.stderr
    assert (await node.status.metrics()).handshakes("", edge) == before + 1


@pytest.mark.parametrize("sni", ["unknown.test", "a.b.api.test", None])
async def test_sni_without_an_edge_certificate_is_refused(
    node: Running, pki: E2ePki, sni: str | None
) -> None:
    # No edge certificate is the default in this node, so no SNI finds none either.
    before = (await node.status.metrics()).handshakes("sni_mismatch", "")
    run = await s_client(pki, node.port, sni, *with_alice(pki))
    assert not handshake_done(run)
    assert "unrecognized name" in run.stderr
    assert (await node.status.metrics()).handshakes("sni_mismatch", "") == before + 1


@pytest.mark.parametrize(
    ("flag", "reason"), [("-tls1_2", ""), ("-tls1_3", ""), ("-tls1_1", "unsupported_protocol")]
)
async def test_only_tls_1_2_and_1_3_are_spoken(
    node: Running, pki: E2ePki, flag: str, reason: str
) -> None:
    edge = "api" if not reason else ""
    before = (await node.status.metrics()).handshakes(reason, edge)
    run = await s_client(
        pki, node.port, "api.test", flag, "-cipher", "DEFAULT@SECLEVEL=0", *with_alice(pki)
    )
    assert handshake_done(run) is (not reason)
    assert (await node.status.metrics()).handshakes(reason, edge) == before + 1


async def test_client_initiated_renegotiation_is_refused(node: Running, pki: E2ePki) -> None:
    # "R" on s_client's stdin renegotiates (TLS 1.2). The line is read once the handshake is
    # done; stdin stays open, so only the server's refusal ends the process in time.
    run = await s_client_interactive(
        pki, node.port, "api.test", b"R\n", "-tls1_2", *with_alice(pki)
    )
    assert "RENEGOTIATING" in run.stdout + run.stderr
    assert "no renegotiation" in run.stderr
    assert run.code != 0


def distrusting_client(pki: E2ePki, port: int) -> ssl.SSLError:
    """alice, with a client that does not trust the edge's server CA: she aborts the handshake."""
    context = ssl.create_default_context()
    context.load_cert_chain(pki.alice.cert, pki.alice.key)
    with socket.create_connection(("127.0.0.1", port), TIMEOUT) as sock:
        try:
            context.wrap_socket(sock, server_hostname="api.test").close()
        except ssl.SSLCertVerificationError as error:
            return error
    raise AssertionError("the client accepted a server certificate it does not trust")


async def test_client_refusing_the_edge_certificate_is_no_client_certificate_verdict(
    node: Running, pki: E2ePki
) -> None:
    name = "edgeproxy_client_cert_verifications_total"
    before = await node.status.metrics()
    await asyncio.to_thread(distrusting_client, pki, node.port)

    async def counted() -> Metrics | None:
        metrics = await node.status.metrics()  # the client's alert arrives on its own time
        failed = metrics.handshakes("other", "api") > before.handshakes("other", "api")
        return metrics if failed else None

    after = await poll(counted, "the failed handshake to be counted")
    # Nothing was verified: the client left before sending its certificate.
    assert after.value(name, edge_certificate="api") == before.value(name, edge_certificate="api")
