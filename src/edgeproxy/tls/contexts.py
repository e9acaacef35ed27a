"""Prepared edges and trust states, built aside: pure, and meant for an executor thread.

Every context gets its own fresh X509 store, filled once before the first connection uses it; a live
store is never mutated (`load_verify_locations` only ever adds, so a removed CA would stay trusted).
The same holds for CRLs: a newer CRL is new `TrustAnchors`, hence a new key and a new context.
`build_state` reuses, from the state in force, every prepared edge whose `context_key` did not
change, and keeps nothing else: a context no state holds is freed with its last connection.

Session resumption: the session-id context is derived from (edge name, CA set, version, context
key), and session caches and ticket keys are per context, so a session made under an older trust
version never resumes under a newer one. TLS 1.3 tickets: OpenSSL's default of two
NewSessionTickets per full handshake is kept, which is also what nginx sends by default; pyOpenSSL
exposes no `SSL_CTX_set_num_tickets`, so benchmarks must compare at that count
(docs/performance.md).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from OpenSSL import SSL, crypto

from edgeproxy.config.model import EdgeCertificateConfig
from edgeproxy.domain.edge_model import EdgeMaterial
from edgeproxy.domain.secrets import KeyRing, SecretError
from edgeproxy.tls.blocklist import NO_BLOCKS
from edgeproxy.tls.reasons import (
    APPLICATION_VERIFICATION,
    CERT_REVOKED,
    NO_CRL_FOR_ISSUER,
    STALE_CRL,
    error_text,
)
from edgeproxy.tls.trust import ContextKey, PreparedEdge, TrustAnchors, TrustState, context_key

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
    """Per-connection verification outcome, attached with `Connection.set_app_data`; it also
    carries `alpn`, the protocol the engine chose from the client's offer, to the ALPN callback.

    The verify callback records the *first* failure's X509_V_ERR code and depth; later failures in
    the same chain are consequences of it. `issuer` is the certificate verified at depth 1, kept
    only where OCSP is enabled (the OCSP CertID names the leaf's issuer's key); with
    `ocsp.check_intermediates`, the one verified last, at `issuer_depth`. `failed` is the
    certificate of the first failure and `revoked_by` says who revoked it ("crl" or "ocsp"): the
    refused handshake's log line names them (refusal.py).
    """

    __slots__ = (
        "alpn",
        "checked",
        "crl_stale",
        "depth",
        "error",
        "failed",
        "issuer",
        "issuer_depth",
        "revoked_at",
        "revoked_by",
    )

    def __init__(self) -> None:
        self.checked = False  # the callback ran: a chain was verified in this handshake
        self.error: int | None = None
        self.depth = -1
        self.issuer: crypto.X509 | None = None
        self.issuer_depth = -1
        self.crl_stale = False  # accepted although the issuer's CRL is stale (failure_mode soft)
        self.alpn: bytes | None = None
        self.failed: crypto.X509 | None = None
        self.revoked_by: str | None = None
        self.revoked_at: datetime | None = None  # an OCSP answer's revocationTime


class ChainBook:
    """Per context (its app data, set by `build_context`): the verified chains of its clients,
    for sessions that resume.

    A full handshake's verified chain is what OpenSSL built (`SSL_get0_verified_chain`); a resumed
    session has none, since no certificate was verified in it. Tickets are per context and the
    session-id context names its exact trust (`session_id_context`), so a session that resumes
    here was verified against this very store, in this process: its chain is the one remembered
    from that handshake, by the leaf's SHA-256. Bounded; a chain no longer remembered is unknown,
    never guessed (the origin then gets no Client-Cert-Chain).

    Issuer certificates are interned (the CA set's, and those clients sent): a connection's chain
    then costs a tuple, not another copy of each certificate.
    """

    __slots__ = ("_chains", "_issuers", "_max_issuers")

    MAX_CHAINS: Final = 2048
    MAX_SENT_ISSUERS: Final = 256

    def __init__(self, anchors: tuple[bytes, ...]) -> None:
        self._issuers: dict[bytes, bytes] = {der: der for der in anchors}
        self._max_issuers = len(self._issuers) + self.MAX_SENT_ISSUERS
        self._chains: OrderedDict[bytes, tuple[bytes, ...]] = OrderedDict()

    def intern(self, der: bytes) -> bytes:
        found = self._issuers.get(der)
        if found is not None:
            return found
        if len(self._issuers) < self._max_issuers:
            self._issuers[der] = der
        return der

    def remember(self, leaf_der: bytes, issuers: tuple[bytes, ...]) -> None:
        chains = self._chains
        chains[hashlib.sha256(leaf_der).digest()] = issuers
        if len(chains) > self.MAX_CHAINS:
            chains.popitem(last=False)

    def recall(self, leaf_der: bytes) -> tuple[bytes, ...] | None:
        key = hashlib.sha256(leaf_der).digest()
        issuers = self._chains.get(key)
        if issuers is not None:
            self._chains.move_to_end(key)
        return issuers


@dataclass(frozen=True, slots=True)
class OcspRevoked:
    """The OCSP cache holds "revoked" for a client certificate; `at`: the answer's
    revocationTime (the refused handshake's log line names it)."""

    at: datetime | None


OcspLookup = Callable[[crypto.X509, "crypto.X509 | None"], OcspRevoked | None]


class RevocationHooks(Protocol):
    """What the verify step asks of the worker's revocation service (revocation/check.py).

    `ocsp_lookup` is asked on the event loop before a build (for the edges with OCSP enabled);
    what it returns, and `crl_stale_accepted`, run inside OpenSSL's verify callback, on the event
    loop: synchronous, cheap, no I/O.
    """

    def ocsp_lookup(self, edge: EdgeCertificateConfig) -> OcspLookup:
        """For one binding: (leaf, issuer) -> OcspRevoked when the OCSP cache holds "revoked"."""

    def crl_stale_accepted(self, ca_set: str) -> None:
        """A handshake went on past a stale CRL under failure_mode soft (counted)."""


StaleAccepted = Callable[[str], None]


def _make_verify(
    edge: EdgeCertificateConfig,
    anchors: TrustAnchors | None,
    lookup: OcspLookup | None,
    stale_accepted: StaleAccepted | None,
) -> Callable[..., bool]:
    """The verify callback of one context: the enforcement mode plus revocation (docs/dataplane.md).

    CRLs: OpenSSL checks the leaf against its issuer's CRL when the store holds any (CRL_CHECK).
    * no CRL for this issuer (UNABLE_TO_GET_CRL), or a CRL naming it but signed by another key
      (a same-DN CA, docs/management.md): not this issuer's list, so nothing to check -> carry on;
    * a stale CRL (past nextUpdate, or not yet valid): `ocsp.failure_mode` decides. soft: carry
      on (OpenSSL still refuses serials the stale list names) and count it; hard: refuse,
      reason ocsp_unavailable (reasons.py), alert certificate_expired (OpenSSL's choice).
    Blocked certificates: a leaf on the set's block list (tls/blocklist.py) is refused with reason
    `blocked`, checked only when the list is not empty.
    OCSP: at depth 0 the binding's cache is consulted; "revoked" refuses with reason `revoked`.
    With `ocsp.check_intermediates`, at every depth that has a certificate verified just above it:
    OpenSSL calls back from the top of the chain down, and the top is the trust anchor (trusted
    by definition, so never looked up); each certificate below is looked up with the one above.
    pyOpenSSL offers no public way to set X509_V_ERR_CERT_REVOKED from a callback, so the alert is
    OpenSSL's for an application refusal (internal_error); a CRL revocation sends
    certificate_revoked. A miss, or any other answer, is left to the HTTP layer (first request).
    """
    auth = edge.mutual_authentication
    require = auth.mode == "require"
    soft = auth.ocsp.failure_mode == "soft"
    ca_set = anchors.ca_set if anchors is not None else ""
    if not auth.ocsp.enabled:
        lookup = None
    every_depth = auth.ocsp.check_intermediates
    blocked = anchors.blocked if anchors is not None else NO_BLOCKS

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
                if issuer is not None and rec.error is None:
                    revoked = lookup(cert, issuer)
                    if revoked is not None:
                        errno, ok = CERT_REVOKED, 0
                        rec.revoked_by, rec.revoked_at = "ocsp", revoked.at
                rec.issuer, rec.issuer_depth = cert, depth
            elif depth == 1:
                rec.issuer = cert
            elif depth == 0 and rec.error is None:
                revoked = lookup(cert, rec.issuer)
                if revoked is not None:
                    errno, ok = CERT_REVOKED, 0
                    rec.revoked_by, rec.revoked_at = "ocsp", revoked.at
        if ok and depth == 0 and blocked and blocked.blocks(cert.to_cryptography()):
            errno, ok = APPLICATION_VERIFICATION, 0  # reasons.py: Reason.BLOCKED
        if not ok and rec.error is None:
            rec.error = errno
            rec.depth = depth
            rec.failed = cert
            if errno == CERT_REVOKED and rec.revoked_by is None:
                rec.revoked_by = "crl"  # OpenSSL's own verdict: the set's CRL lists it
        # require: a failure aborts the handshake with OpenSSL's matching alert. request: finish
        # the handshake; the HTTP layer denies or forwards (docs/dataplane.md).
        return bool(ok) or not require

    return verify


def session_id_context(
    edge: EdgeCertificateConfig, anchors: TrustAnchors | None, generation: int = 0
) -> bytes:
    """32 bytes (SSL_MAX_SID_CTX_LENGTH) naming the edge and the exact trust it verified against."""
    h = hashlib.sha256(b"edgeproxy-sid-v2\0" + edge.name.encode() + b"\0")
    h.update(repr(context_key(edge, anchors, generation)[:-1]).encode() + b"\0")
    if anchors is not None:
        ca_set, version, root, prints, crls, blocked = anchors.key
        h.update(f"{ca_set}\0{version}\0{root}\0{','.join(prints)}\0".encode())
        for der in crls:
            h.update(len(der).to_bytes(4, "big") + der)
        h.update(repr(blocked).encode())
    return h.digest()


def _server_name_used(conn: SSL.Connection) -> None:
    """The servername callback: nothing to do, the engine already chose this context by the name.

    Its presence is the point: OpenSSL acknowledges a client's server_name (an empty extension in
    the ServerHello, in EncryptedExtensions under TLS 1.3; RFC 6066 §3) only when a callback
    accepted the name.
    """


def _select_protocol(conn: SSL.Connection, offered: list[bytes]) -> Any:
    """The ALPN select callback: the engine chose already, from the parsed ClientHello and the
    edge's protocols (and refused a client offering none of them), so this only confirms it.

    Returns the protocol, or `SSL.NO_OVERLAPPING_PROTOCOLS` (whose class pyOpenSSL keeps private,
    hence `Any`): carry on without ALPN.
    """
    rec = conn.get_app_data()
    chosen = rec.alpn if isinstance(rec, VerifyRecord) else None
    return chosen if chosen is not None and chosen in offered else SSL.NO_OVERLAPPING_PROTOCOLS


class EdgeCertificateError(ValueError):
    """An edge certificate's files or stored material that OpenSSL will not serve, in one
    sentence naming the edge certificate and the file (what a reload or a start logs)."""


def _use_files(ctx: SSL.Context, edge: EdgeCertificateConfig) -> None:
    """Load a config file's edge certificate: its chain file, then its key file, and check that
    they belong together. OpenSSL's error list becomes one sentence naming the edge certificate
    and the file (an operator reads "no start line", not a list of tuples)."""
    name, chain, key = edge.name, edge.certificate, edge.private_key
    try:
        ctx.use_certificate_chain_file(str(chain))
    except SSL.Error as error:
        raise EdgeCertificateError(
            f"edge certificate {name!r}: certificate file {chain} does not load as a PEM "
            f"certificate chain ({error_text(error)})"
        ) from None
    mismatch = f"edge certificate {name!r}: the private key in {key} does not match the "
    mismatch += f"certificate in {chain}"
    try:
        ctx.use_privatekey_file(str(key))
    except SSL.Error as error:
        text = error_text(error)
        if "mismatch" in text:  # OpenSSL checks the key against the certificate as it loads
            raise EdgeCertificateError(mismatch) from None
        raise EdgeCertificateError(
            f"edge certificate {name!r}: private key file {key} does not load as an unencrypted "
            f"PEM key ({text})"
        ) from None
    try:
        ctx.check_privatekey()
    except SSL.Error:
        raise EdgeCertificateError(mismatch) from None


def _use_stored(ctx: SSL.Context, name: str, material: EdgeMaterial, keys: KeyRing | None) -> None:
    """Load a store-managed edge certificate: its chain, and its key opened here (in the build
    thread) from the sealed record; the plaintext goes straight into OpenSSL and is dropped."""
    if keys is None:
        raise SecretError(
            f"edge certificate {name!r}: this node has no key-encryption key to open its "
            "private key ([store] key_encryption_key_file or EDGEPROXY_KEY_ENCRYPTION_KEY)"
        )
    chain = x509.load_pem_x509_certificates(material.chain_pem.encode("ascii"))
    ctx.use_certificate(chain[0])
    for extra in chain[1:]:
        ctx.add_extra_chain_cert(extra)
    key = serialization.load_pem_private_key(keys.open(name, material.sealed_key), None)
    if not isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        raise ValueError(f"edge certificate {name!r}: unsupported private key type")
    ctx.use_privatekey(key)


def build_context(
    edge: EdgeCertificateConfig,
    anchors: TrustAnchors | None,
    *,
    generation: int = 0,
    ocsp: OcspLookup | None = None,
    stale_accepted: StaleAccepted | None = None,
    keys: KeyRing | None = None,
) -> SSL.Context:
    """A server context for one edge certificate and one trust version. Raises on bad input.

    Reads the key files (or opens a store-managed edge's sealed key with `keys`) and parses every
    anchor: run it off the event loop. `ocsp`: the binding's
    OCSP cache lookup for the verify step (None: no cache is consulted in the handshake);
    `stale_accepted`: counts handshakes let through past a stale CRL under soft.
    """
    auth = edge.mutual_authentication
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_options(_OPTIONS)
    # Free record buffers while idle: measured ~32 KiB per idle connection instead of ~61
    # (docs/performance.md).
    ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
    ctx.set_cipher_list(TLS12_CIPHERS)
    if edge.material is None:
        _use_files(ctx, edge)
    else:
        _use_stored(ctx, edge.name, edge.material, keys)
        try:
            ctx.check_privatekey()
        except SSL.Error:
            raise EdgeCertificateError(
                f"edge certificate {edge.name!r}: its stored private key does not match its "
                "certificate"
            ) from None
    ctx.set_session_id(session_id_context(edge, anchors, generation))
    # nginx's ssl_session_timeout default. A resumed session skips verification, so this bounds
    # how long a certificate verified once keeps resuming after it expires (OpenSSL: 7200 s).
    ctx.set_timeout(SESSION_TIMEOUT)
    ctx.set_tlsext_servername_callback(_server_name_used)
    ctx.set_alpn_select_callback(_select_protocol)

    store = ctx.get_cert_store()  # this context's own, still empty: filled once, here
    if store is None:
        raise RuntimeError("OpenSSL context has no certificate store")
    if anchors is not None:
        if not anchors.certificates_der:
            raise ValueError(f"{anchors.ca_set} v{anchors.version}: no certificates")
        parsed = anchors.parsed()
        for certificate in parsed.certificates:
            store.add_cert(certificate)
        if auth.send_ca_list_to_client:
            ctx.set_client_ca_list(parsed.ca_names)
        if not anchors.require_root_certificate:
            # Every certificate of the version is an anchor (docs/management.md), intermediates
            # included.
            store.set_flags(crypto.X509StoreFlags.PARTIAL_CHAIN)
        for crl in parsed.crls:
            store.add_crl(crl)
        if anchors.crls_der:
            # The leaf only (not CRL_CHECK_ALL): CRLs are per CA set and revoke client
            # certificates; a CA is removed from trust by a new version, not by a CRL.
            store.set_flags(crypto.X509StoreFlags.CRL_CHECK)
    # anchors None: the store stays empty, so every client certificate fails (fail closed).

    ctx.set_app_data(ChainBook(() if anchors is None else anchors.certificates_der))
    verify = _make_verify(edge, anchors, ocsp, stale_accepted)
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


def served_not_after(context: SSL.Context) -> float | None:
    """notAfter (Unix time) of the server certificate `context` serves (the metrics)."""
    cert = SSL.Connection(context, None).get_certificate(as_cryptography=True)
    return None if cert is None else cert.not_valid_after_utc.timestamp()


def build_state(
    edges: Sequence[EdgeCertificateConfig],
    active: Mapping[str, TrustAnchors | None],
    *,
    previous: TrustState | None = None,
    generation: int = 0,
    revision: int = 0,
    applied_at: datetime | None = None,
    source: str = "",
    ocsp: Mapping[str, OcspLookup] | None = None,
    stale_accepted: StaleAccepted | None = None,
    keys: KeyRing | None = None,
) -> TrustState:
    """The node's next state: every edge bound to its set's anchors in `active` (absent or None:
    fail closed). A prepared edge of `previous` whose `context_key` is unchanged is reused as is;
    the others are built here. Raises on the first failure (the caller keeps `previous`).

    `ocsp`: edge name → its binding's OCSP lookup, for the edges with OCSP enabled.
    """
    reusable: dict[ContextKey, PreparedEdge] = (
        {p.key: p for p in previous.edges.values()} if previous is not None else {}
    )
    lookups = ocsp or {}
    prepared: list[PreparedEdge] = []
    for edge in edges:
        anchors = active.get(edge.mutual_authentication.ca_set)
        key = context_key(edge, anchors, generation)
        found = reusable.get(key)
        if found is None or found.edge != edge:
            context = (
                found.context
                if found is not None  # only the origin or host names changed
                else build_context(
                    edge,
                    anchors,
                    generation=generation,
                    ocsp=lookups.get(edge.name),
                    stale_accepted=stale_accepted,
                    keys=keys,
                )
            )
            found = PreparedEdge(edge, anchors, context, key)
        prepared.append(found)
    return TrustState(
        prepared,
        revision=revision,
        active=active,
        applied_at=applied_at,
        source=source,
        generation=generation,
    )
