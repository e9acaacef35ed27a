"""The handshake's memory BIOs are replaced by empty ones once it is over (tls/bios.py)."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import pytest
from OpenSSL import SSL

from edgeproxy.tls import bios
from edgeproxy.tls.bios import release_handshake_bios
from edgeproxy.tls.engine import PeerClosed, State
from edgeproxy.tls.trust import TrustState

from .conftest import Handshake, Pki


@pytest.mark.parametrize(
    "tls", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls12", "tls13"]
)
def test_established_connection_runs_on_fresh_bios(
    pki: Pki,
    state_for: Callable[..., TrustState],
    connect: Callable[..., Handshake],
    tls: ssl.TLSVersion,
) -> None:
    hs = connect(state_for(send_ca_list=True), pki.client_context(pki.good, tls=tls), pump=False)
    with pytest.raises(ssl.SSLWantReadError):
        hs.obj.do_handshake()
    hs.to_server()  # the ClientHello: the engine made its SSL connection
    conn = hs.engine._conn
    assert conn is not None
    handshake_bios = (conn._into_ssl, conn._from_ssl)
    hs.pump()
    assert hs.engine.state is State.ESTABLISHED
    assert conn._into_ssl != handshake_bios[0]
    assert conn._from_ssl != handshake_bios[1]
    # Records flow both ways on the new pair, large ones included, and the close is clean.
    hs.client_write(b"ping" * 10_000)
    assert bytes(hs.server_plain) == b"ping" * 10_000
    hs.server_write(b"pong" * 10_000)
    assert hs.client_read() == b"pong" * 10_000
    hs.incoming.write(hs.engine.close())
    assert hs.obj.read() == b""  # stdlib: close_notify reads as EOF
    hs.obj.unwrap()  # the client answers with its close_notify
    out = hs.engine.feed(hs.outgoing.read())
    assert out.events == (PeerClosed(True),)
    assert hs.engine.state is State.CLOSED  # type: ignore[comparison-overlap]  # mypy keeps the narrowing across the call


def test_bios_holding_bytes_are_kept(pki: Pki, state_for: Callable[..., TrustState]) -> None:
    context = next(iter(state_for().edges.values())).context
    conn = SSL.Connection(context, None)
    conn.set_accept_state()
    before = (conn._into_ssl, conn._from_ssl)
    conn.bio_write(b"\x16\x03\x01")  # the start of a record not read yet
    assert release_handshake_bios(conn) is False
    assert (conn._into_ssl, conn._from_ssl) == before


def test_drained_bios_are_replaced(pki: Pki, state_for: Callable[..., TrustState]) -> None:
    context = next(iter(state_for().edges.values())).context
    conn = SSL.Connection(context, None)
    before = (conn._into_ssl, conn._from_ssl)
    assert release_handshake_bios(conn) is True
    assert conn._into_ssl != before[0]
    assert conn._from_ssl != before[1]
    conn.bio_write(b"abc")  # the new incoming BIO takes bytes
    with pytest.raises(SSL.WantReadError):
        conn.bio_read(10)  # and the new outgoing one is empty


def test_nothing_is_swapped_without_the_binding(
    pki: Pki, state_for: Callable[..., TrustState], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bios, "AVAILABLE", False)
    context = next(iter(state_for().edges.values())).context
    conn = SSL.Connection(context, None)
    before = (conn._into_ssl, conn._from_ssl)
    assert release_handshake_bios(conn) is False
    assert (conn._into_ssl, conn._from_ssl) == before
