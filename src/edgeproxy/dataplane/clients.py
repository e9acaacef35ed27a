"""The clients this worker saw, per binding (docs/dataplane.md "Client records").

The hot path only touches a dict: a handshake looks its leaf up by SHA-256 (one hash of the leaf
DER), moves it to the recent end and adds one; a request adds one to its connection's client. The
chain is kept once, as the DER the client presented. Nothing is parsed or written here: a
background task (`ClientFlusher`) takes the changed records in batches, describes new leaves in a
thread, and writes them to the store, where every node's records of a leaf add up.

Bounded: at most `limit` clients per edge certificate; the least recently seen one goes first.

A "lost client" is one this worker accepted under an earlier version of a binding and that a newer
version refuses: counted (`edgeproxy_lost_clients_total`) and logged once per client and version,
so a bad activation shows within seconds. A refused handshake carries only the certificate
verification stopped at: the client is recognised when that is a leaf seen before, or an
issuer a seen client presented.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from edgeproxy.domain.clients import ACCEPTED
from edgeproxy.tls.session import CERTIFICATE_VERDICTS, Reason, TlsSession, VerifyResult

log = logging.getLogger(__name__)
MAX_ISSUERS: Final = 4096  # issuer fingerprint -> a leaf that presented it, per binding
NOT_LOST: Final = -1


class Seen:
    """One client of one binding: its chain, when it was seen, counts since the last batch."""

    __slots__ = (
        "accepted_version",
        "ca_set",
        "chain",
        "described",
        "dirty",
        "first_seen",
        "handshakes",
        "last_seen",
        "lost_version",
        "outcome",
        "requests",
    )

    def __init__(self, ca_set: str, chain: tuple[bytes, ...], now: float) -> None:
        self.ca_set = ca_set
        self.chain = chain
        self.first_seen = self.last_seen = now
        self.handshakes = 0
        self.requests = 0
        self.outcome = ACCEPTED
        self.accepted_version: int | None = None  # the last version that accepted it here
        self.lost_version = NOT_LOST  # the version (0: none) it was reported lost under
        self.dirty = False
        self.described: tuple[str, str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class LostClient:
    edge_certificate: str
    fingerprint: str
    reason: Reason
    accepted_version: int
    version: int | None


@dataclass(frozen=True)
class Batch:
    """One record's changes since the previous batch (the counts are deltas)."""

    edge_certificate: str
    fingerprint: str
    seen: Seen
    handshakes: int
    requests: int
    first_seen: float
    last_seen: float
    outcome: str


class _Binding:
    __slots__ = ("clients", "issuers")

    def __init__(self) -> None:
        self.clients: OrderedDict[str, Seen] = OrderedDict()
        self.issuers: dict[str, str] = {}


class ClientRecorder:
    """Bounded, aggregated records of the client chains this worker's bindings saw."""

    def __init__(
        self,
        limit: int,
        *,
        on_lost: Callable[[LostClient], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limit = limit
        self._bindings: dict[str, _Binding] = {}
        self._on_lost = on_lost
        self._clock = clock

    def __len__(self) -> int:
        return sum(len(b.clients) for b in self._bindings.values())

    def _binding(self, edge: str) -> _Binding:
        found = self._bindings.get(edge)
        if found is None:
            found = self._bindings[edge] = _Binding()
        return found

    def handshake(self, session: TlsSession) -> None:
        """A completed handshake with a client certificate (verified, or not in `request` mode)."""
        chain = session.peer_chain_der
        if not chain:
            return
        edge = session.edge.name
        binding = self._binding(edge)
        clients = binding.clients
        fingerprint = hashlib.sha256(chain[0]).hexdigest()
        now = self._clock()
        seen = clients.get(fingerprint)
        if seen is None:
            seen = clients[fingerprint] = Seen(
                session.edge.mutual_authentication.ca_set, chain, now
            )
            self._index_issuers(binding, fingerprint, chain)
            if len(clients) > self.limit:
                clients.popitem(last=False)
        else:
            clients.move_to_end(fingerprint)
        seen.last_seen = now
        seen.handshakes += 1
        seen.dirty = True
        if session.verify_result is VerifyResult.SUCCESS:
            seen.outcome = ACCEPTED
            seen.accepted_version = session.ca_set_version
            seen.lost_version = NOT_LOST
        else:
            reason = session.verify_reason or Reason.OTHER
            seen.outcome = reason.value
            self._maybe_lost(edge, fingerprint, seen, reason, session.ca_set_version)

    def refused(self, edge: str, reason: Reason, certificate: bytes, version: int | None) -> None:
        """A refused handshake; `certificate`: DER of the one verification stopped at."""
        if reason not in CERTIFICATE_VERDICTS:
            return
        binding = self._bindings.get(edge)
        if binding is None:
            return
        fingerprint = hashlib.sha256(certificate).hexdigest()
        seen = binding.clients.get(fingerprint)
        if seen is None:
            leaf = binding.issuers.get(fingerprint)
            seen = binding.clients.get(leaf) if leaf is not None else None
            if seen is None or leaf is None:
                return
            fingerprint = leaf
        binding.clients.move_to_end(fingerprint)
        seen.last_seen = self._clock()
        seen.handshakes += 1
        seen.outcome = reason.value
        seen.dirty = True
        self._maybe_lost(edge, fingerprint, seen, reason, version)

    def request(self, edge: str, fingerprint: str | None) -> None:
        """One request on a connection of this client."""
        if fingerprint is None:
            return
        binding = self._bindings.get(edge)
        seen = binding.clients.get(fingerprint) if binding is not None else None
        if seen is not None:
            seen.requests += 1
            seen.dirty = True

    def drain(self) -> list[Batch]:
        """The records changed since the previous drain; their counts start again at zero."""
        out: list[Batch] = []
        for edge, binding in self._bindings.items():
            for fingerprint, seen in binding.clients.items():
                if not seen.dirty:
                    continue
                out.append(
                    Batch(
                        edge,
                        fingerprint,
                        seen,
                        seen.handshakes,
                        seen.requests,
                        seen.first_seen,
                        seen.last_seen,
                        seen.outcome,
                    )
                )
                seen.handshakes = seen.requests = 0
                seen.dirty = False
        return out

    def forget(self, older_than: float) -> None:
        """Drop the records last seen before `older_than` (Unix time): the window is over."""
        for binding in self._bindings.values():
            stale = [f for f, s in binding.clients.items() if s.last_seen < older_than]
            for fingerprint in stale:
                del binding.clients[fingerprint]

    def _index_issuers(self, binding: _Binding, leaf: str, chain: tuple[bytes, ...]) -> None:
        if len(chain) < 2:
            return
        issuers = binding.issuers
        if len(issuers) >= MAX_ISSUERS:
            issuers.clear()
        for der in chain[1:]:
            issuers[hashlib.sha256(der).hexdigest()] = leaf

    def _maybe_lost(
        self, edge: str, fingerprint: str, seen: Seen, reason: Reason, version: int | None
    ) -> None:
        accepted = seen.accepted_version
        key = version or 0
        if accepted is None or accepted == version or seen.lost_version == key:
            return
        seen.lost_version = key
        if self._on_lost is not None:
            self._on_lost(LostClient(edge, fingerprint, reason, accepted, version))
