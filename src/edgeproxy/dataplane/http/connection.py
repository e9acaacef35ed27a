"""State, buffers and closing discipline shared by the two halves of a proxied connection.

`ProxyProtocol` (proxy.py) is the client half and `OriginSide` (upstream.py) the origin half of
one object per client connection; this base holds what both touch: the state machine, the write
buffers flushed once per read, the reasons client reads are paused, and the ways to close.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from enum import Enum
from time import perf_counter

from edgeproxy.dataplane.http.context import (
    AccessRecord,
    ConnectionFacts,
    ProxyContext,
    RevocationGate,
)
from edgeproxy.dataplane.http.headers import HostMatcher
from edgeproxy.dataplane.http.identity import ClientIdentity
from edgeproxy.dataplane.http.origin import OriginConnection, OriginPool
from edgeproxy.dataplane.http.parser import RequestHead, RequestReader
from edgeproxy.tls.session import TlsSession

log = logging.getLogger(__name__)
INF = float("inf")
LINGER = 2.0  # seconds to drain a client's unread body after a final response (lingering close)
BUSY, CONNECT, ORIGIN = 1, 2, 4  # why client reads are paused (bits); CONNECT also covers
# the wait for a revocation answer: both hold the request before any origin connection exists


class State(Enum):
    IDLE = "idle"  # waiting for a request (keep-alive), or for the first one
    HEAD = "head"  # a request head is arriving
    REVOCATION = "revocation"  # first request: waiting for the OCSP answer, before the origin
    CONNECTING = "connecting"  # waiting for a new origin connection
    EXCHANGE = "exchange"  # request and response streaming through an origin connection
    LOCAL = "local"  # answered locally; waiting for the (bodyless) request to end
    TUNNEL = "tunnel"  # WebSocket: bytes piped both ways
    CLOSING = "closing"  # final response sent; discarding input until the client closes
    CLOSED = "closed"


S = State
_MOVES = {
    S.IDLE: (S.HEAD, S.REVOCATION, S.CONNECTING, S.EXCHANGE, S.LOCAL),
    S.HEAD: (S.REVOCATION, S.CONNECTING, S.EXCHANGE, S.LOCAL),
    S.REVOCATION: (S.CONNECTING, S.EXCHANGE, S.LOCAL),
    S.CONNECTING: (S.EXCHANGE, S.LOCAL),
    S.EXCHANGE: (S.IDLE, S.CONNECTING, S.EXCHANGE, S.LOCAL, S.TUNNEL),
    S.LOCAL: (S.IDLE,),
    S.TUNNEL: (),
    S.CLOSING: (),
    S.CLOSED: (),
}
# Each state gets a bit, and the bits of the states it may move to: the check is an int AND
# (Enum hashing is a Python-level call, too slow for a check made twice per request).
for _i, _state in enumerate(State):
    _state.bit = 1 << _i  # type: ignore[attr-defined]
for _state, _targets in _MOVES.items():
    _state.moves = sum(t.bit for t in _targets)  # type: ignore[attr-defined]


class ConnectionBase(asyncio.Protocol, abc.ABC):
    # Slots: ~40 fields per connection, held by thousands of idle keep-alive connections.
    __slots__ = (
        "_bytes_in",
        "_bytes_out",
        "_client_blocked",
        "_client_ip",
        "_close_after",
        "_ctx",
        "_deny",
        "_facts",
        "_framing",
        "_identity",
        "_last_host",
        "_limits",
        "_loop",
        "_matcher",
        "_origin",
        "_out",
        "_paused",
        "_peer",
        "_peer_eof",
        "_pool",
        "_reader",
        "_req",
        "_req_body",
        "_req_bytes",
        "_req_chunked",
        "_req_done",
        "_resp_done",
        "_resp_started",
        "_retried",
        "_rev_check",
        "_rev_status",
        "_session",
        "_state",
        "_status",
        "_t0",
        "_t_origin",
        "_to_origin",
        "_transport",
        "deadline",
    )

    def __init__(self, context: ProxyContext) -> None:
        self._ctx = context
        self._limits = context.limits
        self._state = S.IDLE
        self.deadline = INF  # the context's sweep calls on_deadline() once this has passed
        self._transport: asyncio.Transport = None  # type: ignore[assignment]
        self._session: TlsSession = None  # type: ignore[assignment]
        self._loop: asyncio.AbstractEventLoop
        self._reader: RequestReader
        self._pool: OriginPool
        self._peer = ("", 0)
        self._client_ip = b""
        self._deny = True  # until the TLS session says otherwise
        self._matcher: HostMatcher
        self._last_host = b""  # the last Host that matched: one bytes compare per request
        self._identity: ClientIdentity | None = None
        self._facts: ConnectionFacts | None = None  # the access records' per-connection part
        # OCSP (docs/dataplane.md): a pending or denying check, None once settled (the keep-alive
        # fast path);
        # the status goes to every access record of the connection.
        self._rev_check: RevocationGate | None = None
        self._rev_status = "not_checked"
        self._paused = 0
        self._client_blocked = False  # the client's write buffer is full
        self._close_after = False
        self._peer_eof = False  # the client sent EOF (half-close)
        self._out: list[bytes] = []  # bytes for the client, sent once per read
        self._to_origin: list[bytes] = []  # bytes for the origin, sent once per read
        self._origin: OriginConnection | None = None
        self._req: RequestHead | None = None
        self._req_bytes = b""
        self._t0 = 0.0
        self._reset_exchange()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._state.value} {self._peer[0]}:{self._peer[1]}>"

    def _to(self, state: State) -> None:
        """Checked transitions; CLOSING and CLOSED are entered directly (always legal)."""
        if not state.bit & self._state.moves:  # type: ignore[attr-defined]
            raise RuntimeError(f"illegal HTTP state change {self._state.value} -> {state.value}")
        self._state = state

    def pause_writing(self) -> None:
        self._client_blocked = True
        if self._origin is not None:
            self._origin.pause_reading()

    def resume_writing(self) -> None:
        self._client_blocked = False
        if self._origin is not None:
            self._origin.resume_reading()

    def _reset_exchange(self) -> None:
        self._req_done = self._req_body = self._req_chunked = False
        self._resp_started = self._resp_done = self._retried = False
        self._bytes_in = self._bytes_out = self._status = self._framing = 0
        self._t_origin = 0.0

    def drain(self) -> None:
        self._close_after = True
        self.close_if_idle()

    def close_if_idle(self) -> bool:
        if self._state is S.IDLE and not self._reader.backlog:
            self._close_now()
            return True
        return False

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # The exchange steps the concrete protocol (ProxyProtocol) defines.
    @abc.abstractmethod
    def _finish(self) -> None: ...

    @abc.abstractmethod
    def _local(self, status: int, close: bool = False, reason: str | None = None) -> None: ...

    def _client_identity(self) -> ClientIdentity:
        identity = self._identity
        if identity is None:  # once per connection: the TLS session does not change
            identity = self._identity = self._ctx.identities.get(self._session)
        return identity

    def _connection_facts(self) -> ConnectionFacts:
        facts = self._facts
        if facts is None:  # once per connection: the TLS session does not change
            session = self._session
            identity = self._client_identity()
            facts = self._facts = ConnectionFacts(
                client_address=self._peer[0],
                client_port=self._peer[1],
                edge_certificate=session.edge.name,
                sni=session.sni,
                tls_version=session.tls_version,
                client_subject=identity.subject,
                client_serial=identity.serial,
                client_fingerprint_sha256=identity.fingerprint_sha256,
                verify_result=session.verify_result.value,
                verify_reason=session.verify_reason,
                ca_set=session.ca_set,
                ca_set_version=session.ca_set_version,
            )
        return facts

    def _record(self, status: int) -> None:
        observer = self._ctx.observer
        req = self._req
        if observer is None or req is None:
            return
        # Durations on perf_counter: uvloop's loop.time() ticks in whole milliseconds.
        now = perf_counter()
        t_origin = self._t_origin
        record = AccessRecord(
            time.time() - (now - self._t0),
            self._facts or self._connection_facts(),
            req.method.decode("latin-1"),
            req.target.decode("latin-1"),
            status,
            self._bytes_in,
            self._bytes_out,
            now - self._t0,
            now - t_origin if t_origin else None,
            self._rev_status,
        )
        try:
            observer.request_done(record)
        except Exception:  # a broken log or metrics sink must not break proxying
            log.exception("request observer failed")

    def _flush_client(self) -> None:
        out = self._out
        if out and self._state is not S.CLOSED:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    def _flush_origin(self) -> None:
        buf = self._to_origin
        if buf and self._origin is not None:
            self._origin.write(buf[0] if len(buf) == 1 else b"".join(buf))
            buf.clear()

    def _close_origin(self, abort: bool) -> None:
        conn, self._origin = self._origin, None
        if conn is not None:
            conn.abort() if abort else conn.close()
        self._to_origin = []

    def _linger_close(self) -> None:
        """Close after a final response without an RST that could destroy it (RFC 9112 §9.6)."""
        self._state = S.CLOSING
        transport = self._transport
        if self._paused:
            self._paused = 0
            transport.resume_reading()
        self.deadline = self._loop.time() + LINGER
        # write_eof is optional: the TLS adapter's transport offers close() only.
        can_write_eof = getattr(transport, "can_write_eof", None)
        if not self._peer_eof and can_write_eof is not None and can_write_eof():
            transport.write_eof()
        else:
            transport.close()

    def _close_now(self) -> None:
        self._close_origin(abort=True)
        self._flush_client()
        if self._state is not S.CLOSED:
            self._state = S.CLOSING
            self._transport.close()

    def _pause(self, why: int) -> None:
        if not self._paused:
            self._transport.pause_reading()
        self._paused |= why

    def _unpause(self, why: int) -> None:
        if self._paused & why:
            self._paused &= ~why
            if not self._paused and self._state is not S.CLOSED:
                self._transport.resume_reading()
