"""Contexts are a pure, cached function of EdgeTrust; TrustState is built aside and immutable."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import pytest
from OpenSSL import SSL, crypto

from edgeproxy.tls.contexts import ContextCache, build_context, session_id_context
from edgeproxy.tls.trust import EdgeTrust, TrustState

from .conftest import API, Pki


def test_equal_inputs_give_the_same_context(pki: Pki, cache: ContextCache) -> None:
    a = EdgeTrust(pki.edge(), pki.anchors())
    b = EdgeTrust(pki.edge(origin="http://10.0.0.1:80"), pki.anchors())  # origin: not TLS
    assert a.digest() == b.digest()
    assert cache.get(a) is cache.get(b)
    assert len(cache) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"anchors_version": 2},
        {"require_root": True},
        {"revision": 1},
        {"mode": "request"},
        {"send_ca_list": True},
        {"anchors_none": True},
    ],
)
def test_any_trust_change_gives_a_new_context(
    pki: Pki, cache: ContextCache, change: dict[str, object]
) -> None:
    base = EdgeTrust(pki.edge(), pki.anchors())
    anchors = pki.anchors(
        version=2 if change.get("anchors_version") else 1,
        require_root=bool(change.get("require_root")),
    )
    other = EdgeTrust(
        pki.edge(mode=change.get("mode", "require"), send_ca_list=bool(change.get("send_ca_list"))),  # type: ignore[arg-type]
        None if change.get("anchors_none") else anchors,
        int(change.get("revision", 0)),  # type: ignore[call-overload]
    )
    assert base.digest() != other.digest()
    assert session_id_context(base) != session_id_context(other)
    assert cache.get(base) is not cache.get(other)


def test_session_id_context_fits_openssl(pki: Pki) -> None:
    sid = session_id_context(EdgeTrust(pki.edge(), pki.anchors()))
    assert len(sid) == 32  # SSL_MAX_SID_CTX_LENGTH


def test_cache_is_bounded_lru(pki: Pki) -> None:
    cache = ContextCache(maxsize=2)
    trusts = [EdgeTrust(pki.edge(), pki.anchors(version=v)) for v in (1, 2, 3)]
    first = cache.get(trusts[0])
    cache.get(trusts[1])
    assert cache.get(trusts[0]) is first  # refreshed: now most recently used
    cache.get(trusts[2])  # evicts version 2
    assert len(cache) == 2
    assert cache.get(trusts[0]) is first


def test_context_settings(pki: Pki) -> None:
    ctx = build_context(EdgeTrust(pki.edge(), pki.anchors()))
    assert ctx.get_verify_mode() == SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT
    assert ctx.get_verify_depth() == 5
    assert ctx.get_session_cache_mode() & SSL.SESS_CACHE_NO_INTERNAL_STORE
    assert ctx.get_timeout() == 300
    request = build_context(EdgeTrust(pki.edge(mode="request"), pki.anchors()))
    assert request.get_verify_mode() == SSL.VERIFY_PEER
    assert request.get_session_cache_mode() == SSL.SESS_CACHE_OFF


def test_bad_inputs_raise(pki: Pki, tmp_path: Path) -> None:
    missing = dataclasses.replace(pki.edge(), certificate=tmp_path / "nope.pem")
    with pytest.raises(SSL.Error):
        build_context(EdgeTrust(missing, pki.anchors()))
    with pytest.raises(ValueError, match="no certificates"):
        build_context(
            EdgeTrust(pki.edge(), dataclasses.replace(pki.anchors(), certificates_der=()))
        )
    junk = dataclasses.replace(pki.anchors(), certificates_der=(b"junk",))
    with pytest.raises(crypto.Error):
        build_context(EdgeTrust(pki.edge(), junk))


def _client_sees_ca_names(pki: Pki, send: bool) -> list[bytes]:
    """A pyOpenSSL client (it exposes the CA names the server sent) against the context."""
    server = SSL.Connection(
        build_context(EdgeTrust(pki.edge(send_ca_list=send), pki.anchors(pki.client_ca, pki.root))),
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
    from cryptography import x509

    names = _client_sees_ca_names(pki, send=True)
    expected = [
        x509.load_pem_x509_certificate(ca.cert_pem.bytes()).subject.public_bytes()
        for ca in (pki.client_ca, pki.root)
    ]
    assert names == expected
    assert _client_sees_ca_names(pki, send=False) == []


def test_trust_state_sni_index(pki: Pki, cache: ContextCache) -> None:
    anchors = pki.anchors()
    state = TrustState.build(
        [
            EdgeTrust(pki.edge(), anchors),
            EdgeTrust(pki.edge("www", ["WWW.example.com."], default=True), anchors),
        ],
        cache.get,
    )
    assert sorted(state.edges) == ["api", "www"]
    pick = state.select
    assert pick(API) is state.edges["api"]
    assert pick("x.api.example.com") is state.edges["api"]
    assert pick("www.example.com") is state.edges["www"]
    assert pick("a.b.api.example.com") is state.edges["www"]  # default
    assert pick(None) is state.edges["www"]
    no_default = TrustState.build([EdgeTrust(pki.edge(), anchors)], cache.get)
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
def test_trust_state_refuses_conflicts(
    pki: Pki, cache: ContextCache, second: dict[str, object], message: str
) -> None:
    anchors = pki.anchors()
    with pytest.raises(ValueError, match=message):
        TrustState.build(
            [EdgeTrust(pki.edge(), anchors), EdgeTrust(pki.edge(**second), anchors)],  # type: ignore[arg-type]
            cache.get,
        )


def test_two_defaults_refused(pki: Pki, cache: ContextCache) -> None:
    anchors = pki.anchors()
    with pytest.raises(ValueError, match="both default"):
        TrustState.build(
            [
                EdgeTrust(pki.edge("a", ["a.example.com"], default=True), anchors),
                EdgeTrust(pki.edge("b", ["b.example.com"], default=True), anchors),
            ],
            cache.get,
        )


def test_build_failure_raises_and_leaves_nothing_half_done(
    pki: Pki, cache: ContextCache, tmp_path: Path
) -> None:
    good = EdgeTrust(pki.edge(), pki.anchors())
    bad = EdgeTrust(
        dataclasses.replace(pki.edge("b", ["b.example.com"]), private_key=tmp_path / "x"), None
    )
    with pytest.raises(SSL.Error):
        TrustState.build([good, bad], cache.get)
