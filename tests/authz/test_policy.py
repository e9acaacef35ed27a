"""The compiled policy: every matcher with a twin that must not match, rule order, methods,
requireCertificate, the default, report mode, and the request path as rules see it."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from edgeproxy.authz.parse import parse_policy
from edgeproxy.authz.peer import Peer
from edgeproxy.authz.policy import Policy, request_path
from support.pki import Issued, Pki

from .conftest import make_leaf, peer_of

Leaves = dict[str, Issued]


@pytest.fixture(scope="module")
def leaves(pki: Pki, issuer: Issued) -> Leaves:
    other_ca = pki.ca("Other CA", key="rsa2048")
    return {
        "prod": make_leaf(
            pki,
            issuer,
            subject=[(NameOID.ORGANIZATION_NAME, "Acme"), (NameOID.COMMON_NAME, "web")],
            uris=["spiffe://example.org/ns/prod/sa/web"],
        ),
        "dev": make_leaf(pki, issuer, uris=["spiffe://example.org/ns/dev/sa/web"]),
        "partner": make_leaf(
            pki,
            issuer,
            subject=[
                (NameOID.ORGANIZATION_NAME, "Partner Inc"),
                (NameOID.ORGANIZATIONAL_UNIT_NAME, "billing"),
                (NameOID.COMMON_NAME, "partner-a"),
            ],
            dns=["a.partner.example"],
            emails=["ops@partner.example"],
        ),
        "evil": make_leaf(
            pki,
            issuer,
            subject=[(NameOID.ORGANIZATION_NAME, "Evil"), (NameOID.COMMON_NAME, "partner-a2")],
            dns=["a.b.partner.example", "partner.example.evil"],
            emails=["ops@partner.example.evil"],
        ),
        "other_ca": make_leaf(
            pki,
            other_ca,
            subject=[
                (NameOID.ORGANIZATION_NAME, "Partner Inc"),
                (NameOID.COMMON_NAME, "partner-a"),
            ],
        ),
        "own_key": make_leaf(pki, issuer, fresh_key=True),
    }


def _spki(leaf: Issued) -> bytes:
    der = leaf.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


Doc = Callable[[Leaves], dict[str, Any]]

# (matcher, the leaves it admits); every other leaf of the fixture must be refused.
MATCHERS: list[tuple[str, Doc, set[str]]] = [
    ("subject CN exact", lambda _: {"subject": {"CN": "partner-a"}}, {"partner", "other_ca"}),
    (
        "subject CN glob",
        lambda _: {"subject": {"CN": "partner-*"}},
        {"partner", "other_ca", "evil"},
    ),
    (
        "subject AND of attributes",
        lambda _: {"subject": {"O": "Partner Inc", "OU": "billing"}},
        {"partner"},
    ),
    ("subject by dotted OID", lambda _: {"subject": {"2.5.4.10": "Acme"}}, {"prod"}),
    ("sanDns glob, one label", lambda _: {"sanDns": "*.partner.example"}, {"partner"}),
    ("sanDns exact", lambda _: {"sanDns": "A.Partner.Example"}, {"partner"}),
    ("sanUri SPIFFE glob", lambda _: {"sanUri": "spiffe://example.org/ns/prod/*/*"}, {"prod"}),
    ("sanUri across parts", lambda _: {"sanUri": "spiffe://example.org/**"}, {"prod", "dev"}),
    ("sanEmail", lambda _: {"sanEmail": "*@partner.example"}, {"partner"}),
    ("issuer DN", lambda _: {"issuer": "CN=Other CA"}, {"other_ca"}),
    (
        "fingerprint, hex with colons",
        lambda ls: {"fingerprintSha256": ":".join(f"{b:02X}" for b in _fp(ls["evil"]))},
        {"evil"},
    ),
    ("SPKI pin, hex", lambda ls: {"spkiSha256": _spki(ls["own_key"]).hex()}, {"own_key"}),
    (
        "SPKI pin, curl's base64",
        lambda ls: {"spkiSha256": "sha256//" + base64.b64encode(_spki(ls["own_key"])).decode()},
        {"own_key"},
    ),
    (
        "anyVerified",
        lambda _: {"anyVerified": True},
        {"prod", "dev", "partner", "evil", "other_ca", "own_key"},
    ),
]


def _fp(leaf: Issued) -> bytes:
    return hashlib.sha256(leaf.der).digest()


def _allow_only(matcher: dict[str, Any]) -> Policy:
    return parse_policy({"default": "deny", "rules": [{"pathPrefix": "/", "allow": [matcher]}]})


@pytest.mark.parametrize(("name", "doc", "admitted"), MATCHERS, ids=[m[0] for m in MATCHERS])
def test_matcher(name: str, doc: Doc, admitted: set[str], leaves: Leaves) -> None:
    policy = _allow_only(doc(leaves))
    got = {
        leaf_name
        for leaf_name, leaf in leaves.items()
        if policy.for_peer(peer_of(leaf), None).decide(b"GET", b"/x").forward
    }
    assert got == admitted
    # No verified certificate matches no matcher, anyVerified included.
    assert not policy.for_peer(None, "no_certificate").decide(b"GET", b"/x").forward


def _decide(policy: Policy, peer: Peer | None, method: bytes, target: bytes) -> tuple[str, str]:
    decision = policy.for_peer(peer, None if peer else "no_certificate").decide(method, target)
    return decision.decision, decision.rule


SPIFFE_POLICY = {
    "default": "deny",
    "rules": [
        {"pathPrefix": "/api/admin/", "deny": [{"sanUri": "spiffe://example.org/ns/dev/**"}]},
        {
            "name": "reads",
            "pathPrefix": "/api/",
            "methods": ["GET", "HEAD"],
            "allow": [{"anyVerified": True}],
        },
        {"pathPrefix": "/api/", "allow": [{"sanUri": "spiffe://example.org/ns/prod/**"}]},
        {"pathPrefix": "/public/"},
    ],
}


@pytest.mark.parametrize(
    ("leaf", "method", "target", "expected"),
    [
        ("prod", b"GET", b"/api/orders?id=1", ("allow", "reads")),
        ("dev", b"GET", b"/api/orders", ("allow", "reads")),
        ("prod", b"POST", b"/api/orders", ("allow", "2")),
        ("dev", b"POST", b"/api/orders", ("deny", "2")),  # the rule's allow list refuses it
        ("dev", b"GET", b"/api/admin/x", ("deny", "0")),  # a deny that precedes an allow
        ("prod", b"GET", b"/api/admin/x", ("allow", "0")),  # deny only: everyone else may
        ("dev", b"GET", b"/public/logo.png", ("allow", "3")),
        ("prod", b"GET", b"/admin/", ("deny", "default")),
        ("prod", b"GET", b"/apiary", ("deny", "default")),  # a prefix, byte for byte
        ("prod", b"GET", b"/API/orders", ("deny", "default")),  # case matters
        ("prod", b"GET", b"/%61pi/orders", ("allow", "reads")),  # %61 is "a"
        ("prod", b"GET", b"//api//orders", ("allow", "reads")),  # slashes merged
        ("prod", b"GET", b"/public/../api/admin/", ("deny", "invalid_path")),
        ("prod", b"GET", b"/api%2fadmin/", ("deny", "invalid_path")),
    ],
)
def test_first_matching_rule_decides(
    leaf: str, method: bytes, target: bytes, expected: tuple[str, str], leaves: Leaves
) -> None:
    policy = parse_policy(SPIFFE_POLICY)
    assert _decide(policy, peer_of(leaves[leaf]), method, target) == expected


def test_without_a_certificate() -> None:
    policy = parse_policy(SPIFFE_POLICY)
    assert _decide(policy, None, b"GET", b"/public/x") == ("allow", "3")  # no allow list
    assert _decide(policy, None, b"GET", b"/api/x") == ("deny", "reads")  # anyVerified
    assert _decide(policy, None, b"GET", b"/api/admin/x") == ("allow", "0")  # deny only


def test_require_certificate_on_some_paths(leaves: Leaves) -> None:
    policy = parse_policy(
        {
            "default": "allow",
            "rules": [{"pathPrefix": "/private/", "requireCertificate": True}],
        }
    )
    missing = policy.for_peer(None, "unknown_ca").decide(b"GET", b"/private/x")
    assert (missing.decision, missing.reason, missing.forward) == ("deny", "unknown_ca", False)
    assert policy.for_peer(None, "no_certificate").decide(b"GET", b"/open").forward
    assert policy.for_peer(peer_of(leaves["dev"]), None).decide(b"GET", b"/private/x").forward


def test_default_allow_and_deny(leaves: Leaves) -> None:
    peer = peer_of(leaves["prod"])
    for default, forward in (("allow", True), ("deny", False)):
        policy = parse_policy({"default": default, "rules": []})
        decision = policy.for_peer(peer, None).decide(b"GET", b"/")
        assert (decision.rule, decision.forward) == ("default", forward)
        assert decision.reason == (None if forward else "policy_denied")


def test_report_mode_forwards_what_it_would_deny(leaves: Leaves) -> None:
    policy = parse_policy({**SPIFFE_POLICY, "mode": "report"})
    view = policy.for_peer(peer_of(leaves["dev"]), None)
    decision = view.decide(b"POST", b"/api/orders")
    assert (decision.decision, decision.forward, decision.reason) == (
        "would_deny",
        True,
        "policy_denied",
    )
    assert view.decide(b"GET", b"/api/orders").decision == "allow"
    assert view.decide(b"GET", b"/nothing").decision == "would_deny"


def test_each_rule_is_judged_once_per_connection(leaves: Leaves) -> None:
    view = parse_policy(SPIFFE_POLICY).for_peer(peer_of(leaves["prod"]), None)
    first = view.decide(b"POST", b"/api/a")
    assert view.decide(b"PUT", b"/api/b") is first  # the same decision object, not a new one


@pytest.mark.parametrize(
    ("target", "path"),
    [
        (b"/a/b?x=/../", b"/a/b"),
        (b"/.well-known/x", b"/.well-known/x"),
        (b"/a//b///c", b"/a/b/c"),
        (b"/%7euser/%41", b"/~user/A"),
        (b"/a%20b/%e2%82%ac", b"/a%20b/%E2%82%AC"),
        (b"*", b"*"),
        (b"/a/./b", None),
        (b"/a/..", None),
        (b"/a/%2e%2E/b", None),
        (b"/a%2Fb", None),
        (b"/a%5cb", None),
        (b"/a\\b", None),
        (b"/a%zz", None),
        (b"/a%", None),
    ],
)
def test_request_path(target: bytes, path: bytes | None) -> None:
    assert request_path(target) == path


def test_the_first_segment_index_agrees_with_a_scan_of_every_rule() -> None:
    """Rules are looked up by the path's first segment; the answer must be the first rule, in
    order, that a plain scan finds."""
    rules: list[dict[str, Any]] = [
        {"pathPrefix": "/api/v1/", "methods": ["POST"]},
        {"pathPrefix": "/apix/", "methods": ["POST"]},
        {"pathPrefix": "/health"},  # no whole first segment: a candidate for every path
        {"pathPrefix": "/api/"},
        {"pathPrefix": "/a/b/c/"},
        {"pathPrefix": "/a/", "methods": ["GET"]},
        {"pathPrefix": "/api", "methods": ["POST"]},
        {"pathPrefix": "/"},
    ]
    policy = parse_policy({"default": "deny", "rules": rules})
    view = policy.for_peer(None, "no_certificate")
    paths = [b"/", b"/api", b"/api/", b"/api/v1/x", b"/apix/y", b"/apiary", b"/health/z",
             b"/a/b/c/d", b"/a/b", b"/zzz/", b"*", b"/a"]  # fmt: skip
    for path in paths:
        for method in (b"GET", b"POST"):
            expected = next((r.label for r in policy.rules if r.applies(method, path)), "default")
            assert view.decide(method, path).rule == expected, (method, path)
