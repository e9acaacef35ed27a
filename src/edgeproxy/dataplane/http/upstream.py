"""The origin half of a proxied connection: `OriginOwner` callbacks from the pooled connection.

Requests go to a pooled keep-alive connection when one is idle, else to a new one (the only
coroutine: a connect bounded by the connect timeout). Responses are re-framed for the client
(headers.rewrite_response), gathered, and flushed once per origin read. A WebSocket 101 turns
the pair into a byte pipe.
"""

from __future__ import annotations

from time import perf_counter

from edgeproxy.dataplane.http.connection import BUSY, CONNECT, ORIGIN, ConnectionBase, S
from edgeproxy.dataplane.http.headers import CHUNKED, UNTIL_CLOSE, rewrite_response
from edgeproxy.dataplane.http.origin import OriginConnection


class OriginSide(ConnectionBase):
    __slots__ = ()

    def _connect_origin(self) -> None:
        conn = self._pool.take()
        if conn is None:
            self._to(S.CONNECTING)
            self._pause(CONNECT)
            self._pool.connect(self)
        else:
            self._attach(conn)

    def _attach(self, conn: OriginConnection) -> None:
        self._to(S.EXCHANGE)
        self._origin = conn
        req = self._req
        assert req is not None  # an origin is attached only for a request in flight
        conn.start(self, req.method == b"HEAD", req.websocket)
        if self._client_blocked:
            conn.pause_reading()
        self._t_origin = perf_counter()
        self.deadline = self._loop.time() + self._limits.origin_read_timeout

    def origin_connected(self, conn: OriginConnection) -> None:
        if self._state is not S.CONNECTING:
            self._pool.release(conn)  # the client left: keep the fresh connection for others
            return
        self._unpause(CONNECT)
        self._attach(conn)
        self._flush_origin()

    def origin_connect_failed(self, timed_out: bool) -> None:
        if self._state is S.CONNECTING:
            self._unpause(CONNECT)
            self._local(504 if timed_out else 502)

    def origin_interim(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        if self._req is not None and self._req.version == "1.1":  # no 1xx for HTTP/1.0
            head, _, _ = rewrite_response(
                status, reason, headers, head_only=True, http10=False, close=False
            )
            self._out.append(head)

    def origin_head(self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> bool:
        req = self._req
        assert req is not None  # the origin answers only the request it was sent
        head, framing, until_eof = rewrite_response(
            status,
            reason,
            headers,
            head_only=req.method == b"HEAD",
            http10=req.version == "1.0",
            close=self._close_after or self._ctx.draining or not self._req_done,
        )
        if framing == UNTIL_CLOSE:
            self._close_after = True
        self._framing = framing
        self._status = status
        self._resp_started = True
        self._out.append(head)
        self._bytes_out += len(head)
        return until_eof

    def origin_body(self, data: bytes) -> None:
        self._bytes_out += len(data)
        if self._framing == CHUNKED:
            self._out += (b"%x\r\n" % len(data), data, b"\r\n")
        else:
            self._out.append(data)

    def origin_end(self, keep_alive: bool) -> None:
        if self._framing == CHUNKED:
            self._out.append(b"0\r\n\r\n")
        self._resp_done = True
        conn, self._origin = self._origin, None
        if conn is not None:
            self._unpause(ORIGIN)
            if keep_alive and self._req_done:
                self._pool.release(conn)
            else:
                conn.close()
        if not self._req_done:
            self._close_after = True  # answered before the body ended: stop reading it
        self._finish()

    def origin_upgraded(self, data: bytes) -> None:
        self._to(S.TUNNEL)
        self._flush_client()
        if data:
            self._transport.write(data)
        rest = self._reader.take_tunnel_bytes()
        if rest:
            origin = self._origin
            assert origin is not None  # the upgrade came from it
            origin.write(rest)
        self._record(101)
        self._req = None
        self._unpause(BUSY)
        self.deadline = self._loop.time() + self._limits.origin_read_timeout

    def origin_tunnel_data(self, data: bytes) -> None:
        self._transport.write(data)
        self.deadline = self._loop.time() + self._limits.origin_read_timeout

    def origin_flush(self) -> None:
        if self._out:
            self._flush_client()
        if self._state is S.EXCHANGE:
            self.deadline = self._loop.time() + self._limits.origin_read_timeout

    def origin_failed(self, detail: str) -> None:
        conn, self._origin = self._origin, None
        self._unpause(ORIGIN)
        state = self._state
        if state is S.TUNNEL:
            self._close_now()
        elif state is not S.EXCHANGE:
            return
        elif self._resp_started:
            self._close_now()  # a truncated response: the client sees its framing cut short
        elif conn is not None and conn.reused and not conn.got_response and self._can_retry():
            # A pooled keep-alive the origin had just closed (RFC 9112 §9.3.1): retry once.
            self._retried = True
            self._to_origin = [self._req_bytes]
            self._connect_origin()
            self._flush_origin()
        else:
            self._local(502)

    def origin_pause_writing(self) -> None:
        self._pause(ORIGIN)

    def origin_resume_writing(self) -> None:
        self._unpause(ORIGIN)

    def _can_retry(self) -> bool:
        return not self._retried and not self._req_body and self._req_done
