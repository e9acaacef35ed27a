"""bench.authz measures what it says: its request is decided by the 20th rule, and the decision's
own cost is timed on that very decision."""

from __future__ import annotations

from pathlib import Path

from bench.authz import PATH, decision_cost, twenty_rules
from bench.ocsp_warm import _pki
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from edgeproxy.authz.peer import peer_from_leaf


def test_the_bench_request_is_allowed_by_its_twentieth_rule_and_timed(tmp_path: Path) -> None:
    _, client_pem, _, _ = _pki(tmp_path, "http://127.0.0.1:9/")
    leaf = x509.load_pem_x509_certificate(client_pem.read_bytes())
    policy = twenty_rules()
    assert len(policy.rules) == 20
    peer = peer_from_leaf(leaf, leaf.public_bytes(Encoding.DER))
    decision = policy.for_peer(peer, None).decide(b"GET", PATH.encode())
    assert (decision.forward, decision.rule) == (True, "bench")
    assert decision_cost(client_pem, calls=100) > 0
