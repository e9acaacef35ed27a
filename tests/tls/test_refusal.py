"""What the engine tells the log about a refused handshake (refusal.py): the certificate the
verify step stopped at, its depth, and the trust enforced."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from cryptography import x509

from edgeproxy.tls.refusal import describe, verify_error_text
from edgeproxy.tls.session import Reason
from edgeproxy.tls.trust import TrustState

from .conftest import API, Handshake, Pki, der

Connect = Callable[..., Handshake]
StateFor = Callable[..., TrustState]


def test_an_unknown_leaf_is_named_at_depth_zero(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    hs = connect(state_for(), pki.client_context(pki.stranger))
    refusal = hs.engine.refusal(Reason.UNKNOWN_CA)
    assert (refusal.edge_name, refusal.sni, refusal.ca_set, refusal.ca_set_version) == (
        "api",
        API,
        "p",
        1,
    )
    fields = describe(refusal)
    leaf = pki.stranger.cert_chain_pems[0].bytes()
    assert fields["client_sha256"] == hashlib.sha256(der(leaf)).hexdigest()
    cert = x509.load_der_x509_certificate(der(leaf))
    assert fields["client_subject"] == cert.subject.rfc4514_string()
    assert fields["client_issuer"] == cert.issuer.rfc4514_string()
    assert (fields["verify_error"], fields["verify_depth"]) == (20, 0)
    assert fields["tls_version"] == "TLSv1.3"


def test_an_unknown_intermediate_is_named_at_its_depth(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    """OpenSSL keeps no chain of a refused handshake: the certificate the failure was found on
    is what the log can name (here the intermediate the client sent)."""
    hs = connect(state_for(), pki.client_context(pki.chained))
    fields = describe(hs.engine.refusal(Reason.UNKNOWN_CA))
    assert (fields["verify_error"], fields["verify_depth"]) == (20, 1)
    assert fields["client_sha256"] == hashlib.sha256(der(pki.intermediate)).hexdigest()


def test_no_active_version_names_the_set_without_a_version(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    hs = connect(state_for(anchors=None), pki.client_context(pki.good))
    refusal = hs.engine.refusal(Reason.NO_ACTIVE_VERSION)
    assert (refusal.ca_set, refusal.ca_set_version) == ("p", None)


def test_verify_error_texts_are_openssls() -> None:
    assert verify_error_text(10) == "certificate has expired"
    assert verify_error_text(999) == "X509 verify error 999"
