"""The h2c origin pool against a real HTTP/2 server on 127.0.0.1 (support/h2c_origin.py): streams
within the origin's SETTINGS_MAX_CONCURRENT_STREAMS, waiting for a free one, connect failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from edgeproxy.dataplane.http.h2origin_stream import H2OriginStream
from edgeproxy.dataplane.http.h2pool import H2OriginPool
from edgeproxy.dataplane.http.links import OriginLink
from support.h2c_origin import H2cOrigin

WAIT = 5.0


class Owner:
    """One exchange's origin side: asks for a stream, sends `path`, keeps the response."""

    def __init__(self, pool: H2OriginPool, path: str, request: bytes = b"") -> None:
        self.pool = pool
        self.path = path
        self.request = request or b"GET %s HTTP/1.1\r\nHost: api.test\r\n\r\n" % path.encode()
        self.link: OriginLink | None = None
        self.status = 0
        self.body = b""
        self.trailers: list[tuple[bytes, bytes]] = []
        self.outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def go(self) -> None:
        link = self.pool.take()
        if link is None:
            self.pool.connect(self)
        else:
            self.origin_connected(link)

    def origin_connected(self, link: OriginLink) -> None:
        self.link = link
        link.start(self, False, False)
        link.write(self.request)

    def origin_connect_failed(self, timed_out: bool) -> None:
        self.outcome.set_result("timed out" if timed_out else "refused")

    def origin_interim(self, status: int, reason: bytes, headers: object) -> None:
        raise AssertionError("no 1xx expected")

    def origin_head(self, status: int, reason: bytes, headers: object) -> bool:
        self.status = status
        return False

    def origin_body(self, data: bytes) -> None:
        self.body += data

    def origin_trailers(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.trailers = headers

    def origin_end(self, keep_alive: bool) -> None:
        assert self.link is not None
        self.pool.release(self.link)
        self.outcome.set_result("done")

    def origin_flush(self) -> None:
        return None

    def origin_failed(self, detail: str) -> None:
        self.outcome.set_result(f"failed: {detail}")

    def origin_upgraded(self, data: bytes) -> None:
        raise AssertionError

    def origin_tunnel_data(self, data: bytes) -> None:
        raise AssertionError

    def origin_pause_writing(self) -> None:
        return None

    def origin_resume_writing(self) -> None:
        return None


@pytest.fixture
async def h2c() -> AsyncIterator[H2cOrigin]:
    origin = H2cOrigin(max_streams=2)
    await origin.start()
    yield origin
    await origin.stop()


async def test_streams_beyond_the_origins_limit_wait_for_a_free_one(h2c: H2cOrigin) -> None:
    pool = H2OriginPool("127.0.0.1", h2c.port, connect_timeout=WAIT, max_connections=1)
    owners = [Owner(pool, f"/hold?{i}") for i in range(5)]
    for owner in owners:
        owner.go()
    for _ in range(100):  # bounded: until the origin holds the two streams it allows
        if len(h2c.requests) >= 2:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    assert len(h2c.requests) == 2  # the origin's SETTINGS_MAX_CONCURRENT_STREAMS, not ours
    h2c.release.set()
    outcomes = await asyncio.wait_for(asyncio.gather(*(o.outcome for o in owners)), WAIT)
    assert outcomes == ["done"] * 5
    assert [o.body for o in owners] == [f"ok:/hold?{i}".encode() for i in range(5)]
    assert all(o.trailers == [(b"x-origin-trailer", b"done")] for o in owners)
    assert h2c.connections == 1
    assert all(isinstance(o.link, H2OriginStream) for o in owners)
    await pool.close()


async def test_a_request_waiting_past_connect_timeout_is_told_so(h2c: H2cOrigin) -> None:
    pool = H2OriginPool("127.0.0.1", h2c.port, connect_timeout=0.3, max_connections=1)
    held = [Owner(pool, "/hold"), Owner(pool, "/hold")]
    for owner in held:
        owner.go()
    for _ in range(100):
        if len(h2c.requests) >= 2:
            break
        await asyncio.sleep(0.02)
    late = Owner(pool, "/late")
    late.go()
    assert await asyncio.wait_for(late.outcome, WAIT) == "timed out"
    h2c.release.set()
    assert await asyncio.wait_for(asyncio.gather(*(o.outcome for o in held)), WAIT) == [
        "done",
        "done",
    ]
    await pool.close()


async def test_a_server_that_does_not_speak_http2_is_refused() -> None:
    async def http1(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(http1, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = H2OriginPool("127.0.0.1", port, connect_timeout=WAIT)
    owner = Owner(pool, "/")
    owner.go()
    assert await asyncio.wait_for(owner.outcome, WAIT) == "refused"
    await pool.close()
    server.close()


async def test_a_retired_pool_serves_the_request_waiting_then_closes(h2c: H2cOrigin) -> None:
    """An edge removed while its handshake ran is served once through a retired pool."""
    pool = H2OriginPool("127.0.0.1", h2c.port, connect_timeout=WAIT)
    pool.retire()
    owner = Owner(pool, "/once")
    owner.go()
    assert await asyncio.wait_for(owner.outcome, WAIT) == "done"
    assert owner.body == b"ok:/once"
    for _ in range(100):  # bounded: its connection closes once the stream is given back
        if not pool._conns:
            break
        await asyncio.sleep(0.02)
    assert not pool._conns
    await pool.close()


async def test_the_head_goes_out_first_and_the_body_and_its_trailers_follow(
    h2c: H2cOrigin,
) -> None:
    pool = H2OriginPool("127.0.0.1", h2c.port, connect_timeout=WAIT)
    head = b"POST /echo HTTP/1.1\r\nHost: api.test\r\nTransfer-Encoding: chunked\r\n\r\n"
    owner = Owner(pool, "/echo", head)
    owner.go()
    for _ in range(100):  # bounded: the HEADERS reach the origin with no body byte sent yet
        if h2c.requests:
            break
        await asyncio.sleep(0.02)
    [seen] = h2c.requests
    assert (seen.headers[b":method"], seen.body) == (b"POST", bytearray())
    assert b"transfer-encoding" not in seen.headers
    assert owner.link is not None
    owner.link.write(b"4\r\nbody\r\n0\r\nx-sum: 7\r\n\r\n")
    assert await asyncio.wait_for(owner.outcome, WAIT) == "done"
    assert (seen.body, seen.trailers) == (bytearray(b"body"), {b"x-sum": b"7"})
    assert owner.body == b"body"
    await pool.close()


async def test_after_an_origin_goaway_its_streams_finish_and_new_ones_go_elsewhere(
    h2c: H2cOrigin,
) -> None:
    """A graceful shutdown (gRPC servers send GOAWAY, then finish what they began): the stream
    the GOAWAY names gets its whole answer; the next request opens a new connection."""
    pool = H2OriginPool("127.0.0.1", h2c.port, connect_timeout=WAIT)
    first = Owner(pool, "/goaway-first")
    first.go()
    assert await asyncio.wait_for(first.outcome, WAIT) == "done"
    assert (first.body, first.trailers) == (b"ok:/goaway-first", [(b"x-origin-trailer", b"done")])
    second = Owner(pool, "/next")
    second.go()
    assert await asyncio.wait_for(second.outcome, WAIT) == "done"
    assert [r.connection for r in h2c.requests] == [0, 1]
    await pool.close()
