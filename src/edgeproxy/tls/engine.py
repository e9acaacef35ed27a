"""Sans-IO TLS server engine over pyOpenSSL memory BIOs: bytes in, bytes and events out.

Lifecycle: the ClientHello is parsed first (bounded, `clienthello.py`), its SNI picks the edge in
the `TrustState` the connection started with, then an `SSL.Connection` is made on that edge's
prepared context and the buffered bytes are replayed into it. The context never changes afterwards.

Pumping discipline (the asyncio `sslproto` rules, written down once):

1. Never write empty bytes: `bio_write(b"")` and `SSL_write` of zero bytes are ambiguous in
   OpenSSL (0 means both "nothing" and "error"), so empty input returns early.
2. `WantReadError` from `do_handshake`/`recv` means "need more ciphertext", not an error.
3. Drain the outgoing BIO after every engine call that touched OpenSSL, `recv` included: reading
   can produce output (TLS 1.3 NewSessionTicket after the handshake, KeyUpdate replies, alerts).
   Every method here returns what it drained; callers only forward it.
4. The client's last handshake flight may carry application data in the same read (TLS 1.3:
   Finished + request). After the handshake completes we immediately `recv` until `WantReadError`.
5. `close()` sends close_notify (RFC 8446 §6.1); a peer's close_notify surfaces as
   `PeerClosed(clean=True)`; transport EOF without it as `PeerClosed(clean=False)` (truncation).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from enum import Enum
from typing import Final, NamedTuple

from OpenSSL import SSL
from OpenSSL.crypto import FILETYPE_ASN1, dump_certificate

from edgeproxy.tls.bios import release_handshake_bios
from edgeproxy.tls.clienthello import (
    ClientHelloParser,
    Malformed,
    NeedMore,
    Parsed,
    PlainHttp,
    Unsupported,
)
from edgeproxy.tls.contexts import ChainBook, VerifyRecord
from edgeproxy.tls.membio import incoming, outgoing
from edgeproxy.tls.reasons import classify, error_text, from_verify_error
from edgeproxy.tls.refusal import Refusal, refusal_of
from edgeproxy.tls.session import CERTIFICATE_VERDICTS, Reason, TlsSession, VerifyResult
from edgeproxy.tls.trust import HTTP1, PreparedEdge, TrustState

READ_CHUNK: Final = 16 * 1024 + 256  # one TLS record of plaintext (RFC 8446 §5.1) per recv
BIO_CHUNK: Final = 64 * 1024


def _alert(description: int) -> bytes:
    """A fatal plaintext alert record (RFC 8446 §6), for refusals made before OpenSSL is used."""
    return bytes((21, 3, 3, 0, 2, 2, description))


_ALERT_PROTOCOL_VERSION: Final = _alert(70)
_ALERT_UNRECOGNIZED_NAME: Final = _alert(112)  # RFC 6066 §3
_ALERT_NO_APPLICATION_PROTOCOL: Final = _alert(120)  # RFC 7301 §3.2
# What a plaintext HTTP client gets instead of an alert it cannot read (nginx answers the same
# mistake with a 400): short, fixed, and the connection closes after it.
_PLAIN_HTTP_BODY: Final = b"This port speaks TLS: use https://\n"
PLAIN_HTTP_ANSWER: Final = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_PLAIN_HTTP_BODY), _PLAIN_HTTP_BODY)
)


def _closed_reason(prepared: PreparedEdge) -> Reason:
    """Why an edge without anchors refuses every client: no binding on this network (a
    store-managed edge certificate), or no active version of its CA set."""
    return Reason.NO_BINDING if prepared.edge.unbound else Reason.NO_ACTIVE_VERSION


class State(Enum):
    HELLO = "HELLO"  # reading the ClientHello
    HANDSHAKING = "HANDSHAKING"
    ESTABLISHED = "ESTABLISHED"
    CLOSING = "CLOSING"  # one close_notify sent or received
    CLOSED = "CLOSED"
    FAILED = "FAILED"  # the handshake failed; terminal


_ALLOWED: Final[dict[State, frozenset[State]]] = {
    State.HELLO: frozenset({State.HANDSHAKING, State.FAILED, State.CLOSED}),
    State.HANDSHAKING: frozenset({State.ESTABLISHED, State.FAILED, State.CLOSED}),
    State.ESTABLISHED: frozenset({State.CLOSING, State.CLOSED}),
    State.CLOSING: frozenset({State.CLOSED}),
    State.CLOSED: frozenset(),
    State.FAILED: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


class TlsError(Exception):
    """The engine cannot send: wrong state, or OpenSSL failed; the connection must be dropped."""


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    session: TlsSession


@dataclass(frozen=True, slots=True)
class HandshakeFailed:
    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class PeerClosed:
    clean: bool  # True: close_notify received; False: EOF without it, or a fatal TLS error
    detail: str = ""


Event = HandshakeComplete | HandshakeFailed | PeerClosed


class Output(NamedTuple):
    outgoing: bytes  # ciphertext for the peer, b"" if none
    plaintext: bytes  # decrypted application data, b"" if none
    events: tuple[Event, ...]


_NOTHING: Final = Output(b"", b"", ())


class TlsEngine:
    """One server-side TLS connection. Not thread-safe; one per TCP connection."""

    __slots__ = (
        "_conn",
        "_got_close",
        "_parser",
        "_sent_close",
        "_state",
        "_trust",
        "_verify",
        "edge",
        "failure",
        "session",
        "sni",
    )

    def __init__(self, trust: TrustState) -> None:
        self._trust = trust
        self._state = State.HELLO
        self._parser: ClientHelloParser | None = ClientHelloParser()
        self._conn: SSL.Connection | None = None
        self._verify = VerifyRecord()
        self._sent_close = False
        self._got_close = False
        self.sni: str | None = None
        self.edge: PreparedEdge | None = None
        self.session: TlsSession | None = None
        self.failure: HandshakeFailed | None = None

    @property
    def state(self) -> State:
        return self._state

    @property
    def edge_name(self) -> str | None:
        return None if self.edge is None else self.edge.name

    def __repr__(self) -> str:
        return f"<TlsEngine {self._state.name} sni={self.sni!r} edge={self.edge_name!r}>"

    def _to(self, new: State) -> None:
        if new not in _ALLOWED[self._state]:
            raise IllegalTransition(f"{self._state.name} -> {new.name}")
        self._state = new

    # -- input ---------------------------------------------------------------------------------

    def feed(self, data: bytes) -> Output:
        """Ciphertext from the peer."""
        if not data:
            return _NOTHING
        state = self._state
        if state is State.ESTABLISHED or (state is State.CLOSING and not self._got_close):
            assert self._conn is not None
            self._conn.bio_write(data)
            return self._read(())
        if state is State.HANDSHAKING:
            assert self._conn is not None
            self._conn.bio_write(data)
            return self._handshake()
        if state is State.HELLO:
            return self._hello(data)
        return _NOTHING  # closed, failed, or data after the peer's close_notify: dropped

    def feed_eof(self) -> Output:
        """The transport saw EOF from the peer."""
        state = self._state
        if state is State.HELLO:
            assert self._parser is not None
            seen = len(self._parser.buffered)
            return self._fail(Reason.OTHER, f"EOF after {seen} bytes of ClientHello", b"")
        if state is State.HANDSHAKING:
            reason = classify(None, self._verify.error)
            return self._fail(reason, "EOF during the handshake", self._drain())
        if state is State.ESTABLISHED or (state is State.CLOSING and not self._got_close):
            self._to(State.CLOSED)
            return Output(b"", b"", (PeerClosed(False, "EOF without close_notify"),))
        return _NOTHING

    def refusal(self, reason: Reason) -> Refusal:
        """The facts of this failed handshake for the log; `reason` is the adapter's (a timeout,
        an EOF), which may differ from `failure`'s."""
        detail = self.failure.detail if self.failure is not None else ""
        return refusal_of(reason, detail, self.sni, self.edge, self._verify, self._conn)

    def _hello(self, data: bytes) -> Output:
        parser = self._parser
        assert parser is not None
        outcome = parser.feed(data)
        if isinstance(outcome, NeedMore):
            return _NOTHING
        if isinstance(outcome, Parsed):
            self.sni = outcome.sni
            prepared = self._trust.select(outcome.sni)  # an invalid name is None: the default
            if prepared is None:
                if outcome.sni_invalid:
                    detail = "server name is not a DNS host name"  # never echo what was sent
                else:
                    detail = f"no edge certificate for server name {outcome.sni!r}"
                return self._fail(Reason.SNI_MISMATCH, detail, _ALERT_UNRECOGNIZED_NAME)
            self.edge = prepared
            if outcome.alpn:
                # The server's preference wins (RFC 7301 §3.2 leaves the choice to it).
                offered = outcome.alpn
                chosen = next((p for p in prepared.protocols if p in offered), None)
                if chosen is None:
                    # Never echo the offered names: up to 64 KiB the client chose.
                    detail = f"none of {len(offered)} ALPN protocols offered is spoken here"
                    reason = Reason.NO_APPLICATION_PROTOCOL
                    return self._fail(reason, detail, _ALERT_NO_APPLICATION_PROTOCOL)
                self._verify.alpn = chosen
            elif HTTP1 not in prepared.protocols:  # no ALPN is HTTP/1.1, which this edge refuses
                detail = "no ALPN offered and HTTP/1.1 is not spoken here"
                reason = Reason.NO_APPLICATION_PROTOCOL
                return self._fail(reason, detail, _ALERT_NO_APPLICATION_PROTOCOL)
            conn = SSL.Connection(prepared.context, None)
            conn.set_accept_state()
            conn.set_app_data(self._verify)
            self._conn = conn
            self._parser = None
            self._to(State.HANDSHAKING)
            conn.bio_write(parser.buffered)
            return self._handshake()
        alert = b""  # NotTls: the peer does not speak TLS, an alert would be noise to it
        if isinstance(outcome, PlainHttp):
            alert = PLAIN_HTTP_ANSWER
        elif isinstance(outcome, Unsupported):
            alert = _ALERT_PROTOCOL_VERSION
        elif isinstance(outcome, Malformed):
            alert = _alert(outcome.alert)
        return self._fail(outcome.reason, outcome.detail, alert)

    def _handshake(self) -> Output:
        conn = self._conn
        assert conn is not None
        try:
            conn.do_handshake()
        except SSL.WantReadError:
            return Output(self._drain(), b"", ())
        except SSL.Error as exc:
            reason = classify(exc, self._verify.error)
            return self._fail(reason, error_text(exc), self._drain())
        self._to(State.ESTABLISHED)
        self.session = self._make_session(conn)
        out = self._read((HandshakeComplete(self.session),))
        # The handshake's flights are sent and read: its BIO capacity need not live on.
        release_handshake_bios(conn)
        return out

    def _fail(self, reason: Reason, detail: str, outgoing: bytes) -> Output:
        if self.edge is not None and self.edge.anchors is None and reason in CERTIFICATE_VERDICTS:
            # With no active version (or no binding) every verdict on the certificate is the
            # same fact (docs/management.md "fail closed").
            reason = _closed_reason(self.edge)
        self.failure = HandshakeFailed(reason, detail)
        self._to(State.FAILED)
        self._parser = None
        return Output(outgoing, b"", (self.failure,))

    def _read(self, events: tuple[Event, ...]) -> Output:
        conn = self._conn
        assert conn is not None
        chunks: list[bytes] = []
        try:
            # Only while ciphertext or decrypted bytes wait (membio.UNKNOWN: until WantReadError):
            # a recv that finds nothing costs an exception (membio.py).
            while incoming(conn) != 0 or conn.pending():
                chunks.append(conn.recv(READ_CHUNK))
        except SSL.WantReadError:
            pass
        except SSL.ZeroReturnError:
            self._got_close = True
            events += (PeerClosed(True),)
            self._to(State.CLOSED if self._sent_close else State.CLOSING)
        except SSL.Error as exc:  # a bad record, an unexpected EOF: fatal (RFC 8446 §6.2)
            events += (PeerClosed(False, error_text(exc)),)
            self._to(State.CLOSED)
        if self._sent_close or not chunks:  # after our close_notify nobody reads more
            plaintext = b""
        else:
            plaintext = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return Output(self._drain(), plaintext, events)

    def _drain(self) -> bytes:
        conn = self._conn
        if conn is None:
            return b""
        waiting = outgoing(conn)
        if waiting >= 0:  # known (membio.py): read exactly that, or nothing
            return conn.bio_read(waiting) if waiting else b""
        try:
            data = conn.bio_read(BIO_CHUNK)
        except SSL.WantReadError:
            return b""
        if len(data) < BIO_CHUNK:  # a memory BIO hands out all it holds, up to the size asked
            return data
        parts = [data]
        try:
            while True:
                parts.append(conn.bio_read(BIO_CHUNK))
        except SSL.WantReadError:
            pass
        return b"".join(parts)

    def _make_session(self, conn: SSL.Connection) -> TlsSession:
        prepared = self.edge
        assert prepared is not None
        anchors = prepared.anchors
        # pyOpenSSL's own X509 and its DER: `as_cryptography` would parse each certificate
        # into a cryptography object only to serialise it again.
        leaf = conn.get_peer_certificate()
        chain: tuple[bytes, ...] = ()
        if leaf is not None:
            # Server side, SSL_get_peer_cert_chain omits the leaf; put it first. Certificates
            # beyond the verify depth cannot matter and are not kept (memory per connection).
            rest = conn.get_peer_cert_chain() or []
            depth = prepared.edge.mutual_authentication.verify_depth
            chain = tuple(dump_certificate(FILETYPE_ASN1, c) for c in [leaf, *rest[:depth]])
        record = self._verify
        result, reason = VerifyResult.SUCCESS, None
        if anchors is None:
            result, reason = VerifyResult.FAILED, _closed_reason(prepared)
        elif leaf is None:
            result, reason = VerifyResult.NONE, Reason.NO_CERTIFICATE
        elif record.error is not None:
            result, reason = VerifyResult.FAILED, from_verify_error(record.error)
        elif not record.checked and prepared.edge.mutual_authentication.mode == "request":
            # A resumed session carries a certificate we did not verify now. Resumption is off
            # for `request` contexts, so this is a guard: never report SUCCESS unverified.
            result, reason = VerifyResult.FAILED, Reason.OTHER
        verified: tuple[bytes, ...] = ()
        if result is VerifyResult.SUCCESS:
            verified = _verified_chain(conn, prepared, chain[0])
        return TlsSession(
            edge=prepared.edge,
            sni=self.sni,
            tls_version=conn.get_protocol_version_name(),
            cipher=conn.get_cipher_name() or "",
            peer_chain_der=chain,
            verify_result=result,
            verify_reason=reason,
            ca_set=None if anchors is None else anchors.ca_set,
            ca_set_version=None if anchors is None else anchors.version,
            verified_chain_der=verified,
            alpn=conn.get_alpn_proto_negotiated().decode("ascii", "replace") or None,
            anchors=anchors,
        )

    # -- output --------------------------------------------------------------------------------

    def send(self, data: bytes | bytearray | memoryview) -> bytes:
        """Encrypt application data; returns the ciphertext to write."""
        if self._sent_close or not (
            self._state is State.ESTABLISHED or self._state is State.CLOSING
        ):
            raise TlsError(f"cannot send in state {self._state.name}")
        conn = self._conn
        assert conn is not None
        view = memoryview(data)
        try:
            while view:  # partial-write mode: SSL_write may stop after one record
                view = view[conn.send(view) :]
        except SSL.Error as exc:
            self._to(State.CLOSED)
            raise TlsError(error_text(exc)) from exc
        return self._drain()

    def close(self) -> bytes:
        """Start a clean shutdown: returns close_notify to send. Before the handshake: abort."""
        state = self._state
        if state is State.HELLO or state is State.HANDSHAKING:
            self._to(State.CLOSED)
            self._parser = None
            return b""
        if self._sent_close or not (state is State.ESTABLISHED or state is State.CLOSING):
            return b""
        conn = self._conn
        assert conn is not None
        self._sent_close = True
        # If OpenSSL cannot say it cleanly any more, the transport is closed regardless.
        with contextlib.suppress(SSL.Error):
            conn.shutdown()
        self._to(State.CLOSED if self._got_close else State.CLOSING)
        return self._drain()


def _verified_chain(conn: SSL.Connection, prepared: PreparedEdge, leaf: bytes) -> tuple[bytes, ...]:
    """The chain that validated the client certificate (RFC 9440 section 2.3): leaf first, then
    each issuer up to the trust anchor from the CA set (with partial-chain verification, the first
    certificate of the set met). Never what the client sent after its leaf: a fake issuer or junk
    certificates that OpenSSL did not use appear nowhere. () when unknown."""
    book = prepared.context.get_app_data()
    if not isinstance(book, ChainBook):  # a context build_context did not make
        book = ChainBook(())
    built = conn.get_verified_chain()  # pyOpenSSL's X509: no round trip through cryptography
    if built:  # a full handshake; the leaf is `leaf` already
        issuers = tuple(book.intern(dump_certificate(FILETYPE_ASN1, c)) for c in built[1:])
        # Only contexts that issue tickets can see this leaf again without a handshake.
        if prepared.edge.mutual_authentication.mode == "require":
            book.remember(leaf, issuers)
        return (leaf, *issuers)
    remembered = book.recall(leaf)  # resumed
    return () if remembered is None else (leaf, *remembered)
