"""Compiled authorization policies and their evaluation (docs/dataplane.md "Authorization").

A `Policy` is built once per reload (parse.py) and is immutable; every pattern in it is already
compiled. A connection pairs it with its client's `Peer` (read once per connection) in a
`PeerPolicy`, which judges each rule for that peer at most once; a request then costs the scan of
the rules' path prefixes and methods, bytes against bytes.

Semantics, in order: the first rule whose `pathPrefix` starts the request's path (and whose
`methods`, when given, include its method) decides; no rule: the policy's `default`. Within a
rule: `requireCertificate` and no verified certificate → denied with the certificate's own reason;
a `deny` matcher that matches → denied; an `allow` list given and none of it matches → denied;
else allowed. Under `mode = "report"` every denial is a `would_deny` and the request goes on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal

from edgeproxy.authz.globs import Glob
from edgeproxy.authz.peer import Peer

Mode = Literal["enforce", "report"]
Default = Literal["allow", "deny"]

POLICY_DENIED: Final = "policy_denied"  # the 403 problem's reason, and the access log's
INVALID_PATH: Final = "invalid_path"  # a path that cannot be matched unambiguously: 400
DEFAULT_RULE: Final = "default"  # the rule label of a request no rule matched


class Decision:
    """What one rule (or the default) decided for one client: a value shared by every request it
    decides. `decision` is the metric label (allow | deny | would_deny), `rule` the rule's label,
    `reason` why it denied (None when allowed), `forward` whether the request goes on."""

    __slots__ = ("decision", "encoded", "forward", "reason", "rule")

    def __init__(self, decision: str, rule: str, reason: str | None) -> None:
        self.decision = decision
        self.rule = rule
        self.reason = reason
        self.forward = decision != "deny"
        # The access log's encoding of these fields, made at first use: a sink's cache, not a
        # fact (one decision serves many requests).
        self.encoded: str | None = None

    def __repr__(self) -> str:
        return f"Decision({self.decision}, rule={self.rule}, reason={self.reason})"


# -- matchers (each a frozen value: policies compare by value) ----------------------------------


@dataclass(frozen=True, slots=True)
class SubjectMatcher:
    """Every listed subject attribute has a value matching its pattern (AND)."""

    attributes: tuple[tuple[str, Glob], ...]  # (dotted OID, pattern)

    def matches(self, peer: Peer) -> bool:
        subject = peer.subject
        return all(glob.any(subject.get(oid, ())) for oid, glob in self.attributes)


@dataclass(frozen=True, slots=True)
class AltNameMatcher:
    """A subject alternative name of one kind matches: `kind` is the `Peer` field holding them
    (`dns`, `uris` or `emails`)."""

    kind: Literal["dns", "uris", "emails"]
    glob: Glob

    def matches(self, peer: Peer) -> bool:
        return self.glob.any(getattr(peer, self.kind))


@dataclass(frozen=True, slots=True)
class IssuerMatcher:
    dn: str  # RFC 4514, as cryptography writes it

    def matches(self, peer: Peer) -> bool:
        return peer.issuer == self.dn


@dataclass(frozen=True, slots=True)
class FingerprintMatcher:
    sha256: bytes

    def matches(self, peer: Peer) -> bool:
        return peer.fingerprint_sha256 == self.sha256


@dataclass(frozen=True, slots=True)
class SpkiMatcher:
    sha256: bytes

    def matches(self, peer: Peer) -> bool:
        return peer.spki_sha256 == self.sha256


@dataclass(frozen=True, slots=True)
class AnyVerifiedMatcher:
    def matches(self, peer: Peer) -> bool:
        return True


Matcher = (
    SubjectMatcher
    | AltNameMatcher
    | IssuerMatcher
    | FingerprintMatcher
    | SpkiMatcher
    | AnyVerifiedMatcher
)


# -- rules and policies -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    label: str  # its name, or its index in the list
    prefix: bytes
    methods: frozenset[bytes] | None
    require_certificate: bool
    allow: tuple[Matcher, ...] | None  # None: anyone the deny list leaves
    deny: tuple[Matcher, ...]

    def applies(self, method: bytes, path: bytes) -> bool:
        return path.startswith(self.prefix) and (self.methods is None or method in self.methods)

    def admits(self, peer: Peer | None) -> bool:
        """Whether this rule lets `peer` (None: no verified certificate) through."""
        if peer is None:
            return self.allow is None and not self.require_certificate
        if any(m.matches(peer) for m in self.deny):
            return False
        return self.allow is None or any(m.matches(peer) for m in self.allow)


@dataclass(frozen=True, slots=True)
class Policy:
    """One binding's rules. `document`: the canonical JSON form (the API's and the store's)."""

    mode: Mode
    default: Default
    rules: tuple[Rule, ...]
    document: dict[str, object] = field(compare=False, hash=False, repr=False)
    fallback: Decision = field(init=False, compare=False, hash=False, repr=False)
    invalid: Decision = field(init=False, compare=False, hash=False, repr=False)
    # The rules a path may match, by its first segment (see `_candidates`).
    index: dict[bytes, Candidates] = field(init=False, compare=False, hash=False, repr=False)
    partial: Candidates = field(init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        allowed = self.default == "allow"
        fallback = self.decision(allowed, DEFAULT_RULE, POLICY_DENIED)
        object.__setattr__(self, "fallback", fallback)
        object.__setattr__(self, "invalid", self.decision(False, INVALID_PATH, INVALID_PATH))
        index, partial = _candidates(self.rules)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "partial", partial)

    def decision(self, allowed: bool, rule: str, reason: str) -> Decision:
        if allowed:
            return Decision("allow", rule, None)
        return Decision("would_deny" if self.mode == "report" else "deny", rule, reason)

    def for_peer(self, peer: Peer | None, certificate_reason: str | None) -> PeerPolicy:
        """This policy for one connection's client: `peer` None when no certificate verified,
        with `certificate_reason` saying why (no_certificate, unknown_ca, ...)."""
        return PeerPolicy(self, peer, certificate_reason or "no_certificate")


# (rule index, path prefix, methods) of the rules a request may match, in the rules' order; the
# prefix is None when it is the very segment the list is filed under (the lookup matched it).
Candidates = tuple[tuple[int, bytes | None, frozenset[bytes] | None], ...]


def _candidates(rules: tuple[Rule, ...]) -> tuple[dict[bytes, Candidates], Candidates]:
    """Which rules a path can match, by the path's first segment: a request scans a few rules,
    not all of them.

    A prefix that holds a whole first segment (`/api/` of `/api/v1/`) only matches paths that
    start with that segment, so it is filed under it. One that does not (`/`, `/health`) may
    match any path: it is a candidate everywhere. Each list keeps the rules' order.
    """
    whole: dict[bytes, list[int]] = {}
    partial: list[int] = []
    for i, rule in enumerate(rules):
        cut = rule.prefix.find(b"/", 1)
        if cut > 0:
            whole.setdefault(rule.prefix[: cut + 1], []).append(i)
        else:
            partial.append(i)

    def entries(segment: bytes, indexes: list[int]) -> Candidates:
        return tuple(
            (i, None if rules[i].prefix == segment else rules[i].prefix, rules[i].methods)
            for i in sorted(indexes)
        )

    index = {seg: entries(seg, ids + partial) for seg, ids in whole.items()}
    return index, entries(b"", partial)


class PeerPolicy:
    """A policy paired with one client: each rule judged once, on first use."""

    __slots__ = ("_reason", "_verdicts", "peer", "policy")

    def __init__(self, policy: Policy, peer: Peer | None, certificate_reason: str) -> None:
        self.policy = policy
        self.peer = peer
        self._reason = certificate_reason
        self._verdicts: list[Decision | None] = [None] * len(policy.rules)

    def decide(self, method: bytes, target: bytes) -> Decision:
        """The decision for one request (its method and request-target, origin-form)."""
        policy = self.policy
        path = request_path(target)
        if path is None:
            return policy.invalid
        cut = path.find(b"/", 1)
        candidates = (
            policy.index.get(path[: cut + 1], policy.partial) if cut > 0 else policy.partial
        )
        for index, prefix, methods in candidates:
            if (prefix is None or path.startswith(prefix)) and (
                methods is None or method in methods
            ):
                verdict = self._verdicts[index]
                if verdict is None:
                    verdict = self._verdicts[index] = self._judge(policy.rules[index])
                return verdict
        return policy.fallback

    def _judge(self, rule: Rule) -> Decision:
        peer = self.peer
        if peer is None and rule.require_certificate:
            return self.policy.decision(False, rule.label, self._reason)
        return self.policy.decision(rule.admits(peer), rule.label, POLICY_DENIED)


# -- the request path, as the rules see it ------------------------------------------------------

_UNRESERVED: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)
_ESCAPE: Final = re.compile(rb"%([0-9A-Fa-f]{2})")
_SLASHES: Final = re.compile(rb"//+")
# What a path needs undone or refused (`%`, `\\`, `//`, `/.`), found in one C call: a `b"%" in path`
# test costs CPython an exception it raises and clears (it first tries the needle as an int),
# and four of them were most of a decision's time.
_TO_UNDO: Final = re.compile(rb"[%\\]|/[/.]")


def _unescape(match: re.Match[bytes]) -> bytes:
    byte = int(match.group(1), 16)
    if byte in _UNRESERVED:
        return bytes((byte,))
    return b"%" + match.group(1).upper()


def request_path(target: bytes) -> bytes | None:
    """The path a request-target names, in the form the rules' prefixes are written in; None
    when it cannot be matched without guessing how the origin reads it.

    RFC 3986 §6.2.2 equivalences are undone, so `/%61dmin/` is `/admin/`: percent-encoded
    unreserved characters decoded, other escapes upper-cased. Repeated slashes count as one
    (many origins merge them). Refused (None): a dot segment (`.`, `..`: clients resolve them
    before sending; a request that still has one is probing), an escaped `/` or `\\`, a raw `\\`,
    and a `%` that starts no escape. The request goes to the origin as the client wrote it.
    """
    query = target.find(b"?")
    path = target if query < 0 else target[:query]
    if _TO_UNDO.search(path) is None:
        return path  # the common case: nothing to undo
    if b"\\" in path:
        return None
    if b"%" in path:
        if path.count(b"%") != len(_ESCAPE.findall(path)):
            return None  # a % that starts no escape
        path = _ESCAPE.sub(_unescape, path)
        if b"%2F" in path or b"%5C" in path:
            return None
    path = _SLASHES.sub(b"/", path)
    segments = path.split(b"/")
    if b"." in segments or b".." in segments:
        return None
    return path
