"""Contexts are a pure function of (edge, anchors, key generation); a trust state is built aside,
reuses what did not change from the state in force, and keeps nothing else."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from OpenSSL import SSL, crypto

from edgeproxy.authz.parse import parse_policy
from edgeproxy.tls.contexts import (
    EdgeCertificateError,
    build_context,
    build_state,
    session_id_context,
)
from edgeproxy.tls.trust import TrustState, context_key

from .conftest import API, Pki, state_of


def test_an_unchanged_edge_keeps_its_context_across_states(pki: Pki) -> None:
    first = state_of((pki.edge(), pki.anchors()))
    # The origin shapes no TLS: the context (and its resumable sessions) is kept.
    moved = pki.edge(origin="http://10.0.0.1:80")
    second = state_of((moved, pki.anchors()), previous=first)
    assert second.edges["api"].context is first.edges["api"].context
    assert second.edges["api"].edge.origin == "http://10.0.0.1:80"
    # The twin: without the state in force, the same inputs give a context of their own.
    assert state_of((moved, pki.anchors())).edges["api"].context is not first.edges["api"].context


def test_new_authorization_rules_keep_the_context(pki: Pki) -> None:
    first = state_of((pki.edge(), pki.anchors()))
    auth = dataclasses.replace(
        pki.edge().mutual_authentication,
        authorization=parse_policy({"rules": [{"pathPrefix": "/api/"}]}),
    )
    ruled = dataclasses.replace(pki.edge(), mutual_authentication=auth)
    assert context_key(ruled, pki.anchors()) == context_key(pki.edge(), pki.anchors())
    second = state_of((ruled, pki.anchors()), previous=first)
    assert second.edges["api"].context is first.edges["api"].context
    assert second.edges["api"].edge.mutual_authentication.authorization is auth.authorization


@pytest.mark.parametrize(
    "change",
    [
        {"anchors_version": 2},
        {"require_root": True},
        {"revision": 1},
        {"mode": "request"},
        {"send_ca_list": True},
        {"anchors_none": True},
        {"crl": True},
    ],
)
def test_any_trust_change_gives_a_new_context(pki: Pki, change: dict[str, object]) -> None:
    base_edge, base_anchors = pki.edge(), pki.anchors()
    anchors = pki.anchors(
        version=2 if change.get("anchors_version") else 1,
        require_root=bool(change.get("require_root")),
    )
    if change.get("crl"):
        anchors = dataclasses.replace(anchors, crls_der=(b"a CRL",))
    edge = pki.edge(
        mode=change.get("mode", "require"),  # type: ignore[arg-type]
        send_ca_list=bool(change.get("send_ca_list")),
    )
    other = None if change.get("anchors_none") else anchors
    generation = int(change.get("revision", 0))  # type: ignore[call-overload]
    assert context_key(base_edge, base_anchors) != context_key(edge, other, generation)
    assert session_id_context(base_edge, base_anchors) != session_id_context(
        edge, other, generation
    )
    if not change.get("crl"):  # a junk CRL would not load
        first = state_of((base_edge, base_anchors))
        second = state_of((edge, other), previous=first, generation=generation)
        assert second.edges["api"].context is not first.edges["api"].context


def test_session_id_context_fits_openssl(pki: Pki) -> None:
    sid = session_id_context(pki.edge(), pki.anchors())
    assert len(sid) == 32  # SSL_MAX_SID_CTX_LENGTH


def test_a_state_keeps_only_what_it_uses(pki: Pki) -> None:
    """Nothing is cached beside the states: a context of an edge that went away is not kept."""
    www = pki.edge("www", ["www.example.com"])
    both = state_of((pki.edge(), pki.anchors()), (www, pki.anchors()))
    api_only = state_of((pki.edge(), pki.anchors()), previous=both)
    assert sorted(api_only.edges) == ["api"]
    back = state_of((pki.edge(), pki.anchors()), (www, pki.anchors()), previous=api_only)
    assert back.edges["api"].context is both.edges["api"].context
    assert back.edges["www"].context is not both.edges["www"].context


def test_state_records_where_it_came_from(pki: Pki) -> None:
    anchors = pki.anchors()
    state = build_state([pki.edge()], {"p": anchors}, revision=7, source="store")
    assert (state.revision, state.source, dict(state.active)) == (7, "store", {"p": anchors})
    caught_up = state.at_revision(9)
    assert caught_up.revision == 9
    assert caught_up.edges["api"] is state.edges["api"]
    assert caught_up.source == "store"


def test_context_settings(pki: Pki) -> None:
    ctx = build_context(pki.edge(), pki.anchors())
    assert ctx.get_verify_mode() == SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT
    assert ctx.get_verify_depth() == 5
    assert ctx.get_session_cache_mode() & SSL.SESS_CACHE_NO_INTERNAL_STORE
    assert ctx.get_timeout() == 300
    request = build_context(pki.edge(mode="request"), pki.anchors())
    assert request.get_verify_mode() == SSL.VERIFY_PEER
    assert request.get_session_cache_mode() == SSL.SESS_CACHE_OFF


def test_bad_inputs_raise(pki: Pki, tmp_path: Path) -> None:
    missing = dataclasses.replace(pki.edge(), certificate=tmp_path / "nope.pem")
    with pytest.raises(EdgeCertificateError, match=r"certificate file .*nope\.pem"):
        build_context(missing, pki.anchors())
    with pytest.raises(ValueError, match="no certificates"):
        build_context(pki.edge(), dataclasses.replace(pki.anchors(), certificates_der=()))
    junk = dataclasses.replace(pki.anchors(), certificates_der=(b"junk",))
    with pytest.raises(crypto.Error):
        build_context(pki.edge(), junk)


def _client_sees_ca_names(pki: Pki, send: bool) -> list[bytes]:
    """A pyOpenSSL client (it exposes the CA names the server sent) against the context."""
    server = SSL.Connection(
        build_context(pki.edge(send_ca_list=send), pki.anchors(pki.client_ca, pki.root)),
        None,
    )
    server.set_accept_state()
    client_ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    client = SSL.Connection(client_ctx, None)
    client.set_tlsext_host_name(API.encode())
    client.set_connect_state()
    for _ in range(4):
        for a, b in ((client, server), (server, client)):
            try:
                a.do_handshake()
            except SSL.WantReadError:
                pass
            except SSL.Error:
                pass  # the client has no certificate; we only look at what it was asked for
            with contextlib.suppress(SSL.WantReadError):
                b.bio_write(a.bio_read(65536))
    return [name.public_bytes() for name in client.get_client_ca_list(as_cryptography=True)]


def test_ca_list_is_sent_only_when_configured(pki: Pki) -> None:
    names = _client_sees_ca_names(pki, send=True)
    expected = [
        x509.load_pem_x509_certificate(ca.cert_pem.bytes()).subject.public_bytes()
        for ca in (pki.client_ca, pki.root)
    ]
    assert names == expected
    assert _client_sees_ca_names(pki, send=False) == []


def test_anchors_are_parsed_once_for_every_context_built_on_them(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    anchors = pki.anchors(pki.client_ca, pki.root)
    parsed = anchors.parsed()
    assert anchors.parsed() is parsed
    parses: list[bytes] = []
    load, load_der = crypto.load_certificate, x509.load_der_x509_certificate

    def counted(kind: int, data: bytes) -> crypto.X509:
        parses.append(data)
        return load(kind, data)

    def counted_der(data: bytes) -> x509.Certificate:
        parses.append(data)
        return load_der(data)

    monkeypatch.setattr(crypto, "load_certificate", counted)
    monkeypatch.setattr(x509, "load_der_x509_certificate", counted_der)
    build_context(pki.edge(), anchors)
    build_context(pki.edge(name="other", hostnames=("other.example",)), anchors)
    assert parses == []
    # The twin: anchors made anew (as a new CRL or block gives) parse their own certificates.
    dataclasses.replace(anchors, crls_der=()).parsed()
    assert sorted(parses) == sorted(anchors.certificates_der)  # once, the CA list included


def test_trust_state_sni_index(pki: Pki) -> None:
    anchors = pki.anchors()
    state = state_of(
        (pki.edge(), anchors), (pki.edge("www", ["WWW.example.com."], default=True), anchors)
    )
    assert sorted(state.edges) == ["api", "www"]
    pick = state.select
    assert pick(API) is state.edges["api"]
    assert pick("x.api.example.com") is state.edges["api"]
    assert pick("www.example.com") is state.edges["www"]
    assert pick("a.b.api.example.com") is state.edges["www"]  # default
    assert pick(None) is state.edges["www"]
    no_default = state_of((pki.edge(), anchors))
    assert no_default.select("other.example.com") is None
    assert no_default.select(None) is None
    assert TrustState().select(API) is None
    with pytest.raises(TypeError):
        state.edges["x"] = state.edges["api"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"name": "api", "hostnames": ["b.example.com"]}, "duplicate edge certificate name"),
        ({"name": "b", "hostnames": [API]}, "served by both"),
        ({"name": "b", "hostnames": ["*.API.example.com"]}, "served by both"),
        ({"name": "b", "hostnames": ["a.*.example.com"]}, "unsupported host name pattern"),
        ({"name": "b", "hostnames": ["*."]}, "unsupported host name pattern"),
    ],
)
def test_trust_state_refuses_conflicts(pki: Pki, second: dict[str, object], message: str) -> None:
    anchors = pki.anchors()
    with pytest.raises(ValueError, match=message):
        state_of((pki.edge(), anchors), (pki.edge(**second), anchors))  # type: ignore[arg-type]


def test_two_defaults_refused(pki: Pki) -> None:
    anchors = pki.anchors()
    with pytest.raises(ValueError, match="both default"):
        state_of(
            (pki.edge("a", ["a.example.com"], default=True), anchors),
            (pki.edge("b", ["b.example.com"], default=True), anchors),
        )


def test_build_failure_raises_and_leaves_nothing_half_done(pki: Pki, tmp_path: Path) -> None:
    good = (pki.edge(), pki.anchors())
    bad = (
        dataclasses.replace(pki.edge("b", ["b.example.com"]), private_key=tmp_path / "x"),
        pki.anchors(),
    )
    with pytest.raises(EdgeCertificateError, match="'b': private key file"):
        state_of(good, bad)


def test_unusable_edge_files_are_one_sentence_naming_the_edge_and_the_file(
    pki: Pki, tmp_path: Path
) -> None:
    """What a SIGHUP reload or a start logs: the edge certificate and the file, OpenSSL's words,
    never its list of (library, function, reason) tuples."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    other = trustme.CA().issue_cert("other.example.com")
    other_key = tmp_path / "other.key"
    other.private_key_pem.write_to_path(str(other_key))
    edge = pki.edge()
    cases = [
        (
            dataclasses.replace(edge, certificate=garbage),
            f"edge certificate 'api': certificate file {garbage} does not load as a PEM "
            "certificate chain (no start line",
        ),
        (
            dataclasses.replace(edge, private_key=garbage),
            f"edge certificate 'api': private key file {garbage} does not load as an "
            "unencrypted PEM key (",
        ),
        (
            dataclasses.replace(edge, private_key=other_key),
            f"edge certificate 'api': the private key in {other_key} does not match the "
            f"certificate in {edge.certificate}",
        ),
    ]
    for broken, words in cases:
        with pytest.raises(EdgeCertificateError) as caught:
            build_context(broken, pki.anchors())
        assert str(caught.value).startswith(words)
        assert "[(" not in str(caught.value)
