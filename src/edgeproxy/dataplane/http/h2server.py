"""One HTTP/2 client connection (RFC 9113) as a sans-IO machine: the `h2` library's state machine
under the edge's own rules. Bytes and events in, bytes out, like the HTTP/1.1 machine.

The `h2` library parses and frames (the edge never parses HTTP/2 itself); this module decides:

* **streams**: each request is an `h2stream.Stream`, an exchange with the same checks, origin side
  and access record as an HTTP/1.1 request, all asked of one `ClientPolicy` per connection;
* **limits**: SETTINGS_MAX_CONCURRENT_STREAMS (`max_concurrent_streams`: a stream past it is
  refused alone, REFUSED_STREAM, as RFC 9113 section 5.1.2 asks), the header list
  (`max_header_bytes`: 431 on the stream; a block beyond `HEADER_BLOCK_CAP` ends the connection),
  and the flood budgets of h2guard.py (GOAWAY ENHANCE_YOUR_CALM);
* **flow control**: request DATA is credited back only once forwarded (stream.py), response DATA
  waits for the client's windows; while the client's socket is full nothing is read from it or
  from the origins;
* **GOAWAY**: on drain, on a trust change or `max_connection_age` (`close_after_response`), and
  after `max_requests_per_connection` streams: streams already begun are served, later ones are
  refused (REFUSED_STREAM), and the connection closes when the last one ends;
* **connection reuse** (RFC 9113 section 9.1.1): a request whose `:authority` names another
  edge certificate's host gets 421 from the same Host rule as HTTP/1.1 (`ClientPolicy.admit`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    PingReceived,
    PriorityUpdated,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    UnknownFrameReceived,
    WindowUpdated,
)
from h2.exceptions import ProtocolError, StreamClosedError
from h2.settings import SettingCodes, Settings
from hyperframe.frame import GoAwayFrame

from edgeproxy.authz.policy import Policy
from edgeproxy.dataplane.http.exchange import INF
from edgeproxy.dataplane.http.h2guard import (
    CONTROL_BURST,
    CONTROL_RATE,
    RESET_BURST,
    RESET_RATE,
    SLIVER,
    Budget,
)
from edgeproxy.dataplane.http.h2stream import Stream
from edgeproxy.dataplane.http.headers import HostMatcher
from edgeproxy.dataplane.http.links import ClientStream, OriginSource
from edgeproxy.dataplane.http.policy import ClientPolicy, Shared
from edgeproxy.dataplane.http.records import RevocationGate
from edgeproxy.tls.session import TlsSession

log = logging.getLogger(__name__)
HEADER_BLOCK_CAP = 64 * 1024  # decoded header list bytes beyond which the connection ends
CONNECTION_WINDOW = 1024 * 1024  # request bytes a connection may have in flight, all streams
_CONTROL = (PingReceived, RemoteSettingsChanged, PriorityUpdated, UnknownFrameReceived)


class _Advertised(Settings):
    """The edge's SETTINGS as sent, minus h2's own check of MAX_CONCURRENT_STREAMS on inbound
    streams: h2 makes a stream past it a connection error, which would end the client's other
    streams too, where RFC 9113 section 5.1.2 asks for a stream error. `Http2Connection._request`
    refuses that one stream instead. (h2 reads the limit only through this property; the value
    advertised comes from the mapping.)"""

    @property
    def max_concurrent_streams(self) -> int:
        return UNCHECKED

    @max_concurrent_streams.setter
    def max_concurrent_streams(self, value: int) -> None:
        self[SettingCodes.MAX_CONCURRENT_STREAMS] = value


UNCHECKED = 2**32 + 1  # h2's own "no limit"


class Http2Connection:
    """The machine for one HTTP/2 client connection; same plug-ins as exchange.HttpConnection."""

    __slots__ = (
        "_control",
        "_ctx",
        "_gated",
        "_goaway",
        "_resets",
        "_served",
        "_stream",
        "_streams",
        "blocked",
        "client_ip",
        "clock",
        "closed",
        "deadline",
        "h2",
        "limits",
        "policy",
        "pool",
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
        limits = self.limits = context.limits
        self._stream = stream
        self.pool = pool
        self.clock = clock
        self.client_ip = peer[0].encode()
        self.policy = ClientPolicy(context, session, peer, matcher, "h2")
        self._streams: dict[int, Stream] = {}
        self._gated: list[Stream] = []  # streams waiting for the OCSP answer
        self._served = 0
        self._goaway = False  # GOAWAY sent (or received): no new stream is served
        self.closed = False
        self.blocked = False  # the client's write buffer is full
        self._control = Budget(CONTROL_BURST, CONTROL_RATE, clock)
        self._resets = Budget(RESET_BURST, RESET_RATE, clock)
        config = H2Configuration(client_side=False, header_encoding=None)
        h2 = self.h2 = H2Connection(config)
        h2.local_settings = _Advertised(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: limits.max_concurrent_streams,
                SettingCodes.MAX_HEADER_LIST_SIZE: HEADER_BLOCK_CAP,
                SettingCodes.ENABLE_CONNECT_PROTOCOL: 0,
            },
        )
        h2.initiate_connection()
        h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self.deadline = clock() + limits.header_timeout  # the preface and a first request
        self.flush()

    def __repr__(self) -> str:
        return f"<Http2Connection streams={len(self._streams)} goaway={self._goaway}>"

    # -- input from the client -----------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            events = self.h2.receive_data(data)
        except ProtocolError as exc:  # h2 has queued the GOAWAY naming the error
            log.debug("HTTP/2 protocol error from the client: %s", exc)
            return self._end(ErrorCodes.PROTOCOL_ERROR, queued=True)
        for event in events:
            self._event(event)
            if self.closed:
                return
        self.flush()

    def _event(self, event: Event) -> None:
        if isinstance(event, DataReceived):
            stream = self._streams.get(event.stream_id)
            data = event.data or b""
            if not data and event.stream_ended is None and not self._control.spend():
                return self._calm("empty DATA frames")
            if stream is None:  # reset or answered meanwhile: only the connection's window
                self._credit_id(event.stream_id, event.flow_controlled_length or 0)
            else:
                stream.on_data(data, event.flow_controlled_length or 0)
        elif isinstance(event, RequestReceived):
            self._request(event)
        elif isinstance(event, TrailersReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.on_trailers(list(event.headers or ()))
        elif isinstance(event, StreamEnded):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream.on_end()
        elif isinstance(event, WindowUpdated):
            if (event.delta or 0) < SLIVER and not self._control.spend():
                return self._calm("window updates too small to use (data dribble)")
            if event.stream_id:
                stream = self._streams.get(event.stream_id)
                if stream is not None:
                    stream.window_opened()
            else:
                self._windows_opened()
        elif isinstance(event, StreamReset):
            stream = self._streams.pop(event.stream_id, None)
            if stream is not None:
                if not stream.ended and not self._resets.spend():
                    return self._calm("streams reset by the client (rapid reset)")
                stream.reset_by_client()
                self._after_stream()
        elif isinstance(event, ConnectionTerminated):
            self._goaway = True  # the client leaves: serve what it asked, then close
            self._after_stream()
        elif isinstance(event, _CONTROL):
            if not self._control.spend():
                return self._calm(type(event).__name__)
            settings = event.changed_settings if isinstance(event, RemoteSettingsChanged) else {}
            if SettingCodes.INITIAL_WINDOW_SIZE in settings:
                self._windows_opened()
        return None

    def _request(self, event: RequestReceived) -> None:
        sid = event.stream_id
        assert sid is not None
        if self._goaway:
            self.h2.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return
        if len(self._streams) >= self.limits.max_concurrent_streams:
            # Past the limit the edge advertised (a client that has not read it yet, or ignores
            # it): refused alone, unprocessed, so the client may retry it. A client that keeps
            # doing it spends the reset budget, like one that resets its own streams.
            self.h2.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            if not self._resets.spend():
                self._calm("streams past the concurrent limit")
            return
        self._served += 1
        stream = self._streams[sid] = Stream(self, sid)
        if self._served >= self.limits.max_requests_per_connection:
            self._send_goaway()
        stream.on_headers(list(event.headers or ()), event.stream_ended is not None)

    def receive_eof(self) -> bool | None:
        """The client closed its side: nothing more can be asked or acknowledged."""
        self._abort_streams()
        return None

    def connection_lost(self) -> None:
        self.closed = True
        self._abort_streams()
        check = self.policy.rev_check
        if check is not None:
            check.unsubscribe(self._revocation_settled)

    def client_blocked(self, blocked: bool) -> None:
        """The client's write buffer went over (True) or back under (False) its high mark: read
        neither the client nor the origins while it drains."""
        self.blocked = blocked
        for stream in self._streams.values():
            link = stream.ex.link
            if link is not None and not stream.reading_paused:
                link.pause_reading() if blocked else link.resume_reading()
        if blocked:
            self._stream.pause_reading()
            self.stream_deadline(self.clock() + self.limits.send_timeout)
        else:
            self._stream.resume_reading()

    # -- the listener's deadline sweep and drain (context.Tracked) -----------------------------

    def on_deadline(self, now: float) -> None:
        streams = self._streams
        if not streams:
            self.deadline = INF
            self._send_goaway()  # idle past idle_timeout, or no request since the preface
            self._close()
            return
        if self.blocked:
            self.abort()  # it reads nothing: a graceful close would wait forever
            return
        for stream in [s for s in streams.values() if s.deadline <= now]:
            stream.expired(now)
        self.deadline = min((s.deadline for s in streams.values()), default=INF)
        if not streams:
            self._idle()
        self.flush()

    def drain(self) -> None:
        self._send_goaway()

    def close_after_response(self) -> None:
        """A trust change or the connection's age: GOAWAY; the streams in flight finish."""
        self._send_goaway()

    def authorization_changed(self, policy: Policy | None) -> None:
        """A reload changed the binding's rules: new streams are judged by `policy`."""
        self.policy.authorization_changed(policy)

    def close_if_idle(self) -> bool:
        if self._streams:
            return False
        self._send_goaway()
        return True

    def abort(self) -> None:
        self.closed = True
        self._stream.abort()

    # -- what streams ask of their connection --------------------------------------------------

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.closed:
            self._stream.write(data)

    def stream_deadline(self, when: float) -> None:
        if when < self.deadline:
            self.deadline = when

    def credit(self, stream: Stream, count: int) -> None:
        """Window credit for request bytes that went on to the origin."""
        self._credit_id(stream.sid, count)

    def _credit_id(self, sid: int, count: int) -> None:
        if count and not self.closed:  # a closed stream: h2 credits the connection only
            self.h2.acknowledge_received_data(count, sid)

    def send_pending(self, stream: Stream) -> None:
        """Response bytes as far as the client's windows allow; then the end (or trailers)."""
        h2 = self.h2
        sid = stream.sid
        out = stream.out
        head = stream.head_out
        if head is not None:
            # Sent with the first body bytes or the end: a response that is all head (gRPC's
            # trailers-only answer) stays one HEADERS frame with END_STREAM.
            stream.head_out = None
            end = not out and stream.out_end and not stream.out_trailers
            if not stream.send_head(head, end):
                return
            if end:
                stream.response_sent()
                return
        try:
            while out:
                size = min(h2.local_flow_control_window(sid), h2.max_outbound_frame_size, len(out))
                if size <= 0:
                    stream.set_deadline(self.clock() + self.limits.send_timeout)
                    return
                if size < SLIVER and size < len(out) and not self._control.spend():
                    return self._calm("a flow-control window kept too small to use")
                last = size == len(out) and stream.out_end and not stream.out_trailers
                h2.send_data(sid, bytes(out[:size]), end_stream=last)
                del out[:size]
                if last:  # the end rides on the last DATA frame
                    stream.ended = True
                    stream.response_sent()
                    return
            if stream.out_end and not stream.ended:
                trailers = stream.out_trailers
                if trailers:
                    h2.send_headers(sid, trailers, end_stream=True)
                else:
                    h2.end_stream(sid)
                stream.ended = True
                stream.response_sent()
        except (StreamClosedError, ProtocolError) as exc:  # reset meanwhile, or bad trailers
            log.debug("stream %d: cannot send: %s", sid, exc)
            stream.reset(ErrorCodes.INTERNAL_ERROR)

    def reset(self, stream: Stream, code: ErrorCodes) -> None:
        self._streams.pop(stream.sid, None)
        with contextlib.suppress(StreamClosedError, ProtocolError):  # closed at both ends
            self.h2.reset_stream(stream.sid, code)
        self._after_stream()

    def stream_done(self, stream: Stream, request_unread: bool) -> None:
        self._streams.pop(stream.sid, None)
        if request_unread:
            # Answered before the request ended: ask the client to stop (RFC 9113 section 8.1).
            with contextlib.suppress(StreamClosedError, ProtocolError):
                self.h2.reset_stream(stream.sid, ErrorCodes.NO_ERROR)
        self._after_stream()

    def await_revocation(self, stream: Stream) -> None:
        check = self.policy.rev_check
        assert check is not None
        if check.done:
            return self._release_gated(check, [stream])
        if not self._gated:
            check.subscribe(self._revocation_settled)
        self._gated.append(stream)
        return None

    def _revocation_settled(self, _future: object) -> None:
        check = self.policy.rev_check
        gated, self._gated = self._gated, []
        if check is not None and not self.closed:
            self._release_gated(check, [s for s in gated if s.sid in self._streams])
            self.flush()

    def _release_gated(self, check: RevocationGate, streams: list[Stream]) -> None:
        reason = self.policy.settle(check)
        for stream in streams:
            if reason is not None:
                stream.local(403, reason)
            else:
                stream.authorised()
        if reason is not None:
            self._send_goaway()  # like HTTP/1.1's close after a revoked client's 403

    # -- connection life -----------------------------------------------------------------------

    def _windows_opened(self) -> None:
        for stream in list(self._streams.values()):
            if stream.out:
                stream.window_opened()

    def _after_stream(self) -> None:
        if not self._streams:
            if self._goaway:
                self._close()
            else:
                self._idle()

    def _idle(self) -> None:
        self.deadline = self.clock() + self.limits.idle_timeout

    def _send_goaway(self) -> None:
        """Graceful: the streams begun are served, later ones refused, then close (RFC 9113
        section 6.8). The frame is made with hyperframe: h2's own close_connection() would end
        the in-flight streams too."""
        if self._goaway or self.closed:
            if not self._streams:
                self._close()
            return
        self._goaway = True
        self.flush()
        frame = GoAwayFrame(0, last_stream_id=self.h2.highest_inbound_stream_id, error_code=0)
        self._stream.write(frame.serialize())
        if not self._streams:
            self._close()

    def _calm(self, what: str) -> None:
        log.info(
            "HTTP/2 flood: closing the connection",
            extra={"edge_certificate": self.policy.facts().edge_certificate, "flood": what},
        )
        self._end(ErrorCodes.ENHANCE_YOUR_CALM, queued=False)

    def _end(self, code: ErrorCodes, queued: bool) -> None:
        """A connection error: GOAWAY with `code`, every stream ends, the connection closes."""
        if not queued:
            with contextlib.suppress(ProtocolError):
                self.h2.close_connection(code)
        self.flush()
        self._abort_streams()
        self._close()

    def _abort_streams(self) -> None:
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            stream.connection_gone()

    def _close(self) -> None:
        if not self.closed:
            self.flush()  # what the last stream queued (its end, trailers) goes out first
            self.closed = True
            self.deadline = INF
            self._stream.close()
