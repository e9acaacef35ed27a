"""Store-managed edge certificates in the TLS layer: the sealed key opened in the build, a
rotation that keeps open connections on their context, an unbound edge that fails closed with
its own reason, and a key that does not open left out with its own apply error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from edgeproxy.config.model import EdgeCertificateConfig
from edgeproxy.dataplane.snapshot import read_snapshot, write_snapshot
from edgeproxy.dataplane.store_edges import EdgeNameConflict, check_names, edge_config, openable
from edgeproxy.domain.edge_model import EdgeMaterial, MutualAuth, edge_error_key
from edgeproxy.domain.model import Network
from edgeproxy.domain.secrets import KeyRing, generate_kek, parse_kek
from edgeproxy.tls.contexts import build_state
from edgeproxy.tls.engine import HandshakeComplete, HandshakeFailed
from edgeproxy.tls.session import Reason, VerifyResult
from edgeproxy.tls.trust import TrustState

from .conftest import API, Handshake, Pki

Connect = Callable[..., Handshake]
RING = KeyRing(parse_kek(generate_kek()))


def _stored(
    pki: Pki, *, bound: bool = True, generation: int = 1, ring: KeyRing = RING
) -> tuple[EdgeCertificateConfig, trustme.LeafCert]:
    leaf = pki.server_ca.issue_cert(API)
    chain = "".join(b.bytes().decode() for b in leaf.cert_chain_pems)
    sealed = ring.seal("shop", leaf.private_key_pem.bytes())
    edge = edge_config(
        "shop",
        (API,),
        "http://127.0.0.1:8080",
        False,
        EdgeMaterial(chain, sealed, generation),
        MutualAuth("p") if bound else None,
    )
    return edge, leaf


def _state(pki: Pki, edge: EdgeCertificateConfig, previous: TrustState | None = None) -> TrustState:
    return build_state([edge], {"p": pki.anchors()}, previous=previous, keys=RING)


def _server_leaf(hs: Handshake) -> bytes:
    return hs.obj.getpeercert(binary_form=True) or b""


def test_a_bound_store_edge_serves_its_chain_and_verifies_clients(
    pki: Pki, connect: Connect
) -> None:
    edge, leaf = _stored(pki)
    hs = connect(_state(pki, edge), pki.client_context(pki.good))
    [done] = [e for e in hs.events if isinstance(e, HandshakeComplete)]
    assert done.session.verify_result is VerifyResult.SUCCESS
    stored_leaf = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    assert _server_leaf(hs) == stored_leaf.public_bytes(Encoding.DER)
    refused = connect(_state(pki, edge), pki.client_context(pki.stranger))
    assert [e.reason for e in refused.events if isinstance(e, HandshakeFailed)] == [
        Reason.UNKNOWN_CA
    ]


def test_rotation_keeps_open_connections_and_new_ones_get_the_new_leaf(
    pki: Pki, connect: Connect
) -> None:
    first_edge, _ = _stored(pki)
    first = _state(pki, first_edge)
    old = connect(first, pki.client_context(pki.good))
    rotated_edge, _ = _stored(pki, generation=2)
    second = _state(pki, rotated_edge, previous=first)
    assert second.edges["shop"].context is not first.edges["shop"].context
    new = connect(second, pki.client_context(pki.good))
    assert _server_leaf(new) != _server_leaf(old)
    old.client_write(b"still here")  # the open connection keeps its context
    assert bytes(old.server_plain) == b"still here"
    same = _state(pki, rotated_edge, previous=second)
    assert same.edges["shop"].context is second.edges["shop"].context


def test_an_unbound_store_edge_fails_closed_with_no_binding(pki: Pki, connect: Connect) -> None:
    edge, _ = _stored(pki, bound=False)
    hs = connect(_state(pki, edge), pki.client_context(pki.good))
    assert [e.reason for e in hs.events if isinstance(e, HandshakeFailed)] == [Reason.NO_BINDING]


def test_a_key_that_does_not_open_is_left_out_with_its_reason(pki: Pki) -> None:
    other = KeyRing(parse_kek(generate_kek()))
    edge, _ = _stored(pki, ring=other)
    kept, errors = openable([edge], RING)
    assert kept == []
    assert "does not hold" in errors[edge_error_key("shop")]
    kept, errors = openable([edge], None)
    assert "no key-encryption key" in errors[edge_error_key("shop")]
    assert openable([edge], other) == ([edge], {})


def test_a_name_in_the_file_and_the_store_is_refused(pki: Pki) -> None:
    edge, _ = _stored(pki)
    with pytest.raises(EdgeNameConflict, match="'shop'"):
        check_names([edge], [edge])


def test_the_snapshot_keeps_store_edges_with_the_key_sealed(pki: Pki, tmp_path: Path) -> None:
    edge, leaf = _stored(pki)
    unbound, _ = _stored(pki, bound=False)
    unbound = replace(unbound, alpn=("http/1.1",))  # the protocols come back too
    path = tmp_path / "snap.json"
    write_snapshot(path, Network.STAGING, 9, {"p": pki.anchors()}, [edge])
    text = path.read_text()
    body = leaf.private_key_pem.bytes().decode().splitlines()[1]
    assert body not in text
    loaded = read_snapshot(path, Network.STAGING)
    assert loaded is not None
    assert loaded.edges == (edge,)
    write_snapshot(path, Network.STAGING, 9, {}, [unbound])
    again = read_snapshot(path, Network.STAGING)
    assert again is not None
    assert again.edges == (unbound,)
