"""Bearer-token authentication and role checks (docs/api.md): pure values, compared in constant
time."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from edgeproxy.config.model import TokenConfig
from edgeproxy.domain.errors import Forbidden, Unauthorized
from edgeproxy.domain.model import Role


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role


class TokenAuthenticator:
    def __init__(self, tokens: tuple[TokenConfig, ...]) -> None:
        self._tokens = tokens

    def replace(self, tokens: tuple[TokenConfig, ...]) -> None:
        """Token rotation (SIGHUP): one reference swapped; a request in flight keeps its check."""
        self._tokens = tokens

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal for an `Authorization: Bearer …` header; fails closed.

        Every way the header can be wrong ends in a 401 whose detail names what was wrong in
        general terms only: the value itself (a near-miss token, say) never reaches a response
        or a log line."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip(" \t")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("missing-token", "send Authorization: Bearer <token>")
        return self.principal(self.digest(token))

    def digest(self, token: str) -> str:
        """The SHA-256 (hex) of a well-formed token, as the config holds it; 401 otherwise."""
        if not _well_formed(token):
            raise Unauthorized("invalid-token", "the bearer token is not valid")
        return hashlib.sha256(token.encode()).hexdigest()

    def principal(self, digest: str) -> Principal:
        """Who a token's digest names among the tokens configured now (a console session is
        checked again on every request, so a token removed by SIGHUP ends its sessions)."""
        found: Principal | None = None
        # Compare against every token so timing does not reveal which one nearly matched.
        for entry in self._tokens:
            if hmac.compare_digest(digest, entry.token_sha256):
                found = Principal(entry.name, entry.role)
        if found is None:
            raise Unauthorized("invalid-token", "the bearer token is not valid")
        return found


def _well_formed(token: str) -> bool:
    """One run of printable characters. aiohttp hands undecodable bytes over as lone surrogates
    (which cannot be encoded back: a 500 once) and a field value may hold a tab; `isprintable`
    refuses both, and any control character a laxer parser would let through. Tokens are
    configured as the SHA-256 of their UTF-8, so printable non-ASCII text stays allowed."""
    return token.isprintable() and " " not in token


def require_role(principal: Principal, needed: Role) -> None:
    if not principal.role.allows(needed):
        raise Forbidden(
            "insufficient-role",
            f"this operation needs the {needed.value} role; token {principal.name!r} has "
            f"{principal.role.value}",
        )
