"""One HTTP/1.1 client connection as a sans-IO state machine: bytes and events in, bytes out.

Every request is an `Exchange` with two sides, each with its own states (h11-style):

* the **client side** (`ClientState`): the conversation with the client. IDLE (waiting for a
  request) -> HEAD (a head is arriving) -> FORWARD (handed to the origin side) or LOCAL (the edge
  answers itself) -> DONE (the connection goes on with a new exchange), or TUNNEL (WebSocket),
  CLOSING (final response sent, lingering) and CLOSED.
* the **origin side** (`OriginState`): the conversation with the origin about this request.
  IDLE -> GATED (the first request waits for the OCSP answer) -> BUFFERING (a small body is read
  whole first) -> CONNECTING (a new origin
  connection) -> SENDING (request streaming, no response yet) -> RECEIVING (response streaming)
  or CLOSING (a response whose body ends when the origin closes) -> DONE; TUNNEL; CLOSED (let go
  after a failure, or because the client side ended).

Every change of either side goes through `Exchange.move`, which refuses a move the tables below
do not list (`IllegalTransition`, naming both states). Per-request state lives in the exchange,
per-connection state (TLS session, parser, pause reasons, keep-alive) in `HttpConnection`. An
HTTP/2 stream is an exchange too: it reuses both sides and their tables.

No sockets, no event loop here. `HttpConnection` reads from the `RequestReader` (llhttp) it
feeds, writes what the client must receive to a `ClientStream` and what the origin must receive
to an `OriginLink`, asks an `OriginSource` for origin connections, and reads time from a clock:
protocol.py plugs asyncio's transport, pool and loop clock in; the unit tests plug in fakes.
Writes are gathered and flushed once per input (one buffer per read), never per event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import Enum, Flag
from time import perf_counter
from typing import cast

import httptools

from edgeproxy.authz.policy import Decision, Policy
from edgeproxy.config.model import EdgeLimits
from edgeproxy.dataplane.http.headers import (
    CHUNKED,
    RAW,
    UNTIL_CLOSE,
    HostMatcher,
    chunked_trailers,
    normal_host,
    rewrite_request,
    rewrite_response,
)
from edgeproxy.dataplane.http.links import ClientStream, OriginLink, OriginSource
from edgeproxy.dataplane.http.parser import HttpError, RequestHead, RequestReader
from edgeproxy.dataplane.http.policy import ClientPolicy, Shared
from edgeproxy.dataplane.http.problems import local_problem
from edgeproxy.dataplane.http.records import RevocationGate
from edgeproxy.tls.session import TlsSession

log = logging.getLogger(__name__)
INF = float("inf")
LINGER = 2.0  # seconds to drain a client's unread body after a final response (lingering close)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_SCHEMES = (b"http", b"https")


class ClientState(Enum):
    """Where the conversation with the client stands, for one exchange."""

    bit: int  # set below: this state's bit, and the bits of the states it may move to
    moves: int

    IDLE = "idle"  # waiting for a request (keep-alive), or for the first one
    HEAD = "head"  # a request head is arriving
    FORWARD = "forward"  # the request goes to the origin; the origin side says how far
    LOCAL = "local"  # answered by the edge; waiting for the (bodyless) request to end
    DONE = "done"  # response complete; the connection goes on with a new exchange
    TUNNEL = "tunnel"  # WebSocket: bytes piped both ways
    CLOSING = "closing"  # final response sent; discarding input until the client closes
    CLOSED = "closed"


class OriginState(Enum):
    """Where the conversation with the origin stands, for one exchange."""

    bit: int
    moves: int

    IDLE = "idle"  # no origin involved (yet, or at all: answered locally)
    BUFFERING = "buffering"  # a small request body is read whole before any origin connection
    GATED = "gated"  # the request waits for the client certificate's OCSP answer
    CONNECTING = "connecting"  # waiting for a new origin connection
    SENDING = "sending"  # request (head, body) streaming to the origin; no response yet
    RECEIVING = "receiving"  # response streaming to the client
    CLOSING = "closing"  # response streaming; its body ends when the origin closes
    DONE = "done"  # response complete; the origin connection went back to the pool or closed
    TUNNEL = "tunnel"  # WebSocket: bytes piped both ways
    CLOSED = "closed"  # origin connection let go before the response completed


CS, OS = ClientState, OriginState
# The states as module globals: in Python 3.11 `ClientState.IDLE` is a metaclass lookup costing
# more than the rest of a transition, and the keep-alive path makes a dozen of them per request.
C_IDLE, C_HEAD, C_FORWARD, C_LOCAL = CS.IDLE, CS.HEAD, CS.FORWARD, CS.LOCAL
C_DONE, C_TUNNEL, C_CLOSING, C_CLOSED = CS.DONE, CS.TUNNEL, CS.CLOSING, CS.CLOSED
O_IDLE, O_BUFFERING, O_GATED, O_CONNECTING = OS.IDLE, OS.BUFFERING, OS.GATED, OS.CONNECTING
O_SENDING, O_RECEIVING, O_CLOSING = OS.SENDING, OS.RECEIVING, OS.CLOSING
O_DONE, O_TUNNEL, O_CLOSED = OS.DONE, OS.TUNNEL, OS.CLOSED
_CLIENT_MOVES: dict[ClientState, tuple[ClientState, ...]] = {
    # IDLE -> LOCAL: a held-back pipelined request turned out malformed.
    C_IDLE: (C_HEAD, C_LOCAL, C_CLOSING, C_CLOSED),
    C_HEAD: (C_FORWARD, C_LOCAL, C_CLOSING, C_CLOSED),
    # FORWARD -> LOCAL: the origin failed before a response byte (502/504, or a framing error).
    C_FORWARD: (C_LOCAL, C_DONE, C_TUNNEL, C_CLOSING, C_CLOSED),
    C_LOCAL: (C_DONE, C_CLOSING, C_CLOSED),
    C_DONE: (),
    C_TUNNEL: (C_CLOSING, C_CLOSED),
    C_CLOSING: (C_CLOSED,),
    C_CLOSED: (),
}
_ORIGIN_MOVES: dict[OriginState, tuple[OriginState, ...]] = {
    O_IDLE: (O_BUFFERING, O_GATED, O_CONNECTING, O_SENDING, O_CLOSED),
    O_BUFFERING: (O_CONNECTING, O_SENDING, O_CLOSED),
    O_GATED: (O_BUFFERING, O_CONNECTING, O_SENDING, O_CLOSED),
    O_CONNECTING: (O_SENDING, O_CLOSED),
    # SENDING -> CONNECTING | SENDING: a pooled connection the origin had just closed; the
    # request is retried once on another one (RFC 9112 section 9.3.1).
    O_SENDING: (O_RECEIVING, O_CLOSING, O_CONNECTING, O_SENDING, O_CLOSED),
    O_RECEIVING: (O_DONE, O_TUNNEL, O_CLOSED),
    O_CLOSING: (O_DONE, O_CLOSED),
    O_DONE: (),
    O_TUNNEL: (O_CLOSED,),
    O_CLOSED: (),
}
# Each state gets a bit, and the bits of the states it may move to: the check is an int AND
# (Enum hashing is a Python-level call, too slow for a check made several times per request).
for _i, _client in enumerate(_CLIENT_MOVES):
    _client.bit = 1 << _i
for _client, _client_targets in _CLIENT_MOVES.items():
    _client.moves = sum(t.bit for t in _client_targets)
for _i, _origin in enumerate(_ORIGIN_MOVES):
    _origin.bit = 1 << _i
for _origin, _origin_targets in _ORIGIN_MOVES.items():
    _origin.moves = sum(t.bit for t in _origin_targets)
_STARTED = (O_RECEIVING, O_CLOSING, O_DONE, O_TUNNEL)  # a response byte may have left


class IllegalTransition(RuntimeError):
    """A move the state tables do not allow: a bug in the machine, never a client's doing."""

    def __init__(self, current: ClientState | OriginState, target: ClientState | OriginState):
        side = "client" if isinstance(current, ClientState) else "origin"
        super().__init__(f"illegal {side} state change {current.value} -> {target.value}")
        self.current = current
        self.target = target


class Pause(Flag):
    """Why the client's bytes are not being read (several reasons can hold at once)."""

    NONE = 0
    PIPELINED = 1  # a request is in service and the next one is already here: it waits
    AWAITING_REVOCATION = 2  # the request waits for the OCSP answer, before any origin
    AWAITING_ORIGIN = 4  # the request waits for a new origin connection
    ORIGIN_FULL = 8  # the origin's write buffer is full (request body backpressure)


# The machine keeps the reasons as a plain int: Flag arithmetic is a Python-level call per
# operation, and `origin_end` clears ORIGIN_FULL on every request.
_PIPELINED = Pause.PIPELINED.value
_AWAITING_REVOCATION = Pause.AWAITING_REVOCATION.value
_AWAITING_ORIGIN = Pause.AWAITING_ORIGIN.value
_ORIGIN_FULL = Pause.ORIGIN_FULL.value


# Until on_request gives an exchange its own list: nothing is ever added before that, and if a bug
# did add, a tuple fails loudly where a shared list would quietly mix two exchanges' bytes.
_NO_BYTES = cast("list[bytes]", ())


class Exchange:
    """One request and its response: both sides' states and what is counted and held for it.

    The fields are class-level defaults, not slots set in __init__: an exchange is made per
    request, and most fields keep their default for a keep-alive GET, so making one costs an
    allocation and nothing else (the instance gets only what the request changes).
    """

    client: ClientState = C_IDLE
    origin: OriginState = O_IDLE
    head: RequestHead | None = None
    sent = b""  # the origin-bound head, kept for the one retry
    to_origin: list[bytes] = _NO_BYTES  # bytes for the origin, sent once per input
    link: OriginLink | None = None
    body = False  # the request has a body (chunked or Content-Length > 0)
    chunked = False
    length = -1  # the request's Content-Length (-1: none, or chunked)
    body_start = 0.0  # clock time the request head was complete (body deadlines)
    request_done = False  # the whole request has been received
    retried = False
    status = 0
    framing = 0  # the response's framing towards the client (headers.RAW/CHUNKED/...)
    bytes_in = 0
    bytes_out = 0
    t0 = 0.0  # perf_counter at the request's first byte
    t_origin = 0.0  # perf_counter when the request went to an origin connection
    authz: Decision | None = None  # what the binding's authorization rules decided

    def __repr__(self) -> str:
        return f"<Exchange client={self.client.value} origin={self.origin.value}>"

    def move(self, state: ClientState | OriginState) -> None:
        """The one checked transition, for either side."""
        if isinstance(state, ClientState):
            current: ClientState | OriginState = self.client
            if state.bit & current.moves:
                self.client = state
                return
        else:
            current = self.origin
            if state.bit & current.moves:
                self.origin = state
                return
        log.error("%r refused %s -> %s", self, current.value, state.value)
        raise IllegalTransition(current, state)

    @property
    def response_started(self) -> bool:
        return self.client is C_LOCAL or self.origin in _STARTED

    @property
    def response_done(self) -> bool:
        return self.client is C_LOCAL or self.origin is O_DONE


def body_deadline(limits: EdgeLimits, ex: Exchange) -> float:
    """When a request body must be complete: header_timeout seconds of grace, one more second per
    body_min_rate bytes received, never beyond body_timeout (HTTP/1.1 and HTTP/2 alike)."""
    allowance = limits.header_timeout + ex.bytes_in / limits.body_min_rate
    return ex.body_start + min(limits.body_timeout, allowance)


def close_origin(ex: Exchange, abort: bool) -> None:
    """Let the exchange's origin connection go (aborted, or closed) and drop what it still had
    to send; the origin side ends CLOSED unless it had not begun or was done."""
    link = ex.link
    if link is not None:
        ex.link = None
        link.abort() if abort else link.close()
    ex.to_origin = []
    origin = ex.origin
    if origin is not O_IDLE and origin is not O_DONE and origin is not O_CLOSED:
        ex.move(O_CLOSED)


_NO_REQUEST = RequestHead(b"-", b"-", "1.1", [], False, False, False)  # for 400/408/431 records


class HttpConnection:
    """The machine for one client connection: a sequence of exchanges (or one tunnel)."""

    # Slots: thousands of idle keep-alive connections hold one each.
    __slots__ = (
        "_client_blocked",
        "_client_ip",
        "_clock",
        "_close_after",
        "_ctx",
        "_limits",
        "_out",
        "_paused",
        "_peer",
        "_peer_eof",
        "_policy",
        "_pool",
        "_reader",
        "_served",
        "_session",
        "_stream",
        "deadline",
        "ex",
    )

    def __init__(
        self,
        context: Shared,
        session: TlsSession,
        stream: ClientStream,
        *,
        peer: tuple[str, int],
        matcher: HostMatcher,
        pool: OriginSource,
        clock: Callable[[], float],
    ) -> None:
        self._ctx = context
        limits = self._limits = context.limits
        self._session = session
        self._stream = stream
        self._clock = clock
        self._peer = peer
        self._client_ip = peer[0].encode()
        self._pool = pool
        self._paused = 0  # Pause bits
        self._client_blocked = False  # the client's write buffer is full
        self._close_after = context.draining
        self._peer_eof = False  # the client sent EOF (half-close)
        self._out: list[bytes] = []  # bytes for the client, sent once per input
        self._served = 0  # requests begun on this connection (max_requests_per_connection)
        self.ex = Exchange()
        # The enforcement HTTP/2 shares (policy.py): Host, deny/forward, authorization rules,
        # OCSP, identity, access records.
        self._policy = ClientPolicy(context, session, peer, matcher, "h1")
        self._reader = RequestReader(self, limits.max_header_bytes, limits.max_body_bytes)
        self.deadline = clock() + limits.header_timeout  # the listener's sweep reads this

    def __repr__(self) -> str:
        ex = self.ex
        return (
            f"<HttpConnection {self._peer[0]}:{self._peer[1]} client={ex.client.value} "
            f"origin={ex.origin.value} paused={self.paused!r}>"
        )

    @property
    def paused(self) -> Pause:
        return Pause(self._paused)

    # -- input from the client -----------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Bytes from the client."""
        ex = self.ex
        client = ex.client
        if client is C_TUNNEL:
            link = ex.link
            assert link is not None  # a tunnel closes (CLOSING) when its origin goes
            link.write(data)
            self.deadline = self._clock() + self._limits.origin_read_timeout
            return
        if client is C_CLOSING or client is C_CLOSED:
            return  # lingering close: the rest of an unwanted body
        if client is C_IDLE:
            ex.move(C_HEAD)
            ex.t0 = perf_counter()
            self.deadline = self._clock() + self._limits.header_timeout
        reader = self._reader
        reader.feed(data)
        ex = self.ex  # the exchange may have ended (and another begun) inside feed
        if ex.to_origin and ex.link is not None:
            self._flush_origin(ex)
        if reader.backlog and not self._paused & _PIPELINED and ex.client is not C_CLOSING:
            self._pause(_PIPELINED)

    def receive_eof(self) -> bool | None:
        """The client half-closed. True: keep the connection to answer what was asked."""
        self._peer_eof = True
        ex = self.ex
        client = ex.client
        if client is C_TUNNEL and ex.link is not None:
            ex.link.write_eof()
            return True
        if (client is C_FORWARD or client is C_LOCAL) and ex.request_done:
            self._close_after = True  # the client half-closed after its request: still answer
            return True
        self._close_origin(ex, abort=True)
        return None

    def connection_lost(self) -> None:
        ex = self.ex
        client = ex.client
        done = ex.response_done
        if client is not C_CLOSED:
            ex.move(C_CLOSED)
        self._close_origin(ex, abort=True)
        self._reader.detach()
        check = self._policy.rev_check
        if check is not None:
            check.unsubscribe(self._revocation_settled)
        live = client is C_HEAD or client is C_FORWARD or client is C_LOCAL
        if live and ex.head is not None:
            self._record(ex, ex.status if done else 499)  # 499: client went away

    def client_blocked(self, blocked: bool) -> None:
        """The client's write buffer went over (True) or back under (False) its high mark."""
        self._client_blocked = blocked
        link = self.ex.link
        if link is not None:
            if blocked:
                link.pause_reading()
            else:
                link.resume_reading()
        if blocked:  # a client that stops reading is cut off after send_timeout (on_deadline)
            self.deadline = self._clock() + self._limits.send_timeout
        elif link is not None or self.ex.client is C_TUNNEL:
            self.deadline = self._clock() + self._limits.origin_read_timeout

    # -- the listener's deadline sweep and drain (context.Tracked) -----------------------------

    def on_deadline(self, now: float) -> None:
        self.deadline = INF
        ex = self.ex
        client = ex.client
        log.debug("deadline passed: %r", self)
        if client is C_HEAD:
            self._local(408, close=True)
        elif (
            client is C_FORWARD
            and ex.body
            and not ex.request_done
            and not ex.response_started
            and now >= self._body_deadline(ex)
        ):
            # A body too slow or too late: answered here, and the origin connection it was
            # streaming to (if any) is let go rather than left waiting for the rest.
            self._close_origin(ex, abort=True)
            self._local(408, close=True)
        elif client is C_FORWARD and ex.origin is O_SENDING:
            self._close_origin(ex, abort=True)
            self._local(504, close=True)
        else:  # idle keep-alive, a stalled tunnel or response, an unfinished lingering close
            if self._client_blocked:
                self._stream.abort()  # it reads nothing: a graceful close would wait forever
            self._close_now()

    def drain(self) -> None:
        self._close_after = True
        self.close_if_idle()

    def close_after_response(self) -> None:
        """Serve no further request: the response in flight ends with `Connection: close` (or
        closes once complete); with none in flight (idle, a head still arriving, a WebSocket
        tunnel) close now. For a client no longer trusted, or a connection too old."""
        self._close_after = True
        client = self.ex.client
        if client is C_IDLE or client is C_HEAD or client is C_TUNNEL:
            self._close_now()

    def authorization_changed(self, policy: Policy | None) -> None:
        """A reload changed the binding's rules: the next requests are judged by `policy`."""
        self._policy.authorization_changed(policy)

    def close_if_idle(self) -> bool:
        if self.ex.client is C_IDLE and not self._reader.backlog:
            self._close_now()
            return True
        return False

    def abort(self) -> None:
        self._stream.abort()

    # -- RequestReader events (llhttp, one request at a time) ----------------------------------

    def on_request(self, head: RequestHead) -> None:
        ex = self.ex
        if ex.client is C_IDLE:
            ex.move(C_HEAD)
            ex.t0 = perf_counter()
        self.deadline = INF
        ex.head = head
        self._served += 1
        if not head.keep_alive or self._served == self._limits.max_requests_per_connection:
            self._close_after = True  # this response says Connection: close, then we close
        target = head.target
        authority = None
        method = head.method
        if method == b"CONNECT" or method == b"TRACE":
            # TRACE would echo the request, identity fields and all, to whoever can make a
            # browser send it; CONNECT is not a reverse proxy's business.
            return self._local(405, close=method == b"CONNECT")
        try:
            if target[:1] != b"/" and target != b"*":  # absolute-form (RFC 9112 section 3.2.2)
                url = httptools.parse_url(target)
                # Only http(s) names a resource of ours, and credentials in a URL never travel
                # (RFC 9110 section 4.2.4): refuse rather than guess what the rest means.
                if not url.host or url.userinfo or (url.schema or b"").lower() not in _SCHEMES:
                    return self._local(400, close=True)
                authority = normal_host(url.host + (b":%d" % url.port if url.port else b""))
                target = (url.path or b"/") + (b"?" + url.query if url.query else b"")
            data, host, length, chunked = rewrite_request(
                head, target, self._client_ip, self._policy.identity().header_block
            )
        except httptools.HttpParserInvalidURLError:
            return self._local(400, close=True)
        except HttpError as exc:
            return self._local(exc.status, close=True)
        if chunked and head.version == "1.0":
            # HTTP/1.0 has no chunked framing: a 1.0 message with Transfer-Encoding is faulty
            # framing (RFC 9112 section 6.1), and nothing after it on the connection can be
            # trusted to start where the client meant.
            return self._local(400, close=True)
        ex.body = chunked or length > 0
        ex.chunked = chunked
        ex.length = length
        policy = self._policy
        refused = policy.admit(host, authority)
        if refused:
            return self._local(refused)  # 421, or 403 for a client the binding denies
        if policy.authz is not None:
            refused = policy.authorize(ex, method, target)
            if refused:
                return self._local(refused, reason=policy.refusal_reason(ex))
        if length > self._limits.max_body_bytes:
            return self._local(413, close=True)
        if head.upgrade and ex.body:
            # llhttp skips the body of an upgrade request: refuse rather than smuggle it.
            return self._local(400, close=True)
        ex.move(C_FORWARD)
        ex.sent = data
        ex.to_origin = [data]
        if ex.body:
            ex.body_start = self._clock()
            self.deadline = self._body_deadline(ex)
        if policy.rev_check is not None:  # OCSP pending or denying: only until it settles
            return self._await_revocation(ex)
        if ex.body or head.expect_continue:
            return self._authorised(ex)
        self._connect_origin(ex)  # the keep-alive GET: straight on

    def on_request_body(self, data: bytes) -> None:
        ex = self.ex
        ex.bytes_in += len(data)
        if ex.client is C_FORWARD:
            if ex.chunked:
                ex.to_origin += (b"%x\r\n" % len(data), data, b"\r\n")
            else:
                ex.to_origin.append(data)
            if ex.origin is O_BUFFERING and ex.bytes_in > self._limits.request_buffer_bytes:
                self._connect_origin(ex)  # a chunked body outgrew the buffer: stream the rest
            if ex.link is not None:
                # The origin waits on us as long as the client is within its body deadline.
                idle = self._clock() + self._limits.origin_read_timeout
                self.deadline = min(idle, self._body_deadline(ex))
            else:
                self.deadline = self._body_deadline(ex)

    def on_request_end(self) -> None:
        ex = self.ex
        ex.request_done = True
        client = ex.client
        if client is C_FORWARD:
            if ex.chunked:
                ex.to_origin.append(b"0\r\n\r\n")
            if ex.origin is O_BUFFERING:
                self._connect_origin(ex)  # the whole body is in: now the origin
            elif ex.link is not None and ex.body:
                self.deadline = self._clock() + self._limits.origin_read_timeout
        elif client is C_LOCAL:
            self._finish(ex)

    def on_request_error(self, error: HttpError) -> None:
        ex = self.ex
        if ex.client is C_IDLE:  # a pipelined request that was held back
            ex.t0 = perf_counter()
        started = ex.response_started
        self._close_origin(ex, abort=True)
        if started:
            self._close_now()
        else:
            self._local(error.status, close=True)

    # -- origin events (origin.OriginConnection and OriginPool) --------------------------------

    def origin_trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        """Trailers of an HTTP/2 origin's response (origin_end follows): they end a chunked
        body; a body framed by Content-Length or by the close has no room for them."""
        ex = self.ex
        if ex.framing == CHUNKED and headers:
            self._out.append(chunked_trailers(headers))
            ex.framing = RAW  # the last chunk is out: origin_end adds none

    def origin_connected(self, link: OriginLink) -> None:
        ex = self.ex
        if ex.origin is not O_CONNECTING:
            self._pool.release(link)  # the client left: keep the fresh connection for others
            return
        self._unpause(_AWAITING_ORIGIN)
        self._attach(ex, link)
        self._flush_origin(ex)

    def origin_connect_failed(self, timed_out: bool) -> None:
        if self.ex.origin is O_CONNECTING:
            self._unpause(_AWAITING_ORIGIN)
            self._local(504 if timed_out else 502)

    def origin_interim(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        head = self.ex.head
        if status == 100 and head is not None and head.expect_continue:
            return  # the edge answered the expectation itself (and never forwarded it)
        if head is not None and head.version == "1.1":  # no 1xx for HTTP/1.0
            data, _, _ = rewrite_response(
                status, reason, headers, head_only=True, http10=False, close=False
            )
            self._out.append(data)

    def origin_head(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> bool:
        """The final response head; True when its body ends only when the origin closes."""
        ex = self.ex
        req = ex.head
        assert req is not None
        data, framing, until_eof = rewrite_response(
            status,
            reason,
            headers,
            head_only=req.method == b"HEAD",
            http10=req.version == "1.0",
            close=self._close_after or self._ctx.draining or not ex.request_done,
        )
        if framing == UNTIL_CLOSE:
            self._close_after = True
        ex.move(O_CLOSING if until_eof else O_RECEIVING)
        ex.framing = framing
        ex.status = status
        self._out.append(data)
        ex.bytes_out += len(data)
        return until_eof

    def origin_body(self, data: bytes) -> None:
        ex = self.ex
        ex.bytes_out += len(data)
        if ex.framing == CHUNKED:
            self._out += (b"%x\r\n" % len(data), data, b"\r\n")
        else:
            self._out.append(data)

    def origin_end(self, keep_alive: bool) -> None:
        ex = self.ex
        if ex.framing == CHUNKED:
            self._out.append(b"0\r\n\r\n")
        ex.move(O_DONE)
        link = ex.link
        if link is not None:
            ex.link = None
            if self._paused & _ORIGIN_FULL:
                self._unpause(_ORIGIN_FULL)
            if keep_alive and ex.request_done:
                self._pool.release(link)
            else:
                link.close()
        if not ex.request_done:
            self._close_after = True  # answered before the body ended: stop reading it
        self._finish(ex)

    def origin_upgraded(self, data: bytes) -> None:
        ex = self.ex
        ex.move(C_TUNNEL)
        ex.move(O_TUNNEL)
        self._flush_client()
        if data:
            self._stream.write(data)
        rest = self._reader.take_tunnel_bytes()
        if rest:
            link = ex.link
            assert link is not None  # the upgrade came from it
            link.write(rest)
        self._record(ex, 101)
        self._unpause(_PIPELINED)
        self.deadline = self._clock() + self._limits.origin_read_timeout

    def origin_tunnel_data(self, data: bytes) -> None:
        self._stream.write(data)
        if not self._client_blocked:
            self.deadline = self._clock() + self._limits.origin_read_timeout

    def origin_flush(self) -> None:
        """The end of one origin read: send what it produced."""
        if self._out:
            self._flush_client()
        if self._client_blocked:
            return  # the send_timeout deadline stands
        origin = self.ex.origin
        if origin is O_RECEIVING or origin is O_SENDING or origin is O_CLOSING:
            self.deadline = self._clock() + self._limits.origin_read_timeout

    def origin_failed(self, detail: str) -> None:
        ex = self.ex
        link = ex.link
        ex.link = None
        self._unpause(_ORIGIN_FULL)
        origin = ex.origin
        log.debug("origin failed (%s): %r", detail, self)
        if ex.client is C_TUNNEL:
            self._close_now()
        elif origin is not O_SENDING and origin is not O_RECEIVING and origin is not O_CLOSING:
            return
        elif origin is not O_SENDING:
            self._close_now()  # a truncated response: the client sees its framing cut short
        elif link is not None and link.reused and not link.got_response and self._can_retry(ex):
            # A pooled keep-alive the origin had just closed (RFC 9112 section 9.3.1): retry once.
            ex.retried = True
            ex.to_origin = [ex.sent]
            self._connect_origin(ex)
            self._flush_origin(ex)
        else:
            self._local(502)

    def origin_pause_writing(self) -> None:
        self._pause(_ORIGIN_FULL)

    def origin_resume_writing(self) -> None:
        self._unpause(_ORIGIN_FULL)

    # -- steps ---------------------------------------------------------------------------------

    def _await_revocation(self, ex: Exchange) -> None:
        """Hold the request (head and body, reads paused) until the OCSP answer is in
        (docs/dataplane.md)."""
        check = self._policy.rev_check
        assert check is not None
        if check.done:
            return self._apply_revocation(check)
        ex.move(O_GATED)
        self._pause(_AWAITING_REVOCATION)
        check.subscribe(self._revocation_settled)

    def _revocation_settled(self, _future: object) -> None:
        """The answer came in (a later loop iteration). Unless the request is still waiting,
        the connection has been answered or closed meanwhile, and nothing is left to do."""
        check = self._policy.rev_check
        if check is not None and self.ex.origin is O_GATED:
            self._apply_revocation(check)

    def _apply_revocation(self, check: RevocationGate) -> None:
        reason = self._policy.settle(check)
        if reason is not None:
            return self._local(403, close=True, reason=reason)  # the lingering close resumes
        ex = self.ex
        waited = ex.origin is O_GATED
        self._authorised(ex)
        if waited:
            self._unpause(_AWAITING_REVOCATION)
            if ex.link is not None:  # pooled: no origin_connected() to come
                self._flush_origin(ex)

    def _authorised(self, ex: Exchange) -> None:
        """The request may go to the origin: meet `Expect: 100-continue`, then either read a
        small body whole first (no origin connection while it trickles in) or connect now."""
        head = ex.head
        if head is not None and head.expect_continue:
            self._continue(ex)
        if ex.body and not ex.request_done and ex.length <= self._limits.request_buffer_bytes:
            ex.move(O_BUFFERING)  # Content-Length within the buffer, or chunked (-1) so far
            return
        self._connect_origin(ex)

    def _body_deadline(self, ex: Exchange) -> float:
        return body_deadline(self._limits, ex)

    def _connect_origin(self, ex: Exchange) -> None:
        link = self._pool.take()
        if link is None:
            ex.move(O_CONNECTING)
            self._pause(_AWAITING_ORIGIN)
            self._pool.connect(self)
        else:
            self._attach(ex, link)

    def _attach(self, ex: Exchange, link: OriginLink) -> None:
        ex.move(O_SENDING)
        ex.link = link
        req = ex.head
        assert req is not None
        link.start(self, req.method == b"HEAD", req.websocket)
        if self._client_blocked:
            link.pause_reading()
        ex.t_origin = perf_counter()
        deadline = self._clock() + self._limits.origin_read_timeout
        if ex.body and not ex.request_done:
            deadline = min(deadline, self._body_deadline(ex))
        self.deadline = deadline

    def _continue(self, ex: Exchange) -> None:
        """`Expect: 100-continue`, answered by the edge once the request is authorised (Host,
        certificate, size, OCSP): the client sends its body without waiting for the origin,
        which never sees the expectation. HTTP/1.0 clients get no 1xx."""
        head = ex.head
        if head is not None and head.version == "1.1" and ex.body and not ex.request_done:
            self._out.append(CONTINUE)
            self._flush_client()

    def _can_retry(self, ex: Exchange) -> bool:
        return not ex.retried and not ex.body and ex.request_done

    def _local(self, status: int, close: bool = False, reason: str | None = None) -> None:
        """Answer the current request ourselves; the origin never sees it."""
        ex = self.ex
        self._close_origin(ex, abort=True)
        req = ex.head
        if req is None:
            req = ex.head = _NO_REQUEST
        if (ex.body and not ex.request_done) or req.websocket:
            close = True  # an unread body or tunnel bytes follow: the connection cannot go on
        close = close or self._close_after or self._ctx.draining
        if status == 403 and reason is None:
            reason = self._policy.deny_reason()
        data = local_problem(status, reason, close=close, head_only=req.method == b"HEAD")
        self._out.append(data)
        ex.bytes_out += len(data)
        ex.status = status
        self._close_after = close
        if ex.client is not C_LOCAL:
            ex.move(C_LOCAL)
        if ex.request_done or close:
            self._finish(ex)

    def _finish(self, ex: Exchange) -> None:
        """The exchange is over: account for it, then keep the connection alive or close it."""
        self._flush_client()
        self._record(ex, ex.status)
        if self._close_after:
            self._linger_close(ex)
            return
        ex.move(C_DONE)
        reader = self._reader
        if ex.head is not None and ex.head.websocket:
            reader.resume_http()  # the origin answered the upgrade without 101: still HTTP
        ex = self.ex = Exchange()
        self.deadline = self._clock() + self._limits.idle_timeout
        reader.release()  # may run the next pipelined request right now
        ex = self.ex
        if ex.to_origin and ex.link is not None:
            self._flush_origin(ex)
        if ex.client is C_IDLE and reader.in_head:
            ex.move(C_HEAD)
            ex.t0 = perf_counter()
            self.deadline = self._clock() + self._limits.header_timeout
        if self._paused & _PIPELINED and not reader.backlog:
            self._unpause(_PIPELINED)

    def _record(self, ex: Exchange, status: int) -> None:
        self._policy.record(ex, status)

    # -- output --------------------------------------------------------------------------------

    def _flush_client(self) -> None:
        out = self._out
        if out and self.ex.client is not C_CLOSED:
            self._stream.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    def _flush_origin(self, ex: Exchange) -> None:
        buf = ex.to_origin
        link = ex.link
        if buf and link is not None:
            link.write(buf[0] if len(buf) == 1 else b"".join(buf))
            buf.clear()

    def _close_origin(self, ex: Exchange, abort: bool) -> None:
        close_origin(ex, abort)

    def _linger_close(self, ex: Exchange) -> None:
        """Close after a final response without an RST that could destroy it (RFC 9112 §9.6)."""
        ex.move(C_CLOSING)
        stream = self._stream
        if self._paused:
            self._paused = 0
            stream.resume_reading()
        self.deadline = self._clock() + LINGER
        # The TLS adapter's transport cannot half-close: it closes (close_notify) instead.
        if not self._peer_eof and stream.can_write_eof():
            stream.write_eof()
        else:
            stream.close()

    def _close_now(self) -> None:
        ex = self.ex
        self._close_origin(ex, abort=True)
        self._flush_client()
        client = ex.client
        if client is not C_CLOSED:
            if client is not C_CLOSING:
                ex.move(C_CLOSING)
            self._stream.close()

    def _pause(self, why: int) -> None:
        if not self._paused:
            self._stream.pause_reading()
        self._paused |= why

    def _unpause(self, why: int) -> None:
        if self._paused & why:
            self._paused &= ~why
            if not self._paused and self.ex.client is not C_CLOSED:
                self._stream.resume_reading()
