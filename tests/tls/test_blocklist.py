"""Blocked certificates at the TLS layer (tls/blocklist.py): refused in the handshake with reason
`blocked`, judged again for open connections, each with its twin that must pass."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from edgeproxy.domain.model import BlockedCertificate
from edgeproxy.tls.blocklist import NO_BLOCKS, BlockList
from edgeproxy.tls.engine import HandshakeComplete, HandshakeFailed, State
from edgeproxy.tls.recheck import judge_chain
from edgeproxy.tls.session import Reason, VerifyResult
from edgeproxy.tls.trust import TrustAnchors, TrustState

from .conftest import Handshake, Pki

Connect = Callable[..., Handshake]
StateFor = Callable[..., TrustState]
NOW = datetime.now(UTC)


def entry(
    *,
    fingerprint: str | None = None,
    issuer: str | None = None,
    serial: str | None = None,
    expires: datetime | None = None,
) -> BlockedCertificate:
    return BlockedCertificate(1, 1, fingerprint, issuer, serial, "leaked", expires, "ops", NOW)


def leaf_of(pki: Pki, name: str = "good") -> x509.Certificate:
    return x509.load_pem_x509_certificate(getattr(pki, name).cert_chain_pems[0].bytes())


def fingerprint_of(leaf: x509.Certificate) -> str:
    return hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest()


def blocked_anchors(pki: Pki, *entries: BlockedCertificate) -> TrustAnchors:
    return dataclasses.replace(pki.anchors(), blocked=BlockList.of(entries))


@pytest.mark.parametrize(
    ("make", "blocked"),
    [
        (lambda leaf: entry(fingerprint=fingerprint_of(leaf)), True),
        (lambda leaf: entry(fingerprint="00" * 32), False),
        (
            lambda leaf: entry(
                issuer=leaf.issuer.rfc4514_string(), serial=format(leaf.serial_number, "x")
            ),
            True,
        ),
        (
            lambda leaf: entry(issuer="CN=Someone Else", serial=format(leaf.serial_number, "x")),
            False,
        ),
        (lambda leaf: entry(issuer=leaf.issuer.rfc4514_string(), serial="1"), False),
        (
            lambda leaf: entry(fingerprint=fingerprint_of(leaf), expires=NOW + timedelta(hours=1)),
            True,
        ),
        (
            lambda leaf: entry(
                fingerprint=fingerprint_of(leaf), expires=NOW - timedelta(seconds=1)
            ),
            False,
        ),
    ],
    ids=[
        "fingerprint",
        "other-fingerprint",
        "issuer-serial",
        "other-issuer",
        "other-serial",
        "not-yet-expired",
        "expired",
    ],
)
def test_what_a_block_list_blocks(
    pki: Pki, make: Callable[[x509.Certificate], BlockedCertificate], blocked: bool
) -> None:
    leaf = leaf_of(pki)
    assert BlockList.of([make(leaf)]).blocks(leaf) is blocked
    assert not NO_BLOCKS.blocks(leaf)
    assert not NO_BLOCKS


def test_a_block_change_is_a_change_of_the_anchors_key(pki: Pki) -> None:
    leaf = leaf_of(pki)
    plain = pki.anchors()
    blocked = blocked_anchors(pki, entry(fingerprint=fingerprint_of(leaf)))
    assert plain.key != blocked.key
    expiring = blocked_anchors(
        pki, entry(fingerprint=fingerprint_of(leaf), expires=NOW + timedelta(days=1))
    )
    assert expiring.key != blocked.key


@pytest.mark.parametrize("mode", ["require", "request"])
def test_a_blocked_certificate_is_refused_in_the_handshake(
    pki: Pki, state_for: StateFor, connect: Connect, mode: str
) -> None:
    anchors = blocked_anchors(pki, entry(fingerprint=fingerprint_of(leaf_of(pki))))
    hs = connect(state_for(anchors=anchors, mode=mode), pki.client_context(pki.good))
    if mode == "require":
        assert hs.engine.state is State.FAILED
        [event] = [e for e in hs.events if isinstance(e, HandshakeFailed)]
        assert event.reason is Reason.BLOCKED
    else:
        [done] = [e for e in hs.events if isinstance(e, HandshakeComplete)]
        assert (done.session.verify_result, done.session.verify_reason) == (
            VerifyResult.FAILED,
            Reason.BLOCKED,
        )


def test_another_certificate_of_the_same_ca_still_connects(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    anchors = blocked_anchors(pki, entry(fingerprint="00" * 32))
    hs = connect(state_for(anchors=anchors), pki.client_context(pki.good))
    assert hs.engine.state is State.ESTABLISHED


def test_an_open_connection_of_a_blocked_certificate_is_judged_blocked(pki: Pki) -> None:
    leaf = leaf_of(pki)
    chain = (leaf.public_bytes(Encoding.DER),)
    assert judge_chain(chain, pki.anchors()) is None
    blocked = blocked_anchors(pki, entry(fingerprint=fingerprint_of(leaf)))
    assert judge_chain(chain, blocked) is Reason.BLOCKED
    other = blocked_anchors(pki, entry(fingerprint="00" * 32))
    assert judge_chain(chain, other) is None
