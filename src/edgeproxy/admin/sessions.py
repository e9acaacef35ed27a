"""Console sessions (docs/api.md#console): a token signed in once becomes a server-side session
named by an HttpOnly cookie, with a CSRF token every state-changing request must echo in a header.

The session keeps the token's SHA-256, never the token, and the role is looked up again on every
request, so a token removed or changed by SIGHUP takes its sessions with it. Sessions live in the
admin node's memory: a restart signs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from edgeproxy.domain.errors import Forbidden, Unauthorized

COOKIE = "edgeproxy-console"
# Over TLS the cookie is Secure and takes the `__Host-` prefix: no Domain, Path=/, Secure.
SECURE_COOKIE = "__Host-edgeproxy-console"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_SESSIONS = 1000  # per admin node; the least recently used goes first past it
MAX_AGE = 12 * 3600.0  # seconds: a session ends this long after sign-in, however busy


@dataclass
class ConsoleSession:
    id: str
    digest: str
    csrf: str
    created: float
    last_used: float


class SessionStore:
    """Sessions by id, ended by idle time, age, sign-out, or a full store (LRU)."""

    def __init__(self, idle_timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_timeout = idle_timeout
        self._clock = clock
        self._sessions: dict[str, ConsoleSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, digest: str) -> ConsoleSession:
        now = self._clock()
        for stale in [s.id for s in self._sessions.values() if not self._alive(s, now)]:
            del self._sessions[stale]
        while len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda s: s.last_used)
            del self._sessions[oldest.id]
        session = ConsoleSession(
            id=secrets.token_urlsafe(32),
            digest=digest,
            csrf=secrets.token_urlsafe(32),
            created=now,
            last_used=now,
        )
        self._sessions[session.id] = session
        return session

    def use(self, session_id: str, method: str, csrf: str | None) -> ConsoleSession:
        """The live session a request's cookie names, touched; a state-changing method must
        carry the session's CSRF token (403 otherwise, and the session stays)."""
        now = self._clock()
        session = self._sessions.get(session_id)
        if session is None or not self._alive(session, now):
            self._sessions.pop(session_id, None)
            raise Unauthorized("session-expired", "the console session has ended; sign in again")
        if method not in SAFE_METHODS:
            if not csrf:
                raise Forbidden("csrf-token-missing", f"send the session's {CSRF_HEADER} header")
            if not hmac.compare_digest(csrf.encode(errors="surrogatepass"), session.csrf.encode()):
                raise Forbidden("csrf-token-invalid", f"the {CSRF_HEADER} header does not match")
        session.last_used = now
        return session

    def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def _alive(self, session: ConsoleSession, now: float) -> bool:
        return now - session.last_used <= self.idle_timeout and now - session.created <= MAX_AGE
