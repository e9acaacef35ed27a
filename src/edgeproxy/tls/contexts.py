"""EdgeTrust → `OpenSSL.SSL.Context`: pure, cached by the input's digest.

Every context gets its own fresh X509 store, filled once before the first connection uses it; a live
store is never mutated (`load_verify_locations` only ever adds, so a removed CA would stay trusted).
The same holds for CRLs: a newer CRL is a new `TrustAnchors`, hence a new digest and a new context.

Session resumption: the session-id context is derived from (edge name, CA set, version, digest), and
session caches and ticket keys are per context, so a session made under an older trust version never
resumes under a newer one. TLS 1.3 tickets: OpenSSL's default of two NewSessionTickets per full
handshake is kept, which is also what nginx sends by default; pyOpenSSL exposes no
`SSL_CTX_set_num_tickets`, so benchmarks must compare at that count (docs/performance.md).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, Protocol

from cryptography import x509
from OpenSSL import SSL, crypto

from edgeproxy.tls.reasons import CERT_REVOKED, NO_CRL_FOR_ISSUER, STALE_CRL
from edgeproxy.tls.trust import EdgeTrust

# Mozilla "intermediate" TLS 1.2 suites: ECDHE + AEAD only. TLS 1.3 suites stay OpenSSL's defaults.
TLS12_CIPHERS: Final = (
    b"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    b"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    b"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
SESSION_TIMEOUT: Final = 300  # seconds
_OPTIONS: Final = (
    SSL.OP_NO_RENEGOTIATION  # RFC 5746 aside, client-initiated renegotiation is a DoS lever
    | SSL.OP_NO_COMPRESSION  # CRIME
    | SSL.OP_CIPHER_SERVER_PREFERENCE
)


class VerifyRecord:
    """Per-connection verification outcome, attached with `Connection.set_app_data`.

    The verify callback records the *first* failure's X509_V_ERR code and depth; later failures in
    the same chain are consequences of it. `issuer` is the certificate verified at depth 1, kept
    only where OCSP is enabled (the OCSP CertID names the leaf's issuer's key); with
    `ocsp.check_intermediates`, the one verified last, at `issuer_depth`.
    """

    __slots__ = ("checked", "crl_stale", "depth", "error", "issuer", "issuer_depth")

    def __init__(self) -> None:
        self.checked = False  # the callback ran: a chain was verified in this handshake
        self.error: int | None = None
        self.depth = -1
        self.issuer: crypto.X509 | None = None
        self.issuer_depth = -1
        self.crl_stale = False  # accepted although the issuer's CRL is stale (failure_mode soft)


OcspLookup = Callable[[crypto.X509, "crypto.X509 | None"], bool]


class RevocationHooks(Protocol):
    """What the verify step asks of the worker's revocation service (revocation/check.py).

    Both run inside OpenSSL's verify callback, on the event loop: synchronous, cheap, no I/O.
    """

    def ocsp_lookup(self, trust: EdgeTrust) -> OcspLookup:
        """For one binding and the anchors its context verifies against: (leaf, issuer) -> True
        when the OCSP cache holds "revoked"."""

    def crl_stale_accepted(self, ca_set: str) -> None:
        """A handshake went on past a stale CRL under failure_mode soft (counted)."""


def _make_verify(trust: EdgeTrust, hooks: RevocationHooks | None) -> Callable[..., bool]:
    """The verify callback of one context: the enforcement mode plus revocation (docs/dataplane.md).

    CRLs: OpenSSL checks the leaf against its issuer's CRL when the store holds any (CRL_CHECK).
    * no CRL for this issuer (UNABLE_TO_GET_CRL), or a CRL naming it but signed by another key
      (a same-DN CA, docs/management.md): not this issuer's list, so nothing to check -> carry on;
    * a stale CRL (past nextUpdate, or not yet valid): `ocsp.failure_mode` decides. soft: carry
      on (OpenSSL still refuses serials the stale list names) and count it; hard: refuse,
      reason ocsp_unavailable (reasons.py), alert certificate_expired (OpenSSL's choice).
    OCSP: at depth 0 the binding's cache is consulted; "revoked" refuses with reason `revoked`.
    With `ocsp.check_intermediates`, at every depth that has a certificate verified just above it:
    OpenSSL calls back from the top of the chain down, and the top is the trust anchor (trusted
    by definition, so never looked up); each certificate below is looked up with the one above.
    pyOpenSSL offers no public way to set X509_V_ERR_CERT_REVOKED from a callback, so the alert is
    OpenSSL's for an application refusal (internal_error); a CRL revocation sends
    certificate_revoked. A miss, or any other answer, is left to the HTTP layer (first request).
    """
    auth = trust.edge.mutual_authentication
    require = auth.mode == "require"
    soft = auth.ocsp.failure_mode == "soft"
    ca_set = trust.anchors.ca_set if trust.anchors is not None else ""
    lookup = hooks.ocsp_lookup(trust) if hooks is not None and auth.ocsp.enabled else None
    every_depth = auth.ocsp.check_intermediates
    stale_accepted = hooks.crl_stale_accepted if hooks is not None else None

    def verify(conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int) -> bool:
        rec = conn.get_app_data()
        if not isinstance(rec, VerifyRecord):
            return bool(ok) or not require
        rec.checked = True
        if not ok:
            if errno in NO_CRL_FOR_ISSUER:
                return True
            if soft and errno in STALE_CRL:
                if not rec.crl_stale and stale_accepted is not None:
                    stale_accepted(ca_set)
                rec.crl_stale = True
                return True
        elif lookup is not None:
            if every_depth:
                # Success is signalled once per depth; the issuer must be the depth just above.
                issuer = rec.issuer if rec.issuer_depth == depth + 1 else None
                if issuer is not None and rec.error is None and lookup(cert, issuer):
                    errno, ok = CERT_REVOKED, 0
                rec.issuer, rec.issuer_depth = cert, depth
            elif depth == 1:
                rec.issuer = cert
            elif depth == 0 and rec.error is None and lookup(cert, rec.issuer):
                errno, ok = CERT_REVOKED, 0
        if not ok and rec.error is None:
            rec.error = errno
            rec.depth = depth
        # require: a failure aborts the handshake with OpenSSL's matching alert. request: finish
        # the handshake; the HTTP layer denies or forwards (docs/dataplane.md).
        return bool(ok) or not require

    return verify


def session_id_context(trust: EdgeTrust) -> bytes:
    """32 bytes (SSL_MAX_SID_CTX_LENGTH) naming the edge and the exact trust it verified against."""
    anchors = trust.anchors
    h = hashlib.sha256(b"edgeproxy-sid-v1\0" + trust.edge.name.encode() + b"\0")
    if anchors is not None:
        h.update(anchors.ca_set.encode() + b"\0" + str(anchors.version).encode() + b"\0")
    h.update(trust.digest())
    return h.digest()


def _server_name_used(conn: SSL.Connection) -> None:
    """The servername callback: nothing to do, the engine already chose this context by the name.

    Its presence is the point: OpenSSL acknowledges a client's server_name (an empty extension in
    the ServerHello, in EncryptedExtensions under TLS 1.3; RFC 6066 §3) only when a callback
    accepted the name.
    """


def build_context(trust: EdgeTrust, hooks: RevocationHooks | None = None) -> SSL.Context:
    """A server context for one edge certificate and one trust version. Raises on bad input.

    `hooks`: the worker's revocation service, for OCSP in the verify step (None: no OCSP cache
    is consulted in the handshake, and stale CRLs accepted under soft are not counted).
    """
    edge = trust.edge
    auth = edge.mutual_authentication
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_options(_OPTIONS)
    # Free record buffers while idle: measured ~32 KiB per idle connection instead of ~61
    # (docs/performance.md).
    ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
    ctx.set_cipher_list(TLS12_CIPHERS)
    ctx.use_certificate_chain_file(str(edge.certificate))
    ctx.use_privatekey_file(str(edge.private_key))
    ctx.check_privatekey()
    ctx.set_session_id(session_id_context(trust))
    # nginx's ssl_session_timeout default. A resumed session skips verification, so this bounds
    # how long a certificate verified once keeps resuming after it expires (OpenSSL: 7200 s).
    ctx.set_timeout(SESSION_TIMEOUT)
    ctx.set_tlsext_servername_callback(_server_name_used)

    store = ctx.get_cert_store()  # this context's own, still empty: filled once, here
    if store is None:
        raise RuntimeError("OpenSSL context has no certificate store")
    anchors = trust.anchors
    if anchors is not None:
        if not anchors.certificates_der:
            raise ValueError(f"{anchors.ca_set} v{anchors.version}: no certificates")
        for der in anchors.certificates_der:
            store.add_cert(crypto.load_certificate(crypto.FILETYPE_ASN1, der))
            if auth.send_ca_list_to_client:
                ctx.add_client_ca(x509.load_der_x509_certificate(der))
        if not anchors.require_root_certificate:
            # Every certificate of the version is an anchor (docs/management.md), intermediates
            # included.
            store.set_flags(crypto.X509StoreFlags.PARTIAL_CHAIN)
        for der in anchors.crls_der:
            store.add_crl(x509.load_der_x509_crl(der))
        if anchors.crls_der:
            # The leaf only (not CRL_CHECK_ALL): CRLs are per CA set and revoke client
            # certificates; a CA is removed from trust by a new version, not by a CRL.
            store.set_flags(crypto.X509StoreFlags.CRL_CHECK)
    # anchors None: the store stays empty, so every client certificate fails (fail closed).

    verify = _make_verify(trust, hooks)
    if auth.mode == "require":
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verify)
        # nginx's default (`ssl_session_cache none`): resumption by stateless tickets only, no
        # server-side session store growing with every TLS 1.2 client.
        ctx.set_session_cache_mode(
            SSL.SESS_CACHE_SERVER | SSL.SESS_CACHE_NO_INTERNAL_STORE | SSL.SESS_CACHE_NO_AUTO_CLEAR
        )
    else:
        ctx.set_verify(SSL.VERIFY_PEER, verify)
        # No resumption in `request` mode: a resumed session skips verification, and pyOpenSSL
        # cannot read the verify result stored in the session, so the HTTP layer would not know
        # whether the certificate it sees ever verified.
        ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        ctx.set_options(SSL.OP_NO_TICKET)
    ctx.set_verify_depth(auth.verify_depth)
    return ctx


class ContextCache:
    """Bounded LRU of contexts keyed by `EdgeTrust.digest()`: equal inputs give the same object.

    Thread-safe, because trust states may be built in an executor. An evicted context stays alive as
    long as a trust state or a connection holds it. `hooks` (the worker's revocation service) is
    given to every context this cache builds: one cache per worker, so the digest stays the key.
    """

    def __init__(self, maxsize: int = 256, hooks: RevocationHooks | None = None) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self.hooks = hooks
        self._items: OrderedDict[bytes, SSL.Context] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, trust: EdgeTrust) -> SSL.Context:
        key = trust.digest()
        with self._lock:
            ctx = self._items.get(key)
            if ctx is not None:
                self._items.move_to_end(key)
                return ctx
        ctx = build_context(trust, self.hooks)  # outside the lock: reading keys may take a while
        with self._lock:
            ctx = self._items.setdefault(key, ctx)
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return ctx

    def __len__(self) -> int:
        return len(self._items)
