"""One HTTP/2 stream as an exchange: the same checks, origin side and record as an HTTP/1.1 request.

The stream's request is turned into the `RequestHead` the HTTP/1.1 parser would have produced
(pseudo-headers become the method, target and Host; cookies are joined, RFC 9113 §8.2.3), then goes
through the very functions HTTP/1.1 uses: `rewrite_request` (hop-by-hop and every inbound identity
field dropped, the identity block appended), `ClientPolicy.admit` (Host against the SNI's edge
certificate: 421; the binding's deny: 403), the body limit (413), the connection's OCSP gate, and
`ClientPolicy.record`. The origin side is the exchange's `OriginState` table and an `OriginLink`
from the edge's pool, exactly as for HTTP/1.1: the stream is the link's `OriginOwner`.

Flow control both ways: request DATA is acknowledged to the client (window credit) only once it
was written to the origin and the origin is not pushing back; response bytes wait for the
client's window, and the origin connection stops being read while they wait.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter
from typing import Protocol

from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.exceptions import ProtocolError

from edgeproxy.config.model import EdgeLimits
from edgeproxy.dataplane.http.exchange import (
    C_CLOSED,
    C_DONE,
    C_FORWARD,
    C_HEAD,
    C_LOCAL,
    O_BUFFERING,
    O_CLOSING,
    O_CONNECTING,
    O_DONE,
    O_GATED,
    O_RECEIVING,
    O_SENDING,
    Exchange,
    body_deadline,
    close_origin,
)
from edgeproxy.dataplane.http.headers import (
    chunked_trailers,
    request_trailers,
    response_fields,
    rewrite_request,
)
from edgeproxy.dataplane.http.links import OriginLink, OriginSource
from edgeproxy.dataplane.http.parser import HttpError, RequestHead
from edgeproxy.dataplane.http.policy import ClientPolicy
from edgeproxy.dataplane.http.problems import PROBLEM_TYPE, local_document

INF = float("inf")
PENDING_HIGH = 64 * 1024  # response bytes held for the client's window before the origin pauses
_CHUNKED = (b"transfer-encoding", b"chunked")
_NOT_SERVED = (b"CONNECT", b"TRACE")


class Connection(Protocol):
    """What a stream asks of its client connection (h2server.Http2Connection)."""

    limits: EdgeLimits
    clock: Callable[[], float]
    policy: ClientPolicy
    client_ip: bytes
    h2: H2Connection
    pool: OriginSource
    blocked: bool  # the client's write buffer is full

    def flush(self) -> None: ...
    def send_pending(self, stream: Stream) -> None: ...
    def credit(self, stream: Stream, count: int) -> None: ...
    def reset(self, stream: Stream, code: ErrorCodes) -> None: ...
    def stream_done(self, stream: Stream, request_unread: bool) -> None: ...
    def stream_deadline(self, when: float) -> None: ...
    def await_revocation(self, stream: Stream) -> None: ...


class Stream:
    """One client stream; `Http2Connection` feeds it the stream's events."""

    __slots__ = (
        "conn",
        "deadline",
        "ended",
        "ex",
        "head_out",
        "in_trailers",
        "origin_full",
        "out",
        "out_end",
        "out_trailers",
        "reading_paused",
        "sid",
        "unacked",
    )

    def __init__(self, conn: Connection, sid: int) -> None:
        self.conn = conn
        self.sid = sid
        self.ex = Exchange()
        self.deadline = INF
        self.out = bytearray()  # response body waiting for the client's flow-control window
        self.out_end = False  # the response is complete once `out` is sent
        self.ended = False  # END_STREAM sent: the response is out
        self.out_trailers: list[tuple[bytes, bytes]] | None = None
        self.head_out: list[tuple[bytes, bytes]] | None = None  # the origin's head, not yet sent
        self.in_trailers: list[tuple[bytes, bytes]] | None = None  # the client's, to pass on
        self.unacked = 0  # request bytes received, not yet credited back to the client
        self.origin_full = False  # the origin's write buffer is full: credit nothing
        self.reading_paused = False  # the origin link is paused for the client's window

    def __repr__(self) -> str:
        ex = self.ex
        return f"<Stream {self.sid} client={ex.client.value} origin={ex.origin.value}>"

    # -- the client's events -------------------------------------------------------------------

    def on_headers(self, headers: list[tuple[bytes, bytes]], ended: bool) -> None:
        ex = self.ex
        conn = self.conn
        limits = conn.limits
        ex.move(C_HEAD)
        ex.t0 = perf_counter()
        pseudo: dict[bytes, bytes] = {}
        fields: list[tuple[bytes, bytes]] = []
        cookies: list[bytes] = []
        size = 0
        host: bytes | None = None
        length = False
        for name, value in headers:
            size += len(name) + len(value) + 32  # RFC 9113 section 6.5.2's accounting
            if name[:1] == b":":
                pseudo[name] = value
            elif name == b"cookie":
                cookies.append(value)
            else:
                if name == b"host":
                    host = value
                elif name == b"content-length":
                    length = True
                fields.append((name, value))
        method = pseudo.get(b":method", b"-")
        path = pseudo.get(b":path", b"-")
        ex.head = head = RequestHead(method, path, "1.1", fields, True, False, False)
        ex.request_done = ended
        if size > limits.max_header_bytes:
            return self.local(431)
        if method in _NOT_SERVED:
            return self.local(405)
        authority = pseudo.get(b":authority")
        if pseudo.get(b":scheme") != b"https" or (path[:1] != b"/" and path != b"*"):
            return self.local(400)
        if authority is not None:
            # RFC 9113 section 8.3.1: a Host that names another entity than :authority is
            # malformed. Either is checked against the edge certificate below.
            if host is not None and host.lower() != authority.lower():
                return self.local(400)
            if host is None:
                fields.append((b"host", authority))
        if cookies:
            fields.append((b"cookie", b"; ".join(cookies)))
        if not ended and not length:
            fields.append(_CHUNKED)  # a body of unknown length: chunked towards HTTP/1.1
        try:
            data, host, size, chunked = rewrite_request(
                head, path, conn.client_ip, conn.policy.identity().header_block
            )
        except HttpError as exc:
            return self.local(exc.status)
        policy = conn.policy
        refused = policy.admit(host, None)
        if refused:
            return self.local(refused)  # 421, or 403 for a client the binding denies
        if policy.authz is not None:
            refused = policy.authorize(ex, method, path)
            if refused:
                return self.local(refused, policy.refusal_reason(ex))
        if size > limits.max_body_bytes:
            return self.local(413)
        ex.body = not ended
        ex.chunked = chunked
        ex.length = size
        ex.move(C_FORWARD)
        ex.sent = data
        ex.to_origin = [data]
        if ex.body:
            ex.body_start = conn.clock()
            self.set_deadline(body_deadline(limits, ex))
        if conn.policy.rev_check is not None:  # OCSP pending or denying: until it settles
            ex.move(O_GATED)
            conn.await_revocation(self)
            return None
        return self.authorised()

    def authorised(self) -> None:
        """The request may go to the origin (the HTTP/1.1 rules of exchange._authorised): meet
        `Expect: 100-continue`, read a small body of known length whole first, else connect."""
        ex = self.ex
        head = ex.head
        if head is not None and head.expect_continue and ex.body and not ex.request_done:
            self.conn.h2.send_headers(self.sid, [(b":status", b"100")])
        if (
            ex.body
            and not ex.request_done
            and 0 <= ex.length <= self.conn.limits.request_buffer_bytes
        ):
            ex.move(O_BUFFERING)
            return
        self._connect()

    def on_data(self, data: bytes, flow: int) -> None:
        ex = self.ex
        ex.bytes_in += len(data)
        self.unacked += flow
        if ex.client is not C_FORWARD:
            self._credit()  # answered already: the body is read and dropped
            return
        if ex.bytes_in > self.conn.limits.max_body_bytes:
            self.local(413)
            return
        if ex.chunked:
            if data:  # an empty chunk would end the body (gRPC half-closes with an empty DATA)
                ex.to_origin += (b"%x\r\n" % len(data), data, b"\r\n")
        else:
            ex.to_origin.append(data)
        if ex.origin is O_BUFFERING:
            self._credit()  # held within request_buffer_bytes: its window is ours to give
            if ex.bytes_in > self.conn.limits.request_buffer_bytes:
                self._connect()
        elif ex.link is not None:
            self._flush_origin()
        self.set_deadline(body_deadline(self.conn.limits, ex))

    def on_trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        """The request's trailers (gRPC clients may send some); `on_end` follows."""
        self.in_trailers = headers

    def on_end(self) -> None:
        ex = self.ex
        ex.request_done = True
        if ex.client is C_FORWARD:
            if ex.chunked:
                trailers = request_trailers(self.in_trailers or ())
                ex.to_origin.append(chunked_trailers(trailers) if trailers else b"0\r\n\r\n")
            if ex.origin is O_BUFFERING:
                self._connect()
            elif ex.link is not None:
                self._flush_origin()
                self.set_deadline(self.conn.clock() + self.conn.limits.origin_read_timeout)
        elif ex.client is C_LOCAL:
            self._maybe_done()

    def reset_by_client(self) -> None:
        """RST_STREAM from the client: the origin side is let go; 499 unless already answered."""
        ex = self.ex
        done = ex.client is C_DONE
        self._close_origin(abort=True)
        if ex.client is not C_CLOSED and not done:
            ex.move(C_CLOSED)
            self.conn.policy.record(ex, 499)

    def connection_gone(self) -> None:
        """The client connection closed with this stream open."""
        self.reset_by_client()

    def expired(self, now: float) -> None:
        """The stream's deadline passed (the listener's sweep, through the connection)."""
        self.deadline = INF
        ex = self.ex
        if ex.client is not C_FORWARD:
            return self.reset(ErrorCodes.CANCEL)
        late = now >= body_deadline(self.conn.limits, ex)
        if ex.body and not ex.request_done and not ex.response_started and late:
            self._close_origin(abort=True)
            return self.local(408)
        if not ex.response_started:
            self._close_origin(abort=True)
            return self.local(504)
        return self.reset(ErrorCodes.CANCEL)  # a stalled response, or a client not reading

    # -- answers -------------------------------------------------------------------------------

    def local(self, status: int, reason: str | None = None) -> None:
        """Answer the stream ourselves; the origin never sees it (HttpConnection._local)."""
        ex = self.ex
        conn = self.conn
        self._close_origin(abort=True)
        if ex.head is None:
            return self.reset(ErrorCodes.PROTOCOL_ERROR)
        if status == 403:
            reason = conn.policy.deny_reason(reason)
        body = local_document(status, reason)
        fields = [
            (b":status", b"%d" % status),
            (b"content-type", PROBLEM_TYPE.encode()),
            (b"content-length", b"%d" % len(body)),
            (b"cache-control", b"no-store"),
        ]
        ex.status = status
        self.head_out = None  # an origin's head not yet sent gives way to this answer
        if ex.client is not C_LOCAL:
            ex.move(C_LOCAL)
        if not self.send_head(fields, end=ex.head.method == b"HEAD"):
            return None
        if ex.head.method != b"HEAD":
            self.out += body
            self.out_end = True
            conn.send_pending(self)
        else:
            self._maybe_done()
        return None

    def reset(self, code: ErrorCodes) -> None:
        ex = self.ex
        self._close_origin(abort=True)
        if ex.client is not C_CLOSED and ex.client is not C_DONE:
            ex.move(C_CLOSED)
            self.conn.policy.record(ex, ex.status if ex.response_started else 499)
        self.conn.reset(self, code)

    def response_sent(self) -> None:
        """The connection sent the response's last frame."""
        self._maybe_done()

    def _maybe_done(self) -> None:
        ex = self.ex
        if ex.client is C_DONE or ex.client is C_CLOSED:
            return
        if not self.ended:
            return  # the response is not out yet
        ex.move(C_DONE)
        self.conn.policy.record(ex, ex.status)
        self.conn.stream_done(self, request_unread=not ex.request_done)

    def send_head(self, fields: list[tuple[bytes, bytes]], end: bool) -> bool:
        """Send a response head; False when h2 refused it and the stream was reset."""
        try:
            self.conn.h2.send_headers(self.sid, fields, end_stream=end)
        except ProtocolError:  # a field HTTP/2 cannot carry (an origin's odd header)
            self.reset(ErrorCodes.INTERNAL_ERROR)
            return False
        if end:
            self.out_end = self.ended = True
        self.ex.bytes_out += sum(len(n) + len(v) for n, v in fields)
        return True

    # -- the origin side -----------------------------------------------------------------------

    def _connect(self) -> None:
        conn = self.conn
        link = conn.pool.take()
        if link is None:
            self.ex.move(O_CONNECTING)
            self.set_deadline(conn.clock() + conn.limits.origin_connect_timeout)
            conn.pool.connect(self)
        else:
            self._attach(link)

    def _attach(self, link: OriginLink) -> None:
        ex = self.ex
        conn = self.conn
        ex.move(O_SENDING)
        ex.link = link
        req = ex.head
        assert req is not None
        link.start(self, req.method == b"HEAD", False)
        if conn.blocked:
            link.pause_reading()
        ex.t_origin = perf_counter()
        deadline = conn.clock() + conn.limits.origin_read_timeout
        if ex.body and not ex.request_done:
            deadline = min(deadline, body_deadline(conn.limits, ex))
        self.deadline = INF
        self.set_deadline(deadline)
        self._flush_origin()

    def _flush_origin(self) -> None:
        ex = self.ex
        buf = ex.to_origin
        link = ex.link
        if buf and link is not None:
            link.write(buf[0] if len(buf) == 1 else b"".join(buf))
            buf.clear()
        if not self.origin_full:
            self._credit()

    def _credit(self) -> None:
        if self.unacked:
            self.conn.credit(self, self.unacked)
            self.unacked = 0

    def _close_origin(self, abort: bool) -> None:
        close_origin(self.ex, abort)

    def set_deadline(self, when: float) -> None:
        self.deadline = when
        self.conn.stream_deadline(when)

    # -- origin.OriginOwner ----------------------------------------------------------------------

    def origin_connected(self, conn: OriginLink) -> None:
        if self.ex.origin is not O_CONNECTING:
            self.conn.pool.release(conn)  # the stream went away: keep the connection for others
            return
        self._attach(conn)
        self.conn.flush()

    def origin_connect_failed(self, timed_out: bool) -> None:
        if self.ex.origin is O_CONNECTING:
            self.local(504 if timed_out else 502)
            self.conn.flush()

    def origin_interim(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        """1xx from the origin: the edge answered any expectation itself; others are dropped."""

    def origin_head(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> bool:
        ex = self.ex
        req = ex.head
        assert req is not None
        fields, until_eof = response_fields(status, headers, head_only=req.method == b"HEAD")
        ex.move(O_CLOSING if until_eof else O_RECEIVING)
        ex.status = status
        self.head_out = fields  # sent by send_pending, with the origin_flush that follows
        return until_eof

    def origin_body(self, data: bytes) -> None:
        self.ex.bytes_out += len(data)
        self.out += data
        if len(self.out) > PENDING_HIGH and not self.reading_paused:
            link = self.ex.link
            if link is not None:
                self.reading_paused = True
                link.pause_reading()

    def origin_trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.out_trailers = headers

    def origin_end(self, keep_alive: bool) -> None:
        ex = self.ex
        if ex.client is not C_FORWARD:
            return
        ex.move(O_DONE)
        link = ex.link
        if link is not None:
            ex.link = None
            if keep_alive and ex.request_done:
                self.conn.pool.release(link)
            else:
                link.close()
        self.out_end = True
        self.deadline = INF
        self.conn.send_pending(self)

    def origin_upgraded(self, data: bytes) -> None:
        self.origin_failed("an upgrade nobody asked for")  # never asked: no upgrade over h2

    def origin_tunnel_data(self, data: bytes) -> None:
        self.origin_failed("tunnel bytes on an HTTP/2 stream")

    def origin_flush(self) -> None:
        ex = self.ex
        if ex.client is C_FORWARD and (ex.origin is O_RECEIVING or ex.origin is O_CLOSING):
            self.conn.send_pending(self)
            self._maybe_resume()  # a read larger than PENDING_HIGH the client's window took
            if not self.out:
                self.set_deadline(self.conn.clock() + self.conn.limits.origin_read_timeout)
        self.conn.flush()

    def origin_failed(self, detail: str) -> None:
        ex = self.ex
        link = ex.link
        ex.link = None
        if ex.client is not C_FORWARD:
            return
        if ex.origin is O_SENDING or ex.origin is O_CONNECTING:
            if link is not None and link.reused and not link.got_response and self._can_retry():
                # A pooled keep-alive the origin had just closed (RFC 9112 section 9.3.1).
                ex.retried = True
                ex.to_origin = [ex.sent]
                self._connect()
            else:
                self.local(502)
        else:
            self.reset(ErrorCodes.INTERNAL_ERROR)  # a truncated response: the stream is cut
        self.conn.flush()

    def _can_retry(self) -> bool:
        ex = self.ex
        return not ex.retried and not ex.body and ex.request_done

    def origin_pause_writing(self) -> None:
        self.origin_full = True

    def origin_resume_writing(self) -> None:
        self.origin_full = False
        self._credit()
        self.conn.flush()

    def window_opened(self) -> None:
        """The client's window grew: send what waits, and read the origin again when drained."""
        self.conn.send_pending(self)
        self._maybe_resume()

    def _maybe_resume(self) -> None:
        if self.reading_paused and len(self.out) <= PENDING_HIGH // 2:
            self.reading_paused = False
            link = self.ex.link
            if link is not None and not self.conn.blocked:
                link.resume_reading()
