"""Judging a chain again against newer anchors (tls/recheck.py): what closes an open connection
after a trust change, and what must not."""

from __future__ import annotations

import dataclasses
import datetime as dt

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edgeproxy.tls.recheck import judge_chain
from edgeproxy.tls.session import Reason
from support.pki import build_crl, trustme_issuer

from .conftest import Pki, der


def crl(ca: trustme.CA, *serials: int) -> bytes:
    now = dt.datetime.now(dt.UTC)
    built = build_crl(
        trustme_issuer(ca),
        this_update=now - dt.timedelta(minutes=1),
        next_update=now + dt.timedelta(days=1),
        revoked=serials,
        revoked_at=now,
    )
    return built.public_bytes(serialization.Encoding.DER)


def serial(leaf: trustme.LeafCert) -> int:
    return x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes()).serial_number


def test_a_chain_still_anchored_is_trusted_and_one_whose_ca_left_is_not(pki: Pki) -> None:
    good = (der(pki.good.cert_chain_pems[0].bytes()),)
    assert judge_chain(good, pki.anchors(pki.client_ca, pki.root)) is None
    assert judge_chain(good, pki.anchors(pki.root)) is Reason.UNKNOWN_CA
    assert judge_chain(good, None) is Reason.NO_ACTIVE_VERSION


def test_a_crl_of_the_issuer_revokes_and_one_of_another_issuer_does_not(pki: Pki) -> None:
    good = (der(pki.good.cert_chain_pems[0].bytes()),)
    anchors = pki.anchors(pki.client_ca)
    listed = dataclasses.replace(anchors, crls_der=(crl(pki.client_ca, serial(pki.good)),))
    assert judge_chain(good, listed) is Reason.REVOKED
    foreign = dataclasses.replace(anchors, crls_der=(crl(pki.root, serial(pki.good)),))
    assert judge_chain(good, foreign) is None


def test_a_leaf_alone_is_judged_with_the_chain_it_was_trusted_under(pki: Pki) -> None:
    """A resumed session may know only the leaf: the intermediate comes from the old anchors."""
    leaf_only = (der(pki.chained.cert_chain_pems[0].bytes()),)
    before = pki.anchors(pki.intermediate)  # partial chain: the intermediate was an anchor
    after = pki.anchors(pki.root, version=2)  # now only the root, above that intermediate
    assert judge_chain(leaf_only, after, before) is None
    # The twin: without the anchors it was trusted under, the intermediate is missing.
    assert judge_chain(leaf_only, after) is Reason.UNKNOWN_CA
    # And a root that is not the one above it does not keep it.
    assert judge_chain(leaf_only, pki.anchors(pki.client_ca), before) is Reason.UNKNOWN_CA


def test_an_expired_client_is_no_longer_trusted(pki: Pki) -> None:
    expired = (der(pki.expired.cert_chain_pems[0].bytes()),)
    assert judge_chain(expired, pki.anchors(pki.client_ca)) is Reason.EXPIRED
