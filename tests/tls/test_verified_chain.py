"""The chain that validated a client certificate is the one OpenSSL built, never what the client
sent after its leaf (RFC 9440 §2.3): real handshakes over memory BIOs."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from edgeproxy.tls.contexts import ChainBook
from edgeproxy.tls.session import VerifyResult
from edgeproxy.tls.trust import TrustState
from support.pki import build_certificate

from .conftest import Handshake, Pki, der
from .test_engine import TLS_VERSIONS, complete

Connect = Callable[..., Handshake]
StateFor = Callable[..., TrustState]


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def impostor(of: trustme.CA) -> x509.Certificate:
    """A self-signed CA certificate with `of`'s subject and another key: a fake issuer."""
    real = x509.load_pem_x509_certificate(of.cert_pem.bytes())
    now = dt.datetime.now(dt.UTC)
    return build_certificate(
        real.subject,
        ec.generate_private_key(ec.SECP256R1()),
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=30),
    )


def junk(count: int) -> list[x509.Certificate]:
    """`count` unrelated self-signed CA certificates (one key: the serials differ)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    return [
        build_certificate(
            x509.Name.from_rfc4514_string(f"CN=junk {i}"),
            key,
            not_before=now - dt.timedelta(days=1),
            not_after=now + dt.timedelta(days=30),
        )
        for i in range(count)
    ]


def sending(
    pki: Pki, tmp_path: Path, leaf: trustme.LeafCert, after_leaf: list[x509.Certificate]
) -> ssl.SSLContext:
    """A client context that sends `leaf`, then exactly `after_leaf`."""
    path = tmp_path / "client.pem"
    path.write_bytes(
        leaf.private_key_pem.bytes()
        + leaf.cert_chain_pems[0].bytes()
        + b"".join(pem(c) for c in after_leaf)
    )
    ctx = pki.client_context()
    ctx.load_cert_chain(path)
    return ctx


@pytest.mark.parametrize("tls", TLS_VERSIONS, ids=["tls12", "tls13"])
def test_a_fake_issuer_and_junk_after_the_leaf_are_not_the_verified_chain(
    pki: Pki, state_for: StateFor, connect: Connect, tmp_path: Path, tls: ssl.TLSVersion
) -> None:
    sent = [impostor(pki.client_ca), *junk(99)]
    ctx = sending(pki, tmp_path, pki.good, sent)
    ctx.minimum_version = ctx.maximum_version = tls
    session = complete(connect(state_for(), ctx)).session
    assert session.verify_result is VerifyResult.SUCCESS
    leaf = session.peer_chain_der[0]
    assert session.peer_chain_der[1] == sent[0].public_bytes(Encoding.DER)  # as sent, kept apart
    assert session.verified_chain_der == (leaf, der(pki.client_ca))


def test_the_verified_chain_ends_at_the_root_of_the_set(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    state = state_for(anchors=pki.anchors(pki.root))
    session = complete(connect(state, pki.client_context(pki.chained))).session
    assert session.verified_chain_der == (
        session.peer_chain_der[0],
        der(pki.intermediate),
        der(pki.root),
    )


def test_partial_chain_verification_ends_at_the_anchor_met_first(
    pki: Pki, state_for: StateFor, connect: Connect, tmp_path: Path
) -> None:
    # The set holds the intermediate only; the client sends the intermediate and the root too.
    root = x509.load_pem_x509_certificate(pki.root.cert_pem.bytes())
    intermediate = x509.load_pem_x509_certificate(pki.intermediate.cert_pem.bytes())
    ctx = sending(pki, tmp_path, pki.chained, [intermediate, root])
    state = state_for(anchors=pki.anchors(pki.intermediate))
    session = complete(connect(state, ctx)).session
    assert len(session.peer_chain_der) == 3
    assert session.verified_chain_der == (session.peer_chain_der[0], der(pki.intermediate))


def test_issuers_are_shared_with_the_ca_set_not_copied_per_connection(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    state = state_for()
    anchor = state.edges["api"].anchors
    assert anchor is not None
    chains = [
        complete(connect(state, pki.client_context(pki.good))).session.verified_chain_der
        for _ in range(2)
    ]
    assert chains[0][1] is chains[1][1] is anchor.certificates_der[0]


@pytest.mark.parametrize("leaf", ["stranger", "expired", None])
def test_no_verified_chain_without_a_verified_certificate(
    pki: Pki, state_for: StateFor, connect: Connect, leaf: str | None
) -> None:
    cert = None if leaf is None else getattr(pki, leaf)
    session = complete(connect(state_for(mode="request"), pki.client_context(cert))).session
    assert session.verify_result is not VerifyResult.SUCCESS
    assert session.verified_chain_der == ()


@pytest.mark.parametrize("tls", TLS_VERSIONS, ids=["tls12", "tls13"])
def test_a_resumed_session_keeps_the_chain_its_full_handshake_verified(
    pki: Pki, state_for: StateFor, connect: Connect, tls: ssl.TLSVersion
) -> None:
    # OpenSSL verifies nothing on resumption, so it has no verified chain to give.
    state = state_for(anchors=pki.anchors(pki.root))
    ctx = pki.client_context(pki.chained, tls=tls)
    first = connect(state, ctx)
    full = complete(first).session.verified_chain_der
    first.client_read()  # the TLS 1.3 ticket
    again = connect(state, ctx, session=first.obj.session)
    assert again.obj.session_reused
    assert complete(again).session.verified_chain_der == full
    assert len(full) == 3


def test_a_chain_no_longer_remembered_is_unknown_not_guessed() -> None:
    anchor = bytes(bytearray(b"anchor"))
    book = ChainBook((anchor,))
    assert book.intern(bytes(bytearray(b"anchor"))) is anchor
    for i in range(ChainBook.MAX_CHAINS + 1):
        book.remember(b"leaf %d" % i, (b"anchor",))
    assert book.recall(b"leaf 0") is None  # the oldest went first
    assert book.recall(b"leaf 1") == (b"anchor",)
    assert book.recall(b"never seen") is None
