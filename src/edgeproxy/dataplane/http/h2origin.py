"""One HTTP/2 connection to an h2c origin (prior knowledge): the `h2` library's client side under
our own asyncio protocol; its streams are origin links (h2origin_stream.py), handed out by the
pool (h2pool.py).

* **Readiness**: the pool hands out streams once the origin's SETTINGS arrived, so its stream
  limit (SETTINGS_MAX_CONCURRENT_STREAMS, at most `MAX_STREAMS`) is known before the first
  request; a server that is not HTTP/2 fails here (502).
* **Flow control**: the connection's window is credited as data arrives, each stream's only as
  its client reads (h2origin_stream.py), so one slow client never stalls the other streams; a
  full socket towards the origin pauses every stream's owner.
* **GOAWAY** from the origin: no new stream here; streams up to its last stream id finish; later
  ones fail as never processed (a bodiless request is retried once, like a stale HTTP/1.1
  keep-alive). The connection closes when its last stream ends.
* **Loss**: the connection closing fails every stream on it: 502 before the response began, a
  reset (HTTP/2 clients) or a cut connection (HTTP/1.1 clients) after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol, cast

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    InformationalResponseReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import H2Error, NoAvailableStreamIDError
from h2.settings import SettingCodes, Settings
from hyperframe.frame import Frame, GoAwayFrame

from edgeproxy.dataplane.http.h2origin_stream import STREAM_WINDOW, H2OriginStream
from edgeproxy.dataplane.http.links import OriginOwner

log = logging.getLogger(__name__)
MAX_STREAMS = 100  # streams per origin connection at most, whatever the origin allows
CONNECTION_WINDOW = 1024 * 1024
_CREDIT_AT = CONNECTION_WINDOW // 4
MAX_RESPONSE_HEADERS = 64 * 1024  # decoded response header list, like MAX_PENDING of origin.py


class ConnectionPool(Protocol):
    """What a connection reports to its pool (h2pool.H2OriginPool)."""

    host: str
    port: int

    def slot_freed(self, conn: H2OriginConnection) -> None: ...
    def connection_gone(self, conn: H2OriginConnection) -> None: ...


class _ClientH2(H2Connection):
    """h2's client connection, except that a GOAWAY received leaves it open: h2 would refuse
    every frame after it, the DATA and trailers of the streams the origin still serves (RFC 9113
    section 6.8 lets them finish) and the PING a graceful server sends with it."""

    def _receive_goaway_frame(self, frame: GoAwayFrame) -> tuple[list[Frame], list[Event]]:
        state = self.state_machine.state
        frames, events = super()._receive_goaway_frame(frame)
        self.state_machine.state = state
        return frames, events


class H2OriginConnection(asyncio.Protocol):
    """One HTTP/2 connection to an origin; its streams are `H2OriginStream` links."""

    # Set by connection_made, which create_connection runs before the pool sees the connection.
    transport: asyncio.Transport
    ready: asyncio.Future[None]  # the origin's SETTINGS arrived

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        config = H2Configuration(client_side=True, header_encoding=None)
        self.h2 = _ClientH2(config)
        self.links: set[H2OriginStream] = set()  # handed out, slot not yet given back
        self.streams: dict[int, H2OriginStream] = {}  # opened on the wire
        self.limit = MAX_STREAMS
        self.opened = 0
        self.going_away = False  # GOAWAY received (or ids exhausted): no new stream
        self.closed = False
        self.write_blocked = False  # the socket towards the origin is full
        self._credit = 0  # connection-level bytes received, not yet credited back

    def __repr__(self) -> str:
        return f"<H2OriginConnection {self.pool.host}:{self.pool.port} streams={len(self.links)}>"

    @property
    def has_room(self) -> bool:
        return not (self.closed or self.going_away) and len(self.links) < self.limit

    def new_stream(self) -> H2OriginStream:
        link = H2OriginStream(self, reused=self.opened > 0)
        self.links.add(link)
        return link

    def open_stream(
        self, link: H2OriginStream, headers: list[tuple[bytes, bytes]], end: bool
    ) -> int:
        """Send a request's HEADERS on a new stream; its id, or 0 when it cannot be opened."""
        if self.closed or self.going_away:
            link.reused = True  # never reached the origin: as safe to retry as a stale one
            self.fail_soon(link, "the origin connection is going away")
            return 0
        try:
            sid = self.h2.get_next_available_stream_id()
            self.h2.send_headers(sid, headers, end_stream=end)
        except NoAvailableStreamIDError:  # 2^30 streams later: the next request takes a new one
            self.going_away = True
            link.reused = True
            self.fail_soon(link, "the origin connection has no stream ids left")
            return 0
        except H2Error as exc:
            self.fail_soon(link, f"cannot open a stream: {exc}")
            return 0
        self.opened += 1
        self.streams[sid] = link
        return sid

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.closed:
            self.transport.write(data)

    def stream_finished(self, link: H2OriginStream, code: ErrorCodes) -> None:
        """The link's slot is free; a stream still open on the wire is reset with `code`."""
        if link.finished:
            return
        link.finished = True
        self.links.discard(link)
        sid = link.sid
        if sid and self.streams.pop(sid, None) is not None and not self.closed:
            stream = self.h2.streams.get(sid)
            if stream is not None and not stream.closed:
                with contextlib.suppress(H2Error):
                    self.h2.reset_stream(sid, code)
            self.flush()
        self.pool.slot_freed(self)

    def fail_soon(self, link: H2OriginStream, detail: str) -> None:
        """Fail a link from inside its owner's own call (a write): reported on the next turn."""
        if not link.finished:
            self.stream_finished(link, ErrorCodes.CANCEL)
            asyncio.get_running_loop().call_soon(link.failed, detail)

    def fail_stream(self, link: H2OriginStream, detail: str) -> None:
        self.stream_finished(link, ErrorCodes.PROTOCOL_ERROR)
        link.failed(detail)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(H2Error):
                self.h2.close_connection()
            self.transport.write(self.h2.data_to_send())
            self.transport.close()

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.ready = asyncio.get_running_loop().create_future()
        h2 = self.h2
        h2.local_settings = Settings(
            client=True,
            initial_values={
                SettingCodes.ENABLE_PUSH: 0,
                SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                SettingCodes.MAX_HEADER_LIST_SIZE: MAX_RESPONSE_HEADERS,
            },
        )
        h2.initiate_connection()
        h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self.flush()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            events = self.h2.receive_data(data)
        except H2Error as exc:  # h2 has queued the GOAWAY naming the error
            log.info("origin %s:%s broke HTTP/2: %s", self.pool.host, self.pool.port, exc)
            self.flush()
            self.transport.abort()
            return
        owners: dict[int, OriginOwner] = {}
        for event in events:
            self._event(event, owners)
        if self._credit >= _CREDIT_AT and not self.closed:
            self.h2.increment_flow_control_window(self._credit)
            self._credit = 0
        self.flush()
        for owner in owners.values():
            owner.origin_flush()  # one flush per read, as for an HTTP/1.1 origin

    def _event(self, event: Event, owners: dict[int, OriginOwner]) -> None:
        if isinstance(event, RemoteSettingsChanged):
            return self._settings(event)
        if isinstance(event, ConnectionTerminated):
            return self._goaway(event.last_stream_id or 0, event.error_code)
        if isinstance(event, WindowUpdated) and not event.stream_id:
            for waiting in list(self.streams.values()):
                waiting.window_opened()
            return None
        sid = getattr(event, "stream_id", None)
        link = self.streams.get(sid or 0)
        if isinstance(event, DataReceived):
            self._credit += event.flow_controlled_length or 0
        if link is None:
            return None
        owner = link.owner
        if owner is not None:
            owners[id(owner)] = owner
        if isinstance(event, ResponseReceived):
            link.on_response(list(event.headers or ()), event.stream_ended is not None)
        elif isinstance(event, InformationalResponseReceived):
            link.on_response(list(event.headers or ()), False)
        elif isinstance(event, DataReceived):
            link.on_data(event.data or b"", event.flow_controlled_length or 0)
        elif isinstance(event, TrailersReceived):
            link.on_trailers(list(event.headers or ()))
        elif isinstance(event, StreamEnded):
            link.on_end()
        elif isinstance(event, StreamReset):
            self._reset(link, event.error_code)
        elif isinstance(event, WindowUpdated):
            link.window_opened()
        return None

    def _settings(self, event: RemoteSettingsChanged) -> None:
        changed = event.changed_settings
        limit = changed.get(SettingCodes.MAX_CONCURRENT_STREAMS)
        if limit is not None:
            self.limit = min(MAX_STREAMS, limit.new_value or 0)
        if SettingCodes.INITIAL_WINDOW_SIZE in changed:
            for link in list(self.streams.values()):
                link.window_opened()
        if not self.ready.done():
            self.ready.set_result(None)  # the pool takes the connection in and serves from it
        else:
            self.pool.slot_freed(self)  # a larger limit serves waiting requests

    def _reset(self, link: H2OriginStream, code: ErrorCodes | int | None) -> None:
        if code == ErrorCodes.REFUSED_STREAM and not link.got_response:
            link.reused = True  # not processed (RFC 9113 section 8.7): safe to retry
        self.streams.pop(link.sid, None)  # closed at the origin: nothing to reset back
        self.fail_stream(link, f"the origin reset the stream ({code!s})")

    def _goaway(self, last: int, code: ErrorCodes | int | None) -> None:
        log.info("origin %s:%s sent GOAWAY (%s)", self.pool.host, self.pool.port, code)
        self.going_away = True
        for sid, link in list(self.streams.items()):
            if sid > last:
                link.reused = True  # never processed: safe to retry
                self.streams.pop(sid)
                self.fail_stream(link, "the origin refused the stream (GOAWAY)")
        self.pool.slot_freed(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("origin closed before its SETTINGS"))
        for link in list(self.links):
            self.fail_stream(link, "origin closed the connection")
        self.pool.connection_gone(self)

    def pause_writing(self) -> None:
        self.write_blocked = True
        for link in list(self.links):
            link.transport_blocked(True)

    def resume_writing(self) -> None:
        self.write_blocked = False
        for link in list(self.links):
            link.transport_blocked(False)
