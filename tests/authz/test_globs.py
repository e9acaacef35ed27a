"""Glob patterns: `*` within a part, `**` across parts, everything else literal."""

from __future__ import annotations

import pytest

from edgeproxy.authz.globs import compile_glob


@pytest.mark.parametrize(
    ("pattern", "separator", "fold", "value", "expected"),
    [
        ("api.example", ".", True, "api.example", True),
        ("api.example", ".", True, "API.Example", True),
        ("api.example", ".", True, "api.examples", False),
        ("*.partner.example", ".", True, "a.partner.example", True),
        ("*.partner.example", ".", True, "a.b.partner.example", False),
        ("*.partner.example", ".", True, ".partner.example", False),
        ("*.partner.example", ".", True, "partner.example", False),
        ("**.partner.example", ".", True, "a.b.partner.example", True),
        ("spiffe://example.org/ns/*", "/", False, "spiffe://example.org/ns/prod", True),
        ("spiffe://example.org/ns/*", "/", False, "spiffe://example.org/ns/prod/sa/web", False),
        ("spiffe://example.org/ns/**", "/", False, "spiffe://example.org/ns/prod/sa/web", True),
        ("spiffe://example.org/ns/*/sa/web", "/", False, "spiffe://example.org/ns/a/sa/web", True),
        ("spiffe://example.org/ns/*/sa/web", "/", False, "spiffe://example.org/ns/a/sa/db", False),
        ("spiffe://Example.org/x", "/", False, "spiffe://example.org/x", False),
        ("svc-*", "", False, "svc-a.b/c", True),
        ("svc-*", "", False, "svc-", False),
        ("a.c", "", False, "abc", False),  # a dot is literal, not a regex wildcard
        ("a+b", "", False, "a+b", True),
        ("*@partner.example", "", True, "Ops@Partner.Example", True),
        ("*@partner.example", "", True, "ops@partner.example.evil", False),
    ],
)
def test_glob(pattern: str, separator: str, fold: bool, value: str, expected: bool) -> None:
    assert compile_glob(pattern, separator=separator, fold=fold).matches(value) is expected


def test_a_pattern_without_a_star_is_a_plain_comparison() -> None:
    assert compile_glob("exact").regex is None
    assert compile_glob("ex*").regex is not None


@pytest.mark.parametrize("pattern", ["", "a***b"])
def test_refused_patterns(pattern: str) -> None:
    with pytest.raises(ValueError, match=r"empty|ambiguous"):
        compile_glob(pattern)
