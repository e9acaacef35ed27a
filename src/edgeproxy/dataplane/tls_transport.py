"""The one asyncio adapter of the TLS engine: sockets, timers and backpressure live here.

`TlsServerProtocol` owns the TCP transport. It runs the sans-IO `TlsEngine`, enforces the
ClientHello and handshake deadlines (`EdgeLimits`), reports every handshake outcome to a
`HandshakeObserver`, and once established gives the application protocol the usual asyncio pair:
a `TlsTransport` (write, close, abort, pause_reading, ...) and the `Protocol` callbacks. The
application factory is called with the connection's `TlsSession`: the protocol is handed who the
client is when it is made, and never asks the transport for it.

Flow control: ciphertext goes straight into the TCP transport, whose buffer is the only write
buffer; its high/low water marks pause and resume the application (asyncio semantics), and a hard
cap aborts an application that keeps writing while paused. Reading: the application's
pause_reading pauses the socket; plaintext already decrypted (at most one socket read's worth)
waits for resume_reading.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from time import perf_counter
from typing import Any, Final, Protocol, cast

from edgeproxy.config.model import EdgeLimits
from edgeproxy.tls.engine import (
    HandshakeComplete,
    HandshakeFailed,
    Output,
    PeerClosed,
    State,
    TlsEngine,
    TlsError,
)
from edgeproxy.tls.refusal import Refusal
from edgeproxy.tls.session import Reason, TlsSession
from edgeproxy.tls.trust import TrustState

log = logging.getLogger(__name__)

HIGH_WATER: Final = 64 * 1024
LOW_WATER: Final = 16 * 1024
MAX_WRITE_BUFFER: Final = 4 * 1024 * 1024  # an app that ignores pause_writing is cut off here


class HandshakeObserver(Protocol):
    """Hook for metrics and the access log (docs/dataplane.md, docs/operations.md); called once per
    connection."""

    def handshake_done(self, session: TlsSession, duration: float) -> None: ...

    def handshake_failed(self, refusal: Refusal, duration: float, peer: Any) -> None: ...


class NullObserver:
    def handshake_done(self, session: TlsSession, duration: float) -> None:
        pass

    def handshake_failed(self, refusal: Refusal, duration: float, peer: Any) -> None:
        pass


class TlsTransport(asyncio.Transport):
    """What the application protocol sees: plaintext in and out over one TLS connection."""

    __slots__ = ("_tls",)

    def __init__(self, tls: TlsServerProtocol) -> None:  # no super().__init__: no _extra dict
        self._tls = tls

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._tls._write(data)

    def close(self) -> None:
        """close_notify, then the TCP transport closes once its buffer is flushed."""
        self._tls._close()

    def abort(self) -> None:
        self._tls._abort()

    def is_closing(self) -> bool:
        return self._tls._closing

    def pause_reading(self) -> None:
        self._tls._pause_reading()

    def resume_reading(self) -> None:
        self._tls._resume_reading()

    def is_reading(self) -> bool:
        return not self._tls._app_paused and not self._tls._closing

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        # A deliberate refusal (can_write_eof says so): a TLS close_notify ends both directions
        # for most peers, so applications close instead of half-closing.
        raise RuntimeError("use close(): TLS half-close is not offered to applications")

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._tls._tcp_transport().set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._tls._tcp_transport().get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._tls._tcp_transport().get_write_buffer_limits()

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._tls._app is not None
        return self._tls._app

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._tls._app = protocol

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._tls._tcp_transport().get_extra_info(name, default)


class TlsServerProtocol(asyncio.Protocol):
    """One accepted TCP connection: TLS server side, then the application protocol on top."""

    __slots__ = (
        "_app",
        "_app_factory",
        "_app_paused",
        "_closing",
        "_engine",
        "_limits",
        "_loop",
        "_observer",
        "_pending",
        "_pending_eof",
        "_received",
        "_reported",
        "_started",
        "_tcp",
        "_timer",
        "_trust",
        "_write_paused",
    )

    def __init__(
        self,
        trust: Callable[[], TrustState],
        app_factory: Callable[[TlsSession], asyncio.Protocol],
        limits: EdgeLimits,
        observer: HandshakeObserver | None = None,
    ) -> None:
        self._trust = trust
        self._app_factory = app_factory
        self._limits = limits
        self._observer: HandshakeObserver = observer or NullObserver()
        self._tcp: asyncio.Transport | None = None
        self._engine: TlsEngine
        self._app: asyncio.Protocol | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._started = 0.0
        self._reported = False
        self._received = False  # any byte from the client yet
        self._closing = False
        self._app_paused = False  # the application asked pause_reading
        self._write_paused = False  # the TCP transport is above its high water mark
        self._pending = b""  # plaintext decrypted while the application was paused
        self._pending_eof = False

    def __repr__(self) -> str:
        engine = getattr(self, "_engine", None)
        return f"<TlsServerProtocol {engine!r} closing={self._closing}>"

    def _tcp_transport(self) -> asyncio.Transport:
        assert self._tcp is not None
        return self._tcp

    def _loop_(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    # -- TCP side ------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport implements the interface without subclassing asyncio.Transport.
        tcp = self._tcp = cast(asyncio.Transport, transport)
        tcp.set_write_buffer_limits(HIGH_WATER, LOW_WATER)
        self._engine = TlsEngine(self._trust())  # read once: the connection keeps it for life
        loop = self._loop = asyncio.get_running_loop()
        # Durations on perf_counter: uvloop's loop.time() ticks in whole milliseconds.
        self._started = perf_counter()
        limits = self._limits
        first = min(limits.client_hello_timeout, limits.handshake_timeout)
        self._timer = loop.call_later(first, self._on_timeout)

    def data_received(self, data: bytes) -> None:
        engine = self._engine
        if self._app is not None:  # established: the per-request path
            self._process(engine.feed(data))
            return
        self._received = True
        was_hello = engine.state is State.HELLO
        self._process(engine.feed(data))
        if was_hello and engine.state is State.HANDSHAKING:
            limits = self._limits
            if limits.handshake_timeout > limits.client_hello_timeout and self._timer is not None:
                self._timer.cancel()
                remaining = limits.handshake_timeout - (perf_counter() - self._started)
                self._timer = self._loop_().call_later(max(remaining, 0.0), self._on_timeout)

    def eof_received(self) -> bool:
        return self._process(self._engine.feed_eof())

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._closing = True
        if not self._reported and self._app is None:
            self._report_failure(Reason.OTHER)
        app, self._app = self._app, None
        if app is not None:
            app.connection_lost(exc)
        self._tcp = None

    def pause_writing(self) -> None:
        self._write_paused = True
        if self._app is not None:
            self._app.pause_writing()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._app is not None:
            self._app.resume_writing()

    # -- engine output -------------------------------------------------------------------------

    def _process(self, out: Output) -> bool:
        """Apply one engine output. Returns True to keep a half-closed TCP transport open."""
        tcp = self._tcp
        assert tcp is not None
        if out.outgoing and not tcp.is_closing():
            tcp.write(out.outgoing)
        peer_closed: PeerClosed | None = None
        for event in out.events:
            if isinstance(event, HandshakeComplete):
                self._on_established(event.session)
            elif isinstance(event, HandshakeFailed):
                self._cancel_timer()
                self._report_failure(event.reason)
                self._closing = True
                tcp.close()
            else:
                peer_closed = event
        if out.plaintext:
            self._deliver(out.plaintext)
        if peer_closed is not None:
            return self._peer_closed()
        return False

    def _on_established(self, session: TlsSession) -> None:
        self._cancel_timer()
        self._reported = True
        self._observer.handshake_done(session, perf_counter() - self._started)
        app = self._app = self._app_factory(session)
        app.connection_made(TlsTransport(self))
        if self._write_paused:
            app.pause_writing()

    def _deliver(self, plaintext: bytes) -> None:
        if self._app is None or self._closing:
            return
        if self._app_paused:
            self._pending += plaintext
            return
        self._app.data_received(plaintext)

    def _peer_closed(self) -> bool:
        if self._app is None or self._closing:
            return False
        if self._app_paused:
            self._pending_eof = True
            return True
        if self._app.eof_received():
            return True  # the application keeps writing; it will close
        self._close()
        return True  # _close() closes the TCP transport after flushing close_notify

    def _on_timeout(self) -> None:
        self._timer = None
        if self._engine.state in (State.HELLO, State.HANDSHAKING) and not self._reported:
            self._report_failure(Reason.TIMEOUT)
            self._engine.close()
            self._abort()

    def _report_failure(self, reason: Reason) -> None:
        if self._reported:
            return
        self._reported = True
        if not self._received and reason is Reason.OTHER:
            # Connected and closed without a byte: a port probe or a health check, not a
            # handshake. Counting it would bury real failures under load-balancer noise.
            return
        engine = self._engine
        duration = perf_counter() - self._started
        peer = self._tcp.get_extra_info("peername") if self._tcp is not None else None
        self._observer.handshake_failed(engine.refusal(reason), duration, peer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- application side (called through TlsTransport) ----------------------------------------

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        tcp = self._tcp
        assert tcp is not None
        ignoring_pause = self._write_paused  # one large write is fine; writing on while paused not
        try:
            tcp.write(self._engine.send(data))
        except TlsError as exc:
            log.debug("TLS write failed: %s", exc)
            self._abort()
            return
        if ignoring_pause and tcp.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.warning("write buffer over %d bytes while paused: aborting", MAX_WRITE_BUFFER)
            self._abort()

    def _close(self) -> None:
        if self._closing:
            return
        self._closing = True
        tcp = self._tcp
        assert tcp is not None
        close_notify = self._engine.close()
        if close_notify and not tcp.is_closing():
            tcp.write(close_notify)
        tcp.close()

    def _abort(self) -> None:
        self._closing = True
        if self._tcp is not None:
            self._tcp.abort()

    def _pause_reading(self) -> None:
        if not self._app_paused:
            self._app_paused = True
            if self._tcp is not None and not self._closing:
                self._tcp.pause_reading()

    def _resume_reading(self) -> None:
        if not self._app_paused:
            return
        self._app_paused = False
        pending, self._pending = self._pending, b""
        if pending and self._app is not None and not self._closing:
            self._app.data_received(pending)
        if self._app_paused:  # paused again from inside data_received
            return
        if self._pending_eof:
            self._pending_eof = False
            self._peer_closed()
        elif self._tcp is not None and not self._closing:
            self._tcp.resume_reading()
