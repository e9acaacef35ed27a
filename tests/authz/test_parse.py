"""The authorization object's strict parsing: both spellings, and every refusal naming its path."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from edgeproxy.authz.parse import MAX_RULES, PolicyError, parse_policy

JSON_DOC: dict[str, Any] = {
    "mode": "report",
    "default": "allow",
    "rules": [
        {
            "name": "partners",
            "pathPrefix": "/api/",
            "methods": ["POST", "GET"],
            "requireCertificate": True,
            "allow": [
                {"sanUri": "spiffe://example.org/ns/*"},
                {"subject": {"CN": "a", "O": "B*"}},
                {"issuer": "CN=Partner CA,O=Example"},
                {"fingerprintSha256": "AB" * 32},
            ],
            "deny": [{"sanDns": "*.evil.example"}, {"anyVerified": True}],
        },
        {"pathPrefix": "/", "allow": [{"spkiSha256": "cd" * 32}, {"sanEmail": "x@y.example"}]},
    ],
}

TOML_DOC = """
mode = "report"
default = "allow"

[[rules]]
name = "partners"
path_prefix = "/api/"
methods = ["POST", "GET"]
require_certificate = true
allow = [
  { san_uri = "spiffe://example.org/ns/*" },
  { subject = { CN = "a", O = "B*" } },
  { issuer = "CN=Partner CA,O=Example" },
  { fingerprint_sha256 = "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB" },
]
deny = [{ san_dns = "*.evil.example" }, { any_verified = true }]

[[rules]]
path_prefix = "/"
allow = [
  { spki_sha256 = "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd" },
  { san_email = "x@y.example" },
]
"""


def test_both_spellings_give_one_policy() -> None:
    from_json = parse_policy(JSON_DOC)
    from_toml = parse_policy(tomllib.loads(TOML_DOC), style="toml")
    assert from_json == from_toml
    assert hash(from_json) == hash(from_toml)
    assert from_json.document == from_toml.document
    rule = from_json.document["rules"][0]  # type: ignore[index]
    assert rule["methods"] == ["GET", "POST"]
    assert rule["allow"][3] == {"fingerprintSha256": "ab" * 32}  # normalised
    # The canonical document parses back to the same policy.
    assert parse_policy(from_json.document) == from_json


def test_defaults() -> None:
    policy = parse_policy({})
    assert (policy.mode, policy.default, policy.rules) == ("enforce", "deny", ())


def _rule(**fields: Any) -> dict[str, Any]:
    return {"rules": [{"pathPrefix": "/", **fields}]}


BAD: list[tuple[str, Any, str]] = [
    ("not an object", [], "authorization: must be an object, not an array"),
    ("unknown key", {"rule": []}, "authorization.rule: unknown key (known: default, mode, rules)"),
    ("mode", {"mode": "audit"}, 'authorization.mode: must be "enforce" or "report", not \'audit\''),
    ("default", {"default": True}, 'authorization.default: must be "allow" or "deny", not True'),
    ("rules type", {"rules": {}}, "authorization.rules: must be an array, not an object"),
    (
        "too many rules",
        {"rules": [{"pathPrefix": f"/{i}/"} for i in range(MAX_RULES + 1)]},
        f"authorization.rules: must have at most {MAX_RULES} entries",
    ),
    ("no prefix", {"rules": [{}]}, "authorization.rules[0].pathPrefix: is required"),
    (
        "relative prefix",
        {"rules": [{"pathPrefix": "api/"}]},
        "authorization.rules[0].pathPrefix: must start with / and hold only visible ASCII "
        "characters",
    ),
    (
        "dot segment prefix",
        {"rules": [{"pathPrefix": "/a/../b"}]},
        "authorization.rules[0].pathPrefix: must not hold dot segments, a backslash, escaped "
        "slashes or a stray %",
    ),
    (
        "prefix not normal",
        {"rules": [{"pathPrefix": "/%61pi//"}]},
        "authorization.rules[0].pathPrefix: write it in its normal form, '/api/'",
    ),
    (
        "query in prefix",
        {"rules": [{"pathPrefix": "/a?b"}]},
        "authorization.rules[0].pathPrefix: is a path: no query (?) or fragment (#)",
    ),
    (
        "lower-case method",
        _rule(methods=["get"]),
        "authorization.rules[0].methods[0]: must be an upper-case method name, not 'get'",
    ),
    (
        "empty methods",
        _rule(methods=[]),
        "authorization.rules[0].methods: must list at least one method (leave it out for every "
        "method)",
    ),
    (
        "method twice",
        _rule(methods=["GET", "GET"]),
        "authorization.rules[0].methods: lists a method twice",
    ),
    (
        "requireCertificate type",
        _rule(requireCertificate="yes"),
        "authorization.rules[0].requireCertificate: must be true or false, not a string",
    ),
    (
        "empty allow",
        _rule(allow=[]),
        "authorization.rules[0].allow: must list at least one matcher (leave it out to allow "
        "anyone)",
    ),
    (
        "two keys in a matcher",
        _rule(allow=[{"sanDns": "a", "sanUri": "b"}]),
        "authorization.rules[0].allow[0]: must have exactly one key, one of subject, sanDns, "
        "sanUri, sanEmail, issuer, fingerprintSha256, spkiSha256, anyVerified",
    ),
    (
        "unknown matcher",
        _rule(deny=[{"cn": "a"}]),
        "authorization.rules[0].deny[0].cn: unknown key (known: anyVerified, fingerprintSha256, "
        "issuer, sanDns, sanEmail, sanUri, spkiSha256, subject)",
    ),
    (
        "empty pattern",
        _rule(allow=[{"sanUri": ""}]),
        "authorization.rules[0].allow[0].sanUri: must not be empty",
    ),
    (
        "ambiguous glob",
        _rule(allow=[{"sanDns": "***.a"}]),
        "authorization.rules[0].allow[0].sanDns: '***' is ambiguous: use '*' within a part or "
        "'**' across parts",
    ),
    (
        "unknown subject attribute",
        _rule(allow=[{"subject": {"XX": "a"}}]),
        "authorization.rules[0].allow[0].subject.XX: unknown attribute (one of CN, O, OU, C, ST, "
        "L, STREET, DC, UID, serialNumber, emailAddress, title, organizationIdentifier, or a "
        "dotted OID)",
    ),
    (
        "attribute listed twice",
        _rule(allow=[{"subject": {"CN": "a", "2.5.4.3": "b"}}]),
        "authorization.rules[0].allow[0].subject.2.5.4.3: names an attribute already listed",
    ),
    (
        "empty subject",
        _rule(allow=[{"subject": {}}]),
        "authorization.rules[0].allow[0].subject: must be an object of attribute → pattern, e.g. "
        '{CN = "..."}',
    ),
    (
        "issuer not a DN",
        _rule(allow=[{"issuer": "cn=a, o=b"}]),
        "authorization.rules[0].allow[0].issuer: must be an RFC 4514 distinguished name, e.g. "
        '"CN=Partner CA,O=Example"',
    ),
    (
        "short fingerprint",
        _rule(allow=[{"fingerprintSha256": "ab" * 31}]),
        "authorization.rules[0].allow[0].fingerprintSha256: must be a SHA-256 fingerprint: 64 hex "
        "digits (colons allowed)",
    ),
    (
        "bad pin",
        _rule(allow=[{"spkiSha256": "sha256//AAAA"}]),
        "authorization.rules[0].allow[0].spkiSha256: must be a SHA-256 digest: 64 hex digits, or "
        "44 characters of base64",
    ),
    (
        "anyVerified false",
        _rule(allow=[{"anyVerified": False}]),
        "authorization.rules[0].allow[0].anyVerified: must be true (leave the matcher out "
        "otherwise)",
    ),
    (
        "bad rule name",
        _rule(name="a b"),
        "authorization.rules[0].name: must be 1-64 characters of A-Z a-z 0-9 _ . - (a metric "
        "label)",
    ),
    (
        "label taken",
        {"rules": [{"pathPrefix": "/a/"}, {"pathPrefix": "/b/", "name": "0"}]},
        "authorization.rules[1].name: '0' is also the label of authorization.rules[0]",
    ),
    (
        "unreachable rule",
        {"rules": [{"pathPrefix": "/"}, {"pathPrefix": "/admin/", "methods": ["GET"]}]},
        "authorization.rules[1]: unreachable: authorization.rules[0] (pathPrefix '/') matches "
        "every request it would; put the more specific rule first",
    ),
]


@pytest.mark.parametrize(("name", "doc", "message"), BAD, ids=[b[0] for b in BAD])
def test_refusals_name_the_value_at_fault(name: str, doc: Any, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(doc)
    assert str(caught.value) == message


def test_a_narrower_method_list_first_is_reachable() -> None:
    rules = [{"pathPrefix": "/a/", "methods": ["GET"]}, {"pathPrefix": "/a/"}]
    assert len(parse_policy({"rules": rules}).rules) == 2


def test_toml_errors_use_toml_keys() -> None:
    doc = tomllib.loads('[[rules]]\npath_prefix = "/"\nallow = [{ san_uri = 3 }]\n')
    with pytest.raises(PolicyError) as caught:
        parse_policy(
            doc, path="edge.certificates[0].mutual_authentication.authorization", style="toml"
        )
    assert caught.value.path == (
        "edge.certificates[0].mutual_authentication.authorization.rules[0].allow[0].san_uri"
    )
    assert caught.value.detail == "must be a string, not a number"
    with pytest.raises(PolicyError, match=r"rules\[0\]\.pathPrefix: unknown key"):
        parse_policy({"rules": [{"pathPrefix": "/"}]}, style="toml")
