"""The per-connection HTTP/1.1 reverse proxy, on the decrypted stream (asyncio.Protocol).

One request at a time: the `RequestReader` holds pipelined requests back until the current
exchange is over. The origin exchange runs through protocol callbacks (no task per request);
writes are gathered per read and sent as one buffer. Backpressure both ways: a full client write
buffer pauses origin reads, a full origin write buffer pauses client reads.
"""

from __future__ import annotations

import asyncio
from time import perf_counter

import httptools

from edgeproxy.dataplane.http.connection import BUSY, CONNECT, INF, S
from edgeproxy.dataplane.http.context import RevocationGate
from edgeproxy.dataplane.http.headers import rewrite_request
from edgeproxy.dataplane.http.parser import HttpError, RequestHead, RequestReader
from edgeproxy.dataplane.http.problems import client_certificate_problem, problem_response
from edgeproxy.dataplane.http.upstream import OriginSide
from edgeproxy.tls.session import Reason, VerifyResult

_NO_REQUEST = RequestHead(b"-", b"-", "1.1", [], False, False, False)  # for 400/408/431 records


class ProxyProtocol(OriginSide):
    """Serves HTTP/1.1 on one client connection; `ProxyProtocol(context)` is the factory call."""

    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        ctx = self._ctx
        session = ctx.session_provider(transport)
        if session is None:  # fail closed: no identity, no service
            self._state = S.CLOSED
            transport.abort()  # type: ignore[attr-defined]
            return
        self._session = session
        peer = transport.get_extra_info("peername") or ("", 0)
        self._peer = (str(peer[0]), int(peer[1]))
        self._client_ip = self._peer[0].encode()
        edge = session.edge
        auth = edge.mutual_authentication
        forward = auth.mode == "request" and auth.on_failure == "forward"
        self._deny = session.verify_result is not VerifyResult.SUCCESS and not forward
        reason = session.verify_reason
        if reason is Reason.REVOKED:  # on a CRL, or a cached OCSP answer (request mode)
            self._rev_status = "revoked"
        elif reason is Reason.OCSP_UNAVAILABLE:  # a stale CRL under hard (request mode)
            self._rev_status = "unavailable"
        elif (
            auth.ocsp.enabled
            and ctx.revocation is not None
            and session.verify_result is VerifyResult.SUCCESS
        ):
            # Asked now, not at the first request: the answer may be in before the request is.
            fingerprint = self._client_identity().fingerprint_sha256
            self._rev_status, self._rev_check = ctx.revocation.start(session, fingerprint)
        self._matcher = ctx.host_matcher(edge.hostnames)
        self._pool = ctx.pool_for(edge.origin)
        self._reader = RequestReader(
            self, self._limits.max_header_bytes, self._limits.max_body_bytes
        )
        self._loop = asyncio.get_running_loop()
        self._close_after = ctx.draining
        self.deadline = self._loop.time() + self._limits.header_timeout
        ctx.register(self)

    def data_received(self, data: bytes) -> None:
        state = self._state
        if state is S.TUNNEL:
            origin = self._origin
            assert origin is not None  # a tunnel ends (CLOSING) when its origin goes
            origin.write(data)
            self.deadline = self._loop.time() + self._limits.origin_read_timeout
            return
        if state is S.CLOSING or state is S.CLOSED:
            return  # lingering close: the rest of an unwanted body
        if state is S.IDLE:
            self._to(S.HEAD)
            self._t0 = perf_counter()
            self.deadline = self._t0 + self._limits.header_timeout
        reader = self._reader
        reader.feed(data)
        if self._to_origin and self._origin is not None:
            self._flush_origin()
        if reader.backlog and not self._paused & BUSY and self._state is not S.CLOSING:
            self._pause(BUSY)

    def eof_received(self) -> bool | None:
        self._peer_eof = True
        state = self._state
        if state is S.TUNNEL and self._origin is not None:
            self._origin.transport.write_eof()
            return True
        if state in (S.EXCHANGE, S.CONNECTING, S.REVOCATION, S.LOCAL) and self._req_done:
            self._close_after = True  # the client half-closed after its request: still answer
            return True
        self._close_origin(abort=True)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._session is None:
            return
        state, self._state = self._state, S.CLOSED
        self._ctx.unregister(self)
        self._close_origin(abort=True)
        self._reader.detach()
        if self._rev_check is not None:
            self._rev_check.unsubscribe(self._revocation_settled)
        live = (S.HEAD, S.REVOCATION, S.CONNECTING, S.EXCHANGE, S.LOCAL)
        if state in live and self._req is not None:
            self._record(self._status if self._resp_done else 499)  # 499: client went away

    def on_request(self, head: RequestHead) -> None:
        if self._state is S.IDLE:
            self._to(S.HEAD)
            self._t0 = perf_counter()
        self.deadline = INF
        self._req = head  # exchange fields were reset by _finish (or __init__)
        if not head.keep_alive:
            self._close_after = True
        target = head.target
        authority = None
        if head.method == b"CONNECT":
            return self._local(405, close=True)
        if target[:1] != b"/" and target != b"*":  # absolute-form (RFC 9112 §3.2.2)
            try:
                url = httptools.parse_url(target)
            except httptools.HttpParserInvalidURLError:
                url = None
            if url is None or not url.host:
                return self._local(400, close=True)
            authority = url.host + (b":%d" % url.port if url.port else b"")
            target = (url.path or b"/") + (b"?" + url.query if url.query else b"")
        try:
            data, host, length, chunked = rewrite_request(
                head, target, self._client_ip, self._client_identity().header_block
            )
        except HttpError as exc:
            return self._local(exc.status, close=True)
        self._req_body = chunked or length > 0
        self._req_chunked = chunked
        if not (self._host_ok(host) and (authority is None or self._matcher.matches(authority))):
            return self._local(421)
        if self._deny:
            return self._local(403)
        if length > self._limits.max_body_bytes:
            return self._local(413, close=True)
        if head.upgrade and self._req_body:
            # llhttp skips the body of an upgrade request: refuse rather than smuggle it.
            return self._local(400, close=True)
        self._req_bytes = data
        self._to_origin = [data]
        if self._rev_check is not None:  # OCSP pending or denying: only until it settles
            return self._await_revocation()
        self._connect_origin()

    def _await_revocation(self) -> None:
        """Hold the request (head and body, reads paused) until the OCSP answer is in
        (docs/dataplane.md)."""
        check = self._rev_check
        assert check is not None
        if check.done:
            return self._apply_revocation(check)
        self._to(S.REVOCATION)
        self._pause(CONNECT)
        check.subscribe(self._revocation_settled)

    def _revocation_settled(self, _future: object) -> None:
        """The answer came in (a later loop iteration). Unless the request is still waiting,
        the connection has been answered or closed meanwhile, and nothing is left to do."""
        check = self._rev_check
        if check is not None and self._state is S.REVOCATION:
            self._apply_revocation(check)

    def _apply_revocation(self, check: RevocationGate) -> None:
        self._rev_status = check.status
        reason = check.deny_reason
        if reason is not None:
            return self._local(403, close=True, reason=reason)  # the lingering close resumes
        self._rev_check = None  # settled: later requests take the fast path
        waited = self._state is S.REVOCATION
        self._connect_origin()
        if waited and self._state is S.EXCHANGE:  # pooled: no origin_connected() to come
            self._unpause(CONNECT)
            self._flush_origin()

    def on_request_body(self, data: bytes) -> None:
        self._bytes_in += len(data)
        state = self._state
        if state is S.EXCHANGE or state is S.CONNECTING or state is S.REVOCATION:
            if self._req_chunked:
                self._to_origin += (b"%x\r\n" % len(data), data, b"\r\n")
            else:
                self._to_origin.append(data)
            if state is S.EXCHANGE:
                self.deadline = self._loop.time() + self._limits.origin_read_timeout

    def on_request_end(self) -> None:
        self._req_done = True
        state = self._state
        if state is S.EXCHANGE or state is S.CONNECTING or state is S.REVOCATION:
            if self._req_chunked:
                self._to_origin.append(b"0\r\n\r\n")
        elif state is S.LOCAL:
            self._finish()

    def on_request_error(self, error: HttpError) -> None:
        if self._state is S.IDLE:  # a pipelined request that was held back
            self._t0 = perf_counter()
        self._close_origin(abort=True)
        if self._resp_started:
            self._close_now()
        else:
            self._local(error.status, close=True)

    def on_deadline(self, now: float) -> None:
        self.deadline = INF
        state = self._state
        if state is S.HEAD:
            self._local(408, close=True)
        elif state is S.EXCHANGE and not self._resp_started:
            self._close_origin(abort=True)
            self._local(504, close=True)
        else:  # idle keep-alive, a stalled tunnel or response, an unfinished lingering close
            self._close_now()

    def _host_ok(self, host: bytes | None) -> bool:
        if host == self._last_host:
            return True
        if host is not None and self._matcher.matches(host):
            self._last_host = host
            return True
        return False

    def _local(self, status: int, close: bool = False, reason: str | None = None) -> None:
        """Answer the current request ourselves; the origin never sees it."""
        self._close_origin(abort=True)
        req = self._req
        if req is None:
            req = self._req = _NO_REQUEST
            self._reset_exchange()
        if (self._req_body and not self._req_done) or req.websocket:
            close = True  # an unread body or tunnel bytes follow: the connection cannot go on
        close = close or self._close_after or self._ctx.draining
        head_only = req.method == b"HEAD"
        if status == 403:
            reason = reason or self._session.verify_reason or "other"
            data = client_certificate_problem(reason, close=close, head_only=head_only)
        else:
            data = problem_response(status, close=close, head_only=head_only)
        self._out.append(data)
        self._bytes_out += len(data)
        self._status = status
        self._resp_started = self._resp_done = True
        self._close_after = close
        if self._state is not S.LOCAL:
            self._to(S.LOCAL)
        if self._req_done or close:
            self._finish()

    def _finish(self) -> None:
        """The exchange is over: account for it, then keep the connection alive or close it."""
        self._flush_client()
        self._record(self._status)
        self._req = None
        self._reset_exchange()
        if self._close_after:
            self._linger_close()
            return
        self._to(S.IDLE)
        self.deadline = self._loop.time() + self._limits.idle_timeout
        reader = self._reader
        reader.release()  # may run the next pipelined request right now
        if self._to_origin:
            self._flush_origin()
        if self._state is S.IDLE and reader.in_head:
            self._to(S.HEAD)
            self._t0 = perf_counter()
            self.deadline = self._t0 + self._limits.header_timeout
        if self._paused & BUSY and not reader.backlog:
            self._unpause(BUSY)
