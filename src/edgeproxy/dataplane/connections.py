"""The edge's open client connections: counted, judged again when trust changes, retired by age.

A handshake verifies the client once. When the node swaps in a new trust state (an activation, a
forced deactivation, a CRL that names the client) or the OCSP cache learns that a client is
revoked, every open connection whose verified chain was judged under other anchors is judged
again (tls/recheck.py), off the hot path: one batch after the swap, verified on the background
thread (runtime/background.py); the keep-alive path pays nothing. A connection no longer trusted
serves its in-flight response with `Connection: close` and no further request (a WebSocket tunnel
closes at once); one still trusted is never touched. `edge.limits.max_connection_age` retires
every connection, trusted or not, as a second line. Each such close is logged and counted
(`edgeproxy_connections_closed_total{edge_certificate,reason}`).

When a burst of connections has closed (the open count fell `TRIM_AFTER_DROP` below its peak),
the heap's free pages go back to the operating system (runtime/heap.py), off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from time import perf_counter
from typing import Final

from edgeproxy.authz.policy import Policy
from edgeproxy.config.model import EdgeLimits
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.tls_transport import TlsServerProtocol
from edgeproxy.runtime.background import run_in_background
from edgeproxy.runtime.heap import BurstTrim, trim_available, trim_heap
from edgeproxy.runtime.tasks import TaskGroup, every
from edgeproxy.tls.recheck import judge_chain
from edgeproxy.tls.session import TlsSession, VerifyResult
from edgeproxy.tls.trust import TrustAnchors, TrustState

log = logging.getLogger(__name__)
AGE_CHECKS_PER_LIMIT: Final = 8  # max_connection_age is enforced to within an eighth of itself
MAX_AGE_CHECK_INTERVAL: Final = 30.0  # seconds
TRIM_AFTER_DROP: Final = 512  # connections closed since the peak before the heap is trimmed
TRIM_CHECK_INTERVAL: Final = 5.0  # seconds


class WatchedTlsProtocol(TlsServerProtocol):
    """The listener's protocol: registers with the watch for as long as the socket is open."""

    # Slotted like its parent: a __dict__ per connection would cost more than the fields.
    __slots__ = ("authorization", "retired", "trusted_under", "watch")
    watch: ConnectionWatch

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.trusted_under: TrustAnchors | None = None
        # The authorization rules its requests are judged by (a reload may bring new ones).
        self.authorization: Policy | None = None
        self.retired = False  # told to close: not judged or counted again
        self.watch.opened(self)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.watch.closed(self)
        super().connection_lost(exc)

    def _on_established(self, session: TlsSession) -> None:
        # The anchors the chain was verified against; a re-check that keeps it updates them.
        self.trusted_under = session.anchors
        self.authorization = session.edge.mutual_authentication.authorization
        super()._on_established(session)
        self.watch.established(self, session)

    @property
    def session(self) -> TlsSession | None:
        """The handshake's outcome, once established."""
        return self._engine.session if self._app is not None else None

    @property
    def age(self) -> float:
        return perf_counter() - self._started

    @property
    def peer(self) -> tuple[str, int] | None:
        tcp = self._tcp
        peer = tcp.get_extra_info("peername") if tcp is not None else None
        return (str(peer[0]), int(peer[1])) if peer else None

    def authorization_changed(self, policy: Policy | None) -> None:
        """New rules for the binding: the HTTP protocol judges the next requests by them."""
        self.authorization = policy
        changed: Callable[[Policy | None], None] | None = getattr(
            self._app, "authorization_changed", None
        )
        if changed is not None:
            changed(policy)

    def retire(self) -> None:
        """Close after the in-flight response (the HTTP protocol's hook), or now."""
        self.retired = True
        app = self._app
        close_after_response: Callable[[], None] | None = getattr(app, "close_after_response", None)
        if close_after_response is not None:
            close_after_response()
        else:
            self._close()


class ConnectionWatch:
    """Every open connection of one listener (one worker)."""

    def __init__(
        self, metrics: Metrics, state: Callable[[], TrustState], limits: EdgeLimits
    ) -> None:
        self.metrics = metrics
        self._state = state
        self._limits = limits
        self._open: set[WatchedTlsProtocol] = set()
        self._tasks = TaskGroup()
        self._dirty = False  # a re-check is due (a swap, or a handshake finished on old trust)
        self._running: asyncio.Task[None] | None = None
        self._burst = BurstTrim(TRIM_AFTER_DROP)

    def __len__(self) -> int:
        return len(self._open)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        age = self._limits.max_connection_age
        interval = min(age / AGE_CHECKS_PER_LIMIT, MAX_AGE_CHECK_INTERVAL)
        self._tasks.spawn(every(interval, self._retire_old, "connection age check"), "max-age")
        if trim_available():
            self._tasks.spawn(every(TRIM_CHECK_INTERVAL, self._trim, "heap trim"), "heap-trim")

    async def close(self) -> None:
        await self._tasks.close()

    # -- called by the protocols ---------------------------------------------------------------

    def opened(self, protocol: WatchedTlsProtocol) -> None:
        self.metrics.connection_opened()
        self._open.add(protocol)
        self._burst.opened(len(self._open))

    def closed(self, protocol: WatchedTlsProtocol) -> None:
        if protocol in self._open:
            self._open.discard(protocol)
            self.metrics.connection_closed()

    def established(self, protocol: WatchedTlsProtocol, session: TlsSession) -> None:
        """A handshake that began before a swap finished under the older anchors: judged too."""
        if session.verify_result is not VerifyResult.SUCCESS:
            return
        prepared = self._state().edges.get(session.edge.name)
        if prepared is None or prepared.anchors is not session.anchors:
            self._schedule()

    # -- trust changes -------------------------------------------------------------------------

    def trust_changed(self, state: TrustState, previous: TrustState | None) -> None:
        """TrustSync's swap listener: judge every open connection against `state` (batched),
        and hand new authorization rules to the connections of the bindings they changed."""
        if previous is not None:
            self._schedule()
            self._rules_changed(state)

    def _rules_changed(self, state: TrustState) -> None:
        """Rules are judged per request: a connection takes a binding's new rules for its next
        request, whoever the client is (no re-verification, nothing closed)."""
        for protocol in self._open:
            session = protocol.session
            prepared = state.edges.get(session.edge.name) if session is not None else None
            if prepared is None or protocol.retired:
                continue
            policy = prepared.edge.mutual_authentication.authorization
            if policy is not protocol.authorization and policy != protocol.authorization:
                protocol.authorization_changed(policy)

    def revoked(self, edge_name: str, is_revoked: Callable[[TlsSession], bool]) -> None:
        """The OCSP cache learned a revocation: retire the edge's connections it names."""
        for protocol in list(self._open):
            session = protocol.session
            if (
                session is not None
                and not protocol.retired
                and session.edge.name == edge_name
                and session.verify_result is VerifyResult.SUCCESS
                and is_revoked(session)
            ):
                self._retire(protocol, session, "revoked")

    def _schedule(self) -> None:
        self._dirty = True
        if self._running is None or self._running.done():
            self._running = self._tasks.spawn(self._recheck_until_clean(), "trust-recheck")

    async def _recheck_until_clean(self) -> None:
        # Bounded by how often trust changes: each round clears the flag before it awaits.
        while self._dirty:
            self._dirty = False
            await self._recheck(self._state())

    async def _recheck(self, state: TrustState) -> None:
        due: list[tuple[WatchedTlsProtocol, TlsSession, TrustAnchors | None]] = []
        for protocol in self._open:
            session = protocol.session
            if session is None or session.verify_result is not VerifyResult.SUCCESS:
                continue  # still handshaking (established() catches it), or never trusted
            if protocol.retired:
                continue
            prepared = state.edges.get(session.edge.name)
            if prepared is None:
                due.append((protocol, session, None))
            elif prepared.anchors is not protocol.trusted_under:
                due.append((protocol, session, prepared.anchors))
        if not due:
            return
        gone = [(p, s) for p, s, a in due if state.edges.get(s.edge.name) is None]
        for protocol, session in gone:
            self._retire(protocol, session, "edge_removed")
        judged = [(p, s, a) for p, s, a in due if state.edges.get(s.edge.name) is not None]
        chains = [(s.peer_chain_der, a, p.trusted_under) for p, s, a in judged]
        verdicts = await run_in_background(partial(_judge_all, chains))
        for (protocol, session, anchors), reason in zip(judged, verdicts, strict=True):
            if protocol not in self._open or protocol.retired:
                continue  # closed or retired meanwhile
            if reason is None:
                protocol.trusted_under = anchors
            else:
                self._retire(protocol, session, reason)

    # -- memory --------------------------------------------------------------------------------

    async def _trim(self) -> None:
        if self._burst.due(len(self._open)):
            released = await asyncio.get_running_loop().run_in_executor(None, trim_heap)
            log.debug(
                "heap trimmed after a burst of closed connections", extra={"released": released}
            )

    # -- maximum age ---------------------------------------------------------------------------

    async def _retire_old(self) -> None:
        limit = self._limits.max_connection_age
        for protocol in [p for p in self._open if not p.retired and p.age >= limit]:
            session = protocol.session
            if session is not None:
                self._retire(protocol, session, "max_age")

    def _retire(self, protocol: WatchedTlsProtocol, session: TlsSession, reason: str) -> None:
        protocol.retire()
        self.metrics.connection_retired(session.edge.name, reason)
        peer = protocol.peer
        log.info(
            "closing a connection after its in-flight response",
            extra={
                "edge_certificate": session.edge.name,
                "reason": reason,
                "client_address": peer[0] if peer else None,
                "client_port": peer[1] if peer else None,
                "ca_set": session.ca_set,
                "ca_set_version": session.ca_set_version,
            },
        )


Judged = tuple[tuple[bytes, ...], TrustAnchors | None, TrustAnchors | None]


def _judge_all(chains: list[Judged]) -> list[str | None]:
    """On the background thread: one verdict per (chain sent, new anchors, anchors trusted under);
    None: still trusted."""
    out: list[str | None] = []
    for chain, anchors, before in chains:
        reason = judge_chain(chain, anchors, before)
        out.append(None if reason is None else reason.value)
    return out
