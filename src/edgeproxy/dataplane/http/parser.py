"""Sans-IO HTTP/1.1 request framing on llhttp (httptools): bytes in, one request's events out.

llhttp parses everything it is fed, so several pipelined requests in one read all fire their
callbacks in one `feed_data` call, and httptools cannot pause it. The framing here keeps the
"one request at a time" promise itself:

* events of the *current* request go straight to the sink (the fast path, no queue);
* once the current request is complete the reader is *blocked*: events of requests parsed from the
  rest of that read are queued, and bytes fed afterwards are kept raw, unparsed, until the proxy
  calls `release()` after the response. The owner pauses the transport meanwhile, so what is held
  is bounded by one read (and `max_backlog` as a hard stop);
* a WebSocket upgrade stops parsing for good: what follows the request is tunnel bytes.

Limits: the request line and headers are counted exactly as llhttp hands them over, and also by
bytes fed while a head is incomplete, so a header dribbled in small pieces cannot grow without
bound inside httptools (431). Body bytes are counted whatever the framing (413).
"""

from __future__ import annotations

import re
from collections import deque
from typing import Protocol

import httptools

# One element of an Upgrade list (RFC 9110 section 7.8): protocol-name ["/" protocol-version].
_PROTOCOL = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:/[!#$%&'*+.^_`|~0-9A-Za-z-]+)?")


def asks_websocket(upgrade: bytes) -> bool:
    """Does an Upgrade value ask for WebSocket? Only the exact token `websocket` (any case) in a
    well-formed list: `notwebsocket-evil`, `websocket2` or a list with junk in it do not."""
    found = False
    for item in upgrade.split(b","):
        item = item.strip(b" \t")
        if not item:
            continue  # empty list elements are allowed, and mean nothing
        if _PROTOCOL.fullmatch(item) is None:
            return False
        found = found or item.lower() == b"websocket"
    return found


class HttpError(Exception):
    """A request the proxy answers itself with `status` and then closes (400, 413, 431)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class RequestHead:
    """One parsed request head, as received (bytes; header names in their original case)."""

    __slots__ = (
        "expect_continue",
        "headers",
        "keep_alive",
        "method",
        "target",
        "upgrade",
        "version",
        "websocket",
    )

    def __init__(
        self,
        method: bytes,
        target: bytes,
        version: str,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        upgrade: bool,
        websocket: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.version = version  # "1.1" | "1.0"
        self.headers = headers
        self.keep_alive = keep_alive  # llhttp's verdict: version and Connection considered
        self.upgrade = upgrade  # llhttp saw Upgrade + Connection: upgrade (or CONNECT)
        self.websocket = websocket  # ... and the protocol asked for is websocket
        self.expect_continue = False  # `Expect: 100-continue` (set by headers.rewrite_request)


class RequestSink(Protocol):
    def on_request(self, head: RequestHead) -> None: ...
    def on_request_body(self, data: bytes) -> None: ...
    def on_request_end(self) -> None: ...
    def on_request_error(self, error: HttpError) -> None: ...


# An event held while the sink is blocked: the head, a body chunk, the end (None) or the error.
_Held = RequestHead | bytes | HttpError | None


class RequestReader:
    """Feeds llhttp and delivers one request's events at a time to a `RequestSink`."""

    __slots__ = (
        "_blocked",
        "_body_bytes",
        "_dead",
        "_error",
        "_head_bytes",
        "_headers",
        "_in_head",
        "_max_backlog",
        "_max_body",
        "_max_head",
        "_parser",
        "_pending",
        "_queue",
        "_raw",
        "_running",
        "_sink",
        "_stopped",
        "_url",
        "_websocket",
    )

    def __init__(
        self, sink: RequestSink, max_header_bytes: int, max_body_bytes: int, max_backlog: int = 0
    ) -> None:
        self._sink = sink
        self._parser = httptools.HttpRequestParser(self)
        self._max_head = max_header_bytes
        self._max_body = max_body_bytes
        # Bytes that may wait unparsed behind an in-flight request: a few reads' worth.
        self._max_backlog = max_backlog or max(1 << 20, 4 * max_header_bytes)
        self._queue: deque[_Held] | None = None  # made on first use: it is rare
        self._raw = bytearray()
        self._blocked = False  # the current request is complete; the next waits for release()
        self._running = False  # inside feed/release: a nested release() must not re-enter llhttp
        self._stopped = False  # WebSocket upgrade seen: nothing more is HTTP
        self._dead = False  # an error was delivered (or queued): nothing more is parsed
        self._in_head = False
        self._pending = 0  # bytes fed since llhttp last reported progress (a callback)
        self._head_bytes = 0
        self._body_bytes = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._url = b""
        self._error: HttpError | None = None
        self._websocket = False

    @property
    def in_head(self) -> bool:
        """A request head has begun and is not complete yet."""
        return self._in_head

    @property
    def backlog(self) -> int:
        """Bytes and events held back behind the current request (0 on the fast path)."""
        return len(self._raw) + (len(self._queue) if self._queue else 0)

    def feed(self, data: bytes) -> None:
        if self._blocked or self._stopped or self._running or self._raw or self._dead:
            if not self._dead:
                self._raw += data
                if len(self._raw) > self._max_backlog:
                    self._fail(HttpError(400, "too much pipelined data"))
            return
        self._running = True
        try:
            if len(data) > self._max_head:
                self._parse_pieces(data)
            else:
                self._parse(data)
            if self._queue or self._raw:
                self._drain()
        finally:
            self._running = False

    def release(self) -> None:
        """The current exchange is over: deliver the next request, if any is waiting."""
        self._blocked = False
        if not self._running and (self._queue or self._raw):
            self._running = True
            try:
                self._drain()
            finally:
                self._running = False

    def detach(self) -> None:
        """The connection is gone. llhttp holds our bound callbacks and we hold the sink that
        holds us: drop both ends, so the connection is freed at once by reference counting
        rather than by a full garbage collection that stalls the event loop."""
        self._dead = True
        self._queue = None
        self._raw.clear()
        del self._parser, self._sink

    def resume_http(self) -> None:
        """The origin refused the upgrade (no 101): what follows the request is HTTP after all.
        llhttp stopped at the upgrade for good, so a fresh parser takes over."""
        if self._stopped:
            self._stopped = False
            self._parser = httptools.HttpRequestParser(self)

    def take_tunnel_bytes(self) -> bytes:
        """After a WebSocket upgrade: the client bytes that followed the request head."""
        data = bytes(self._raw)
        self._raw.clear()
        return data

    def _drain(self) -> None:
        """Deliver held-back events, then parse held-back bytes, until blocked again."""
        while not self._blocked:
            if self._queue:
                self._dispatch(self._queue.popleft())
            elif self._raw and not self._stopped and not self._dead:
                data = bytes(self._raw)
                self._raw.clear()
                self._parse_pieces(data)
            else:
                break

    def _parse_pieces(self, data: bytes) -> None:
        """A large read goes to llhttp in pieces of at most max_header_bytes, so that a run of
        bytes it swallows without a callback (a chunk extension, a trailer) is caught after at
        most two pieces, whatever the sizes of the reads that carried it."""
        step = self._max_head
        for start in range(0, len(data), step):
            if self._dead:
                return
            if self._stopped:  # WebSocket upgrade: the rest is tunnel bytes
                self._raw += data[start:]
                return
            self._parse(data[start : start + step])

    def _parse(self, data: bytes) -> None:
        self._pending += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            rest = data[exc.args[0] :]
            if self._websocket:
                self._stopped = True
                self._raw += rest
            elif rest:
                # Not a protocol we tunnel: the request had no body (checked by the proxy), so
                # what follows is the next pipelined request.
                self._parse(rest)
        except httptools.HttpParserError as exc:
            error = self._error or HttpError(400, f"malformed request: {exc}")
            self._fail(error)
        else:
            # Bytes llhttp swallowed without a callback: a header line, a trailer or a chunk
            # extension that grows inside httptools; bound it like a head.
            if self._pending > self._max_head:
                if self._in_head:
                    self._fail(HttpError(431, "request header fields too large"))
                else:
                    self._fail(HttpError(400, "oversized chunk metadata or trailer"))

    def _fail(self, error: HttpError) -> None:
        if not self._dead:
            self._dead = True
            if self._blocked:
                self._hold(error)
            else:
                self._dispatch(error)

    def _dispatch(self, event: _Held) -> None:
        sink = self._sink
        if isinstance(event, bytes):
            sink.on_request_body(event)
        elif isinstance(event, RequestHead):
            sink.on_request(event)
        elif event is None:
            self._blocked = True  # before the sink runs: it may release() synchronously
            sink.on_request_end()
        else:
            self._blocked = True
            sink.on_request_error(event)

    def _hold(self, event: _Held) -> None:
        if self._queue is None:
            self._queue = deque()
        self._queue.append(event)

    def _raise(self, status: int, detail: str) -> None:
        self._error = HttpError(status, detail)
        raise self._error

    # llhttp callbacks (called from inside feed_data)

    def on_message_begin(self) -> None:
        self._in_head = True
        self._pending = 0
        self._head_bytes = 0
        self._body_bytes = 0
        self._headers = []
        self._url = b""
        self._websocket = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)
        if self._head_bytes > self._max_head:
            self._raise(431, "request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._pending = 0
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > self._max_head:
            self._raise(431, "request header fields too large")

    def on_headers_complete(self) -> None:
        parser = self._parser
        self._pending = 0
        self._in_head = False
        upgrade = parser.should_upgrade()
        websocket = False
        if upgrade:
            offered = [v for n, v in self._headers if n.lower() == b"upgrade"]
            websocket = asks_websocket(b",".join(offered))
        self._websocket = websocket
        head = RequestHead(
            parser.get_method(),
            self._url,
            parser.get_http_version(),
            self._headers,
            parser.should_keep_alive(),
            upgrade,
            websocket,
        )
        if self._blocked:
            self._hold(head)
        else:
            self._sink.on_request(head)

    def on_body(self, data: bytes) -> None:
        self._pending = 0
        self._body_bytes += len(data)
        if self._body_bytes > self._max_body:
            self._raise(413, "request body too large")
        if self._blocked:
            self._hold(data)
        else:
            self._sink.on_request_body(data)

    def on_message_complete(self) -> None:
        self._pending = 0
        self._in_head = False
        if self._blocked:
            self._hold(None)
        else:
            self._blocked = True  # before the sink runs: it may release() synchronously
            self._sink.on_request_end()
