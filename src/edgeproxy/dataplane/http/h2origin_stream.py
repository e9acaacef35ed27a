"""One request on an HTTP/2 origin connection (h2c, prior knowledge), as an `OriginLink`.

The exchange machines hand every origin link the request as HTTP/1.1 bytes (links.py): the head
`rewrite_request` made (identity block included) and the body, chunked when its length is
unknown. This link reads them back with llhttp, the parser HTTP/1.1 already uses, and sends them
through the `h2` library as HEADERS, DATA and trailers, so every request is checked and rewritten
by one code path whatever the origin speaks. The response comes back as `OriginOwner` events
(head, body, trailers, end) like an HTTP/1.1 origin's.

Flow control both ways, per stream:

* request DATA waits for the origin's windows; past `PENDING_HIGH` bytes held the owner hears
  `origin_pause_writing` (it stops crediting or reading its client) and, once drained below half,
  `origin_resume_writing`;
* response DATA is credited back to the origin only while the owner reads (`pause_reading` stops
  the credit, `resume_reading` gives it back), so a slow client holds at most one stream window
  of this stream; the connection's window is credited at once (h2origin.py), so one slow client
  never stalls the other streams of the connection.
"""

from __future__ import annotations

import contextlib
from http import HTTPStatus
from typing import Protocol

import httptools
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.exceptions import H2Error

from edgeproxy.dataplane.http.headers import response_trailers
from edgeproxy.dataplane.http.links import OriginOwner

PENDING_HIGH = 64 * 1024  # request bytes held for the origin's window before the owner pauses
STREAM_WINDOW = 128 * 1024  # response bytes the origin may send a stream ahead of our reading
_CREDIT_AT = STREAM_WINDOW // 4  # credit back in steps, not one WINDOW_UPDATE per DATA frame
# Fields HTTP/2 forbids (RFC 9113 section 8.2.2) or that the pseudo-headers carry instead.
_NOT_H2 = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"host"}
)
_TE_TRAILERS = (b"te", b"trailers")
_CHUNKED = (b"transfer-encoding", b"chunked")
_NO_BODY = (204, 304)


class StreamHost(Protocol):
    """What a stream asks of its connection (h2origin.H2OriginConnection)."""

    write_blocked: bool  # the socket towards the origin is full

    @property
    def h2(self) -> H2Connection: ...

    def open_stream(
        self, link: H2OriginStream, headers: list[tuple[bytes, bytes]], end: bool
    ) -> int: ...
    def flush(self) -> None: ...
    def stream_finished(self, link: H2OriginStream, code: ErrorCodes) -> None: ...
    def fail_soon(self, link: H2OriginStream, detail: str) -> None: ...
    def fail_stream(self, link: H2OriginStream, detail: str) -> None: ...


class H2OriginStream:
    """An `OriginLink` on one stream of an `H2OriginConnection` (h2origin.py)."""

    __slots__ = (
        "_credit",
        "_end",
        "_fields",
        "_full",
        "_head_done",
        "_head_only",
        "_method",
        "_out",
        "_parser",
        "_reading_paused",
        "_sent_end",
        "_trailers",
        "_url",
        "conn",
        "finished",
        "got_response",
        "owner",
        "reused",
        "sid",
    )

    def __init__(self, conn: StreamHost, reused: bool) -> None:
        self.conn = conn
        self.reused = reused  # the connection served streams before: it may have just gone
        self.got_response = False
        self.owner: OriginOwner | None = None
        self.sid = 0  # given when the HEADERS go out
        self.finished = False  # the pool's slot is given back
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._method = b""
        self._fields: list[tuple[bytes, bytes]] = []
        self._head_done = False  # llhttp read the whole head: later fields are trailers
        self._trailers: list[tuple[bytes, bytes]] = []
        self._out = bytearray()  # request body waiting for the origin's window
        self._end = False  # the request is complete once `_out` is sent
        self._sent_end = False  # END_STREAM sent
        self._full = False  # the owner was told origin_pause_writing
        self._head_only = False
        self._reading_paused = False
        self._credit = 0  # response bytes read, not yet credited back to the origin

    def __repr__(self) -> str:
        return f"<H2OriginStream {self.sid} finished={self.finished}>"

    # -- links.OriginLink -------------------------------------------------------------------------

    def start(self, owner: OriginOwner, head_only: bool, upgrade: bool) -> None:
        self.owner = owner
        self._head_only = head_only
        self.got_response = False

    def write(self, data: bytes) -> None:
        if self.finished:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # RFC 8441's extended CONNECT is not spoken to origins: a WebSocket gets a 502.
            return self.conn.fail_soon(self, "an upgrade cannot go to an h2c origin")
        except httptools.HttpParserError as exc:
            return self.conn.fail_soon(self, f"request not understood: {exc}")
        if self._head_done and not self.sid:
            self._open(end=False)  # the head is complete and a body follows: send it now
        self._pump()
        self.conn.flush()
        return None

    def write_eof(self) -> None:
        """Only tunnels half-close, and no tunnel runs over an h2c origin."""

    def pause_reading(self) -> None:
        self._reading_paused = True

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self._give_credit(0)
            self.conn.flush()

    def close(self) -> None:
        """The owner lets the stream go: a stream still open is cancelled (RST_STREAM)."""
        self.owner = None
        self.conn.stream_finished(self, ErrorCodes.CANCEL)

    def abort(self) -> None:
        self.close()

    # -- llhttp callbacks (the request, as the exchange machine wrote it) -------------------------

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._head_done:  # a trailer of the chunked body
            self._trailers.append((name.lower(), value))
        else:
            self._fields.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._head_done = True
        self._method = self._parser.get_method()

    def on_body(self, data: bytes) -> None:
        if not self.sid:
            self._open(end=False)
        self._out += data

    def on_message_complete(self) -> None:
        self._end = True
        if not self.sid:
            self._open(end=True)

    # -- sending ------------------------------------------------------------------------------

    def _open(self, end: bool) -> None:
        if self.finished:
            return  # failed meanwhile (the origin connection went away): the owner hears so
        fields, self._fields = self._fields, []
        authority = b""
        headers = [(b":method", self._method), (b":scheme", b"http")]
        rest: list[tuple[bytes, bytes]] = []
        for name, value in fields:
            if name == b"host":
                authority = value
            elif name not in _NOT_H2:
                rest.append((name, value))
        # The edge passes trailers on (to HTTP/2 clients, and chunked to HTTP/1.1 ones), and
        # gRPC servers refuse a request that does not say so.
        headers += ((b":authority", authority), (b":path", self._url), *rest, _TE_TRAILERS)
        self.sid = self.conn.open_stream(self, headers, end)
        if end:
            self._sent_end = True

    def _pump(self) -> None:
        """Request bytes as far as the origin's windows allow; then the end (or trailers)."""
        sid = self.sid
        if not sid or self._sent_end or self.finished:
            return
        h2 = self.conn.h2
        out = self._out
        try:
            while out:
                size = min(h2.local_flow_control_window(sid), h2.max_outbound_frame_size, len(out))
                if size <= 0:
                    break
                last = size == len(out) and self._end and not self._trailers
                h2.send_data(sid, bytes(out[:size]), end_stream=last)
                del out[:size]
                self._sent_end = last
            if not out and self._end and not self._sent_end:
                if self._trailers:
                    h2.send_headers(sid, self._trailers, end_stream=True)
                else:
                    h2.end_stream(sid)
                self._sent_end = True
        except H2Error as exc:  # the origin reset it meanwhile, or a trailer h2 refuses
            return self.conn.fail_soon(self, f"cannot send the request: {exc}")
        self._backpressure()
        return None

    def _backpressure(self) -> None:
        owner = self.owner
        if owner is None:
            return
        held = len(self._out)
        if not self._full and held > PENDING_HIGH:
            self._full = True
            owner.origin_pause_writing()
        elif self._full and held <= PENDING_HIGH // 2:
            self._full = False
            if not self.conn.write_blocked:  # else the socket's resume_writing tells the owner
                owner.origin_resume_writing()

    def transport_blocked(self, blocked: bool) -> None:
        """The socket towards the origin filled (True) or drained (False): every stream's owner
        holds its request bytes meanwhile (one whose own buffer is full stays paused)."""
        owner = self.owner
        if owner is None or self._full:
            return
        if blocked:
            owner.origin_pause_writing()
        else:
            owner.origin_resume_writing()

    def window_opened(self) -> None:
        """The origin gave window (or its transport drained): send what waits."""
        self._pump()

    def _give_credit(self, count: int) -> None:
        self._credit += count
        credit = self._credit
        if self._reading_paused or not credit or (count and credit < _CREDIT_AT):
            return
        self._credit = 0
        if self.sid and not self.finished:
            with contextlib.suppress(H2Error, KeyError):  # closed meanwhile: nothing to credit
                self.conn.h2.increment_flow_control_window(credit, self.sid)

    # -- the origin's events (from H2OriginConnection) ------------------------------------------

    def on_response(self, headers: list[tuple[bytes, bytes]], ended: bool) -> None:
        owner = self.owner
        self.got_response = True
        status = 0
        fields: list[tuple[bytes, bytes]] = []
        has_length = False
        for name, value in headers:
            if name == b":status":
                status = int(value) if value.isdigit() else 0
            elif name[:1] != b":":
                fields.append((name, value))
                has_length = has_length or name == b"content-length"
        if owner is None:
            return
        if not 100 <= status <= 599:
            return self.conn.fail_stream(self, "the origin sent no valid :status")
        reason = _phrase(status)
        if status < 200:
            owner.origin_interim(status, reason, fields)
            return None
        if not (ended or has_length or self._head_only or status in _NO_BODY):
            fields.append(_CHUNKED)  # a body of unknown length: chunked towards HTTP/1.1
        owner.origin_head(status, reason, fields)
        return None

    def on_data(self, data: bytes, flow: int) -> None:
        owner = self.owner
        if owner is not None and data:
            owner.origin_body(data)
        self._give_credit(flow)

    def on_trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        if self.owner is not None:
            self.owner.origin_trailers(response_trailers(headers))

    def on_end(self) -> None:
        """The response is complete. The owner gives the stream back (release) or, when its
        request is still going, lets it go (close: the origin is told to stop reading it)."""
        owner = self.owner
        if owner is not None:
            owner.origin_end(True)

    def failed(self, detail: str) -> None:
        """The stream cannot go on (reset, connection lost, GOAWAY past it); the slot is free."""
        owner, self.owner = self.owner, None
        if owner is not None:
            owner.origin_failed(detail)


def _phrase(status: int) -> bytes:
    """A reason phrase for the HTTP/1.1 status line (HTTP/2 carries none)."""
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""
