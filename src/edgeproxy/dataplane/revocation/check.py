"""The worker's OCSP service: the verify step's cache lookup and the HTTP layer's pending check.

For a binding with `ocsp.enabled` (docs/dataplane.md Revocation):
1. Handshake: the context's verify callback (tls/contexts.py) calls `BindingOcsp.in_handshake` at
   depth 0 with the leaf and the issuer verified at depth 1 (with `check_intermediates`: at every
   depth below the trust anchor, with the certificate verified just above it), and refuses when
   the cache holds "revoked". It costs nothing while no revoked answer is cached
   (`OcspCache.revoked_serials`), and never does I/O inside OpenSSL.
2. Established: the exchange machine (`HttpConnection`, made by `ProxyProtocol`) calls
   `Revocation.start(session, fingerprint)`.
   The cache keys (issuer key hash, serial) and issuers of the certificates to check (chain.py)
   come from notes per leaf fingerprint, made once from the chain the client sent and the anchors
   the handshake verified against. A cache hit decides at once (one hit counted per connection);
   a miss starts the one coalesced responder request per key and hands the connection a pending
   `RevocationCheck` (for a chain: settled when every lookup is; a cached revoked decides at once).
3. The first request waits on a pending check (bounded by `ocsp.timeout`, through the fetch)
   before anything reaches the origin: revoked -> 403 and close; unknown or unavailable -> soft
   forwards, hard answers 403 `ocsp_unavailable`. Later requests use the stored result: the
   keep-alive path tests one attribute for None, and nothing at all when OCSP is off.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from cryptography import x509
from OpenSSL import crypto

from edgeproxy.config.model import EdgeCertificateConfig, OcspConfig
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.revocation.cache import OcspCache
from edgeproxy.dataplane.revocation.client import OcspClient
from edgeproxy.dataplane.revocation.gate import RevocationCheck, all_settled, worst
from edgeproxy.revocation.answer import UNAVAILABLE, Answer, CacheKey, Status
from edgeproxy.revocation.chain import AnchorIndex, Note, Notes, chain_notes, leaf_note
from edgeproxy.revocation.ocsp import OcspUnavailable, build_request, responder_url
from edgeproxy.revocation.verify import Untrusted, key_hash, verify_response
from edgeproxy.runtime.tasks import TaskGroup
from edgeproxy.tls.contexts import OcspLookup, OcspRevoked
from edgeproxy.tls.session import TlsSession
from edgeproxy.tls.trust import TrustState

log = logging.getLogger(__name__)
_ISSUER_MEMO: Final = 1024  # distinct issuing CAs remembered (their key hash)
_NOT_CHECKED: Final = (Status.NOT_CHECKED.value, None)


def _trust(session: TlsSession) -> tuple[str | None, int | None]:
    return session.ca_set, session.ca_set_version


class BindingOcsp:
    """One binding's (edge certificate's) cache, notes, anchors and settings."""

    __slots__ = ("_anchors", "_index", "_service", "cache", "config", "hard", "name", "notes")

    def __init__(self, service: Revocation, config: OcspConfig, name: str = "") -> None:
        self._service = service
        self.name = name  # the edge certificate's
        self.config = config
        self.hard = config.failure_mode == "hard"
        self.cache = OcspCache(
            config.cache_size, service.tasks, clock=service.clock, wall=service.wall
        )
        # Leaf SHA-256 fingerprint (hex, as the identity encoder computes it) → Notes.
        self.notes: OrderedDict[str, Notes] = OrderedDict()
        # (CA set, version) → its certificates: the versions of the trust states in force and
        # just before (a handshake begun under the older one may finish after the swap); indexed
        # by subject on first use.
        self._anchors: dict[tuple[str, int], tuple[bytes, ...]] = {}
        self._index: dict[tuple[str, int], AnchorIndex] = {}

    def keep_anchors(self, anchors: dict[tuple[str, int], tuple[bytes, ...]]) -> None:
        """These versions, and no others: what no state holds any more is forgotten."""
        for key in [k for k in self._index if k not in anchors or anchors[k] != self._anchors[k]]:
            del self._index[key]
        self._anchors = anchors

    def in_handshake(self, leaf: crypto.X509, issuer: crypto.X509 | None) -> OcspRevoked | None:
        """Not None when the cache says `leaf` is revoked (the verify callback then refuses)."""
        revoked = self.cache.revoked_serials
        if not revoked or issuer is None:
            return None
        serial = leaf.get_serial_number()
        if serial not in revoked:
            return None
        issuer_der = crypto.dump_certificate(crypto.FILETYPE_ASN1, issuer)
        key = (self._service.key_hash(issuer_der), serial)
        if self.cache.peek(key) is Status.REVOKED:
            self._service.cache_hit()
            return OcspRevoked(self.cache.revoked_at(key))
        return None

    def start(
        self, session: TlsSession, fingerprint: str | None
    ) -> tuple[str, RevocationCheck | None]:
        found = self.notes.get(fingerprint) if fingerprint else None
        if found is None or (
            self.config.check_intermediates
            and (found.sent != session.peer_chain_der or found.trust != _trust(session))
        ):
            found = self._find(session)
            if found is None:
                log.warning("OCSP: an issuer in the client's certificate chain was not found")
                return self._decided(Status.UNAVAILABLE)
            if fingerprint:
                self.notes[fingerprint] = found
                if len(self.notes) > self.config.cache_size:
                    self.notes.popitem(last=False)
        notes = found.notes
        if len(notes) > 1:
            return self._start_chain(notes)
        note = notes[0]
        status = self.cache.peek(note.key)
        if status is not None:
            self._service.cache_hit()
            return self._decided(status)
        return Status.NOT_CHECKED.value, RevocationCheck(self.hard, future=self._resolve(note))

    def _start_chain(self, notes: tuple[Note, ...]) -> tuple[str, RevocationCheck | None]:
        """Every certificate at once; a cached revoked decides without asking for the others."""
        known = [self.cache.peek(note.key) for note in notes]
        if Status.REVOKED in known or None not in known:
            self._service.cache_hit()
            return self._decided(worst(s for s in known if s is not None))
        decided = [s for s in known if s is not None]
        pending = [self._resolve(n) for n, s in zip(notes, known, strict=True) if s is None]
        future = all_settled(decided, pending)
        return Status.NOT_CHECKED.value, RevocationCheck(self.hard, future=future)

    def _resolve(self, note: Note) -> asyncio.Future[Status]:
        cert_der, issuer_der, config, key = note.cert_der, note.issuer_der, self.config, note.key

        async def fetch() -> Answer:
            answer = await self._service.query(config, cert_der, issuer_der)
            if answer.status is Status.REVOKED:
                # Open connections may have been let through on an earlier, good answer.
                self._service.learned_revoked(self, key)
            return answer

        return self.cache.resolve(key, fetch)

    def names(self, session: TlsSession, key: CacheKey) -> bool:
        """Whether `key` is one of the certificates OCSP checks for this session's chain."""
        chain = session.peer_chain_der
        if not chain:
            return False
        found = self.notes.get(hashlib.sha256(chain[0]).hexdigest()) or self._find(session)
        return found is not None and any(note.key == key for note in found.notes)

    def _decided(self, status: Status) -> tuple[str, RevocationCheck | None]:
        if status is Status.GOOD or (
            not self.hard and (status is Status.UNKNOWN or status is Status.UNAVAILABLE)
        ):
            return status.value, None  # nothing to wait for, nothing to refuse
        return status.value, RevocationCheck(self.hard, status)

    def _find(self, session: TlsSession) -> Notes | None:
        chain = session.peer_chain_der
        anchors = self._anchor_index(session.ca_set, session.ca_set_version)
        key_hash = self._service.key_hash
        if not self.config.check_intermediates:
            note = leaf_note(chain, anchors, key_hash)
            return None if note is None else Notes((note,))
        notes = chain_notes(chain, anchors, key_hash)
        return None if notes is None else Notes(notes, tuple(chain), _trust(session))

    def _anchor_index(self, ca_set: str | None, version: int | None) -> AnchorIndex:
        if ca_set is None or version is None:
            return {}
        key = (ca_set, version)
        index = self._index.get(key)
        if index is None:  # first use: parse and index once
            index = {}
            for der in self._anchors.get(key, ()):
                cert = x509.load_der_x509_certificate(der)
                index.setdefault(cert.subject.public_bytes(), []).append(cert)
            self._index[key] = index
        return index


class Revocation:
    """Per worker: `RevocationHooks` for the contexts and `RevocationProvider` for HTTP."""

    def __init__(
        self,
        metrics: Metrics | None = None,
        *,
        client: OcspClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.metrics = metrics
        self.client = client  # the edge role sets it once its ClientSession exists
        self.clock = clock
        self.wall = wall
        self.tasks = TaskGroup()
        self._bindings: dict[str, BindingOcsp] = {}
        self._key_hashes: dict[bytes, bytes] = {}
        # Told when an answer says "revoked": (edge certificate, does it name this session?).
        self.revoked_listeners: list[Callable[[str, Callable[[TlsSession], bool]], None]] = []

    def binding(self, edge: EdgeCertificateConfig) -> BindingOcsp:
        """The binding's state; new (empty cache) when its OCSP settings changed (SIGHUP)."""
        config = edge.mutual_authentication.ocsp
        found = self._bindings.get(edge.name)
        if found is None or (found.config is not config and found.config != config):
            found = self._bindings[edge.name] = BindingOcsp(self, config, edge.name)
        return found

    # -- RevocationHooks (called while contexts are built, and inside the verify callback) -----

    def ocsp_lookup(self, edge: EdgeCertificateConfig) -> OcspLookup:
        return self.binding(edge).in_handshake

    def retain(self, state: TrustState, previous: TrustState | None) -> None:
        """After a trust swap: bindings of edges that are gone are dropped (their caches with
        them), and each binding keeps the anchors of the states in force and just before."""
        for name in [n for n in self._bindings if n not in state.edges]:
            del self._bindings[name]
        for name, binding in self._bindings.items():
            anchors: dict[tuple[str, int], tuple[bytes, ...]] = {}
            for held in (previous, state):
                prepared = held.edges.get(name) if held is not None else None
                if prepared is not None and prepared.anchors is not None:
                    a = prepared.anchors
                    anchors[a.ca_set, a.version] = a.certificates_der
            binding.keep_anchors(anchors)

    def crl_stale_accepted(self, ca_set: str) -> None:
        if self.metrics is not None:
            self.metrics.crl_stale_accepted(ca_set)

    # -- RevocationProvider (HttpConnection, at connection start) ------------------------------

    def start(
        self, session: TlsSession, fingerprint: str | None
    ) -> tuple[str, RevocationCheck | None]:
        """(access-log status, check to await or None) for a connection whose certificate
        verified, on a binding with OCSP enabled."""
        if not session.peer_chain_der:
            return _NOT_CHECKED
        return self.binding(session.edge).start(session, fingerprint)

    # -- internals -----------------------------------------------------------------------------

    def key_hash(self, issuer_der: bytes) -> bytes:
        found = self._key_hashes.get(issuer_der)
        if found is None:
            if len(self._key_hashes) >= _ISSUER_MEMO:
                self._key_hashes.clear()
            found = key_hash(x509.load_der_x509_certificate(issuer_der))
            self._key_hashes[issuer_der] = found
        return found

    def learned_revoked(self, binding: BindingOcsp, key: CacheKey) -> None:
        for listener in self.revoked_listeners:
            try:
                listener(binding.name, lambda session: binding.names(session, key))
            except Exception:  # the answer is cached either way; a listener must not lose it
                log.exception("OCSP revoked listener failed")

    def cache_hit(self) -> None:
        if self.metrics is not None:
            self.metrics.ocsp_cache_hit()

    async def query(self, config: OcspConfig, leaf_der: bytes, issuer_der: bytes) -> Answer:
        """Ask the responder once; any failure is UNAVAILABLE (logged, counted as `error`)."""
        url: str | None = None
        serial = "?"
        try:
            leaf = x509.load_der_x509_certificate(leaf_der)
            issuer = x509.load_der_x509_certificate(issuer_der)
            serial = format(leaf.serial_number, "x")
            url = responder_url(leaf, config.responder)
            if url is None:
                raise OcspUnavailable("no responder configured and none in the certificate")
            if self.client is None:
                raise OcspUnavailable("no OCSP client: the edge role has not started")
            async with asyncio.timeout(config.timeout):
                der = await self.client.post(url, build_request(leaf, issuer))
            answer = verify_response(der, leaf, issuer, self.wall())
        except (OcspUnavailable, Untrusted, ValueError, TimeoutError) as exc:
            timed_out = isinstance(exc, TimeoutError)
            error = f"no answer within {config.timeout:g}s" if timed_out else str(exc)
            log.warning(
                "OCSP answer unavailable",
                extra={"responder": url, "serial": serial, "error": error},
            )
            self._count("error")
            return UNAVAILABLE
        self._count(answer.status.value)
        return answer

    def _count(self, status: str) -> None:
        if self.metrics is not None:
            self.metrics.ocsp_response(status)

    async def close(self) -> None:
        """Cancel responder requests in flight (their waiters get `unavailable`)."""
        await self.tasks.close()
