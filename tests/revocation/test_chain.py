"""Which certificates of a chain are checked (chain.py); how their answers combine is
tests/dataplane/revocation/test_gate.py."""

from __future__ import annotations

from cryptography import x509

from edgeproxy.revocation.chain import AnchorIndex, chain_notes
from edgeproxy.revocation.verify import key_hash
from support.revocation_pki import Ca, Pki


def _index(*cas: Ca) -> AnchorIndex:
    index: AnchorIndex = {}
    for ca in cas:
        index.setdefault(ca.cert.subject.public_bytes(), []).append(ca.cert)
    return index


def _hash(der: bytes) -> bytes:
    return key_hash(x509.load_der_x509_certificate(der))


def test_chain_notes_stop_at_the_trust_anchor(pki: Pki) -> None:
    leaf = pki.issue("walked", issuer=pki.intermediate)
    sent = (leaf.der, pki.intermediate.der)

    notes = chain_notes(sent, _index(pki.ca), _hash)
    assert notes is not None
    assert [(n.cert_der, n.issuer_der) for n in notes] == [
        (leaf.der, pki.intermediate.der),
        (pki.intermediate.der, pki.ca.der),
    ]
    assert notes[1].key == (key_hash(pki.ca.cert), pki.intermediate.serial)

    # The intermediate is itself an anchor: trusted by definition, only the leaf is checked.
    only_leaf = chain_notes(sent, _index(pki.ca, pki.intermediate), _hash)
    assert only_leaf is not None
    assert [n.cert_der for n in only_leaf] == [leaf.der]


def test_chain_notes_refuse_a_chain_with_a_missing_link(pki: Pki) -> None:
    leaf = pki.issue("orphan", issuer=pki.intermediate)
    assert chain_notes((leaf.der,), _index(pki.ca), _hash) is None  # intermediate not sent
    assert chain_notes((leaf.der, pki.intermediate.der), _index(pki.unrelated), _hash) is None
