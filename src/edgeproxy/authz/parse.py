"""The `authorization` object, parsed strictly into a compiled `Policy` (docs/api.md,
docs/configuration.md).

One parser serves the admin API's JSON (camelCase keys) and the node's TOML (snake_case keys):
`style` picks the spelling, and every error names the dotted path of the value at fault, in that
spelling (`authorization.rules[2].allow[0].sanUri: ...`). Unknown keys, wrong types, empty
patterns, unreachable rules and values past the limits are all errors; nothing is guessed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any, Final, Literal, NoReturn, cast

from cryptography import x509
from cryptography.x509.oid import NameOID

from edgeproxy.authz.globs import Glob, compile_glob
from edgeproxy.authz.policy import (
    AltNameMatcher,
    AnyVerifiedMatcher,
    Default,
    FingerprintMatcher,
    IssuerMatcher,
    Matcher,
    Mode,
    Policy,
    Rule,
    SpkiMatcher,
    SubjectMatcher,
    request_path,
)

Style = Literal["json", "toml"]

MAX_RULES: Final = 100
MAX_MATCHERS: Final = 64  # per allow or deny list
MAX_METHODS: Final = 16
MAX_TEXT: Final = 1024  # characters in a pattern, a DN or a path prefix
_METHOD = re.compile(r"[A-Z][A-Z0-9_-]{0,31}")
_RULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")
_PREFIX_CHARS = re.compile(r"/[\x21-\x7e]*")
_HEX = re.compile(r"[0-9a-fA-F]{64}")

# Subject attribute names a matcher may use (any other attribute: its dotted OID).
SUBJECT_ATTRIBUTES: Final[Mapping[str, str]] = {
    "CN": NameOID.COMMON_NAME.dotted_string,
    "O": NameOID.ORGANIZATION_NAME.dotted_string,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME.dotted_string,
    "C": NameOID.COUNTRY_NAME.dotted_string,
    "ST": NameOID.STATE_OR_PROVINCE_NAME.dotted_string,
    "L": NameOID.LOCALITY_NAME.dotted_string,
    "STREET": NameOID.STREET_ADDRESS.dotted_string,
    "DC": NameOID.DOMAIN_COMPONENT.dotted_string,
    "UID": NameOID.USER_ID.dotted_string,
    "serialNumber": NameOID.SERIAL_NUMBER.dotted_string,
    "emailAddress": NameOID.EMAIL_ADDRESS.dotted_string,
    "title": NameOID.TITLE.dotted_string,
    "organizationIdentifier": NameOID.ORGANIZATION_IDENTIFIER.dotted_string,
}

# Every key, JSON spelling → TOML spelling.
_TOML: Final = {
    "pathPrefix": "path_prefix",
    "requireCertificate": "require_certificate",
    "sanDns": "san_dns",
    "sanUri": "san_uri",
    "sanEmail": "san_email",
    "fingerprintSha256": "fingerprint_sha256",
    "spkiSha256": "spki_sha256",
    "anyVerified": "any_verified",
}
MATCHER_KEYS: Final = (
    "subject",
    "sanDns",
    "sanUri",
    "sanEmail",
    "issuer",
    "fingerprintSha256",
    "spkiSha256",
    "anyVerified",
)


def policy_json(policy: Policy | None) -> str | None:
    """The policy's canonical document as compact JSON text: how a store-managed binding keeps
    it (the domain holds no compiled policy)."""
    if policy is None:
        return None
    return json.dumps(policy.document, separators=(",", ":"), sort_keys=True)


def policy_from_json(text: str | None) -> Policy | None:
    """The policy a stored document gives (compiled here, once per trust change)."""
    return None if text is None else parse_policy(json.loads(text))


def json_pointer(path: str) -> str:
    """An error's dotted path as a JSON pointer into the request body:
    `authorization.rules[2].allow[0].sanUri` → `/authorization/rules/2/allow/0/sanUri`."""
    parts = re.split(r"\.|\[(\d+)\]", path)
    return "/" + "/".join(p for p in parts if p)


class PolicyError(ValueError):
    """A bad authorization object: `path` is the dotted path of the value at fault."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.detail = message


def _fail(path: str, message: str) -> NoReturn:
    raise PolicyError(path, message)


def _kind(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    names |= {list: "an array", dict: "an object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


class _Reader:
    """Walks the document in one spelling, naming paths as it goes."""

    def __init__(self, style: Style) -> None:
        self.style = style

    def key(self, name: str) -> str:
        return _TOML.get(name, name) if self.style == "toml" else name

    def obj(self, value: object, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            _fail(path, f"must be an object, not {_kind(value)}")
        spelled = {self.key(k): k for k in allowed}
        for name in value:
            if name not in spelled:
                known = ", ".join(sorted(spelled))
                _fail(f"{path}.{name}", f"unknown key (known: {known})")
        return {spelled[k]: v for k, v in value.items()}

    def text(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            _fail(path, f"must be a string, not {_kind(value)}")
        if not value:
            _fail(path, "must not be empty")
        if len(value) > MAX_TEXT:
            _fail(path, f"must be at most {MAX_TEXT} characters")
        return value

    def array(self, value: object, path: str, limit: int) -> list[Any]:
        if not isinstance(value, list):
            _fail(path, f"must be an array, not {_kind(value)}")
        if len(value) > limit:
            _fail(path, f"must have at most {limit} entries")
        return value

    def flag(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            _fail(path, f"must be true or false, not {_kind(value)}")
        return value

    def choice(self, value: object, path: str, options: tuple[str, ...]) -> str:
        if value not in options:
            shown = " or ".join(f'"{o}"' for o in options)
            _fail(path, f"must be {shown}, not {value!r}")
        return value


def parse_policy(data: object, *, path: str = "authorization", style: Style = "json") -> Policy:
    """The compiled policy; raises PolicyError naming the first bad value."""
    r = _Reader(style)
    doc = r.obj(data, path, ("mode", "default", "rules"))
    mode = r.choice(doc.get("mode", "enforce"), f"{path}.mode", ("enforce", "report"))
    default = r.choice(doc.get("default", "deny"), f"{path}.default", ("allow", "deny"))
    rules_at = f"{path}.{r.key('rules')}"
    raw_rules = r.array(doc.get("rules", []), rules_at, MAX_RULES)
    rules: list[Rule] = []
    documents: list[dict[str, object]] = []
    labels: dict[str, str] = {}
    for i, raw in enumerate(raw_rules):
        at = f"{rules_at}[{i}]"
        rule, rule_doc = _rule(r, raw, at, i)
        if rule.label in labels:
            _fail(f"{at}.name", f"{rule.label!r} is also the label of {labels[rule.label]}")
        labels[rule.label] = at
        for j, earlier in enumerate(rules):
            if rule.prefix.startswith(earlier.prefix) and (
                earlier.methods is None
                or (rule.methods is not None and rule.methods <= earlier.methods)
            ):
                _fail(
                    at,
                    f"unreachable: {rules_at}[{j}] (pathPrefix {earlier.prefix.decode()!r}) "
                    "matches every request it would; put the more specific rule first",
                )
        rules.append(rule)
        documents.append(rule_doc)
    document: dict[str, object] = {"mode": mode, "default": default, "rules": documents}
    return Policy(cast(Mode, mode), cast(Default, default), tuple(rules), document)


def _rule(r: _Reader, raw: object, at: str, index: int) -> tuple[Rule, dict[str, object]]:
    keys = ("name", "pathPrefix", "methods", "requireCertificate", "allow", "deny")
    doc = r.obj(raw, at, keys)
    out: dict[str, object] = {}
    label = str(index)
    if "name" in doc:
        label = r.text(doc["name"], f"{at}.name")
        if not _RULE_NAME.fullmatch(label):
            _fail(f"{at}.name", "must be 1-64 characters of A-Z a-z 0-9 _ . - (a metric label)")
        out["name"] = label
    prefix_at = f"{at}.{r.key('pathPrefix')}"
    if "pathPrefix" not in doc:
        _fail(prefix_at, "is required")
    prefix = _prefix(r.text(doc["pathPrefix"], prefix_at), prefix_at)
    out["pathPrefix"] = prefix
    methods: frozenset[bytes] | None = None
    if "methods" in doc:
        methods_at = f"{at}.methods"
        names = r.array(doc["methods"], methods_at, MAX_METHODS)
        if not names:
            _fail(methods_at, "must list at least one method (leave it out for every method)")
        for k, name in enumerate(names):
            if not isinstance(name, str) or not _METHOD.fullmatch(name):
                _fail(f"{methods_at}[{k}]", f"must be an upper-case method name, not {name!r}")
        if len(set(names)) != len(names):
            _fail(methods_at, "lists a method twice")
        methods = frozenset(n.encode("ascii") for n in names)
        out["methods"] = sorted(names)
    require = False
    if "requireCertificate" in doc:
        require = r.flag(doc["requireCertificate"], f"{at}.{r.key('requireCertificate')}")
        out["requireCertificate"] = require
    allow: tuple[Matcher, ...] | None = None
    if "allow" in doc:
        allow, out["allow"] = _matchers(r, doc["allow"], f"{at}.allow")
        if not allow:
            _fail(f"{at}.allow", "must list at least one matcher (leave it out to allow anyone)")
    deny: tuple[Matcher, ...] = ()
    if "deny" in doc:
        deny, out["deny"] = _matchers(r, doc["deny"], f"{at}.deny")
    rule = Rule(label, prefix.encode("ascii"), methods, require, allow, deny)
    return rule, out


def _prefix(value: str, at: str) -> str:
    if not _PREFIX_CHARS.fullmatch(value):
        _fail(at, "must start with / and hold only visible ASCII characters")
    if "?" in value or "#" in value:
        _fail(at, "is a path: no query (?) or fragment (#)")
    normal = request_path(value.encode("ascii"))
    if normal is None:
        _fail(at, "must not hold dot segments, a backslash, escaped slashes or a stray %")
    if normal != value.encode("ascii"):
        _fail(at, f"write it in its normal form, {normal.decode('ascii')!r}")
    return value


def _matchers(
    r: _Reader, value: object, at: str
) -> tuple[tuple[Matcher, ...], list[dict[str, object]]]:
    items = r.array(value, at, MAX_MATCHERS)
    matchers: list[Matcher] = []
    documents: list[dict[str, object]] = []
    for i, item in enumerate(items):
        matcher, document = _matcher(r, item, f"{at}[{i}]")
        matchers.append(matcher)
        documents.append(document)
    return tuple(matchers), documents


def _matcher(r: _Reader, value: object, at: str) -> tuple[Matcher, dict[str, object]]:
    doc = r.obj(value, at, MATCHER_KEYS)
    if len(doc) != 1:
        shown = ", ".join(r.key(k) for k in MATCHER_KEYS)
        _fail(at, f"must have exactly one key, one of {shown}")
    ((kind, raw),) = doc.items()
    key_at = f"{at}.{r.key(kind)}"
    if kind == "subject":
        return _subject(r, raw, key_at)
    if kind == "anyVerified":
        if raw is not True:
            _fail(key_at, "must be true (leave the matcher out otherwise)")
        return AnyVerifiedMatcher(), {kind: True}
    text = r.text(raw, key_at)
    matcher: Matcher
    if kind == "sanDns":
        matcher = AltNameMatcher("dns", _glob(text, key_at, separator=".", fold=True))
    elif kind == "sanUri":
        matcher = AltNameMatcher("uris", _glob(text, key_at, separator="/"))
    elif kind == "sanEmail":
        matcher = AltNameMatcher("emails", _glob(text, key_at, fold=True))
    elif kind == "issuer":
        matcher = IssuerMatcher(_dn(text, key_at))
        text = matcher.dn
    elif kind == "fingerprintSha256":
        matcher = FingerprintMatcher(_digest(text, key_at, pin=False))
        text = matcher.sha256.hex()
    else:
        matcher = SpkiMatcher(_digest(text, key_at, pin=True))
        text = matcher.sha256.hex()
    return matcher, {kind: text}


def _subject(r: _Reader, raw: object, at: str) -> tuple[Matcher, dict[str, object]]:
    if not isinstance(raw, dict) or not raw:
        _fail(at, 'must be an object of attribute → pattern, e.g. {CN = "..."}')
    attributes: list[tuple[str, Glob]] = []
    document: dict[str, str] = {}
    for name, pattern in raw.items():
        name_at = f"{at}.{name}"
        oid = SUBJECT_ATTRIBUTES.get(name) or (name if _OID.fullmatch(name) else None)
        if oid is None:
            known = ", ".join(SUBJECT_ATTRIBUTES)
            _fail(name_at, f"unknown attribute (one of {known}, or a dotted OID)")
        if any(oid == seen for seen, _ in attributes):
            _fail(name_at, "names an attribute already listed")
        attributes.append((oid, _glob(r.text(pattern, name_at), name_at)))
        document[name] = pattern
    return SubjectMatcher(tuple(attributes)), {"subject": document}


def _glob(text: str, at: str, *, separator: str = "", fold: bool = False) -> Glob:
    try:
        return compile_glob(text, separator=separator, fold=fold)
    except ValueError as exc:
        _fail(at, str(exc))


def _dn(text: str, at: str) -> str:
    try:
        name = x509.Name.from_rfc4514_string(text)
    except ValueError:
        name = None
    if name is None or not len(name):
        _fail(at, 'must be an RFC 4514 distinguished name, e.g. "CN=Partner CA,O=Example"')
    return name.rfc4514_string()


def _digest(text: str, at: str, *, pin: bool) -> bytes:
    """64 hex digits (colons allowed); for a key pin also base64 (curl's `sha256//...`)."""
    plain = text.replace(":", "")
    if _HEX.fullmatch(plain):
        return bytes.fromhex(plain)
    if pin:
        try:
            raw = base64.b64decode(text.removeprefix("sha256//"), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == 32:
            return raw
        _fail(at, "must be a SHA-256 digest: 64 hex digits, or 44 characters of base64")
    _fail(at, "must be a SHA-256 fingerprint: 64 hex digits (colons allowed)")
