"""The HTTP exchange machine without sockets: its transition tables, and whole exchanges driven
with fake client streams, origin links and pools (bytes in, bytes and effects out)."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from edgeproxy.config.model import EdgeLimits
from edgeproxy.dataplane.http.exchange import (
    ClientState,
    Exchange,
    HttpConnection,
    IllegalTransition,
    OriginState,
    Pause,
)
from edgeproxy.dataplane.http.headers import HostMatcher
from edgeproxy.dataplane.http.identity import IdentityCache
from edgeproxy.dataplane.http.links import OriginOwner
from edgeproxy.dataplane.http.records import AccessRecord, RequestObserver, RevocationProvider

from .edgehttp_support import HOSTNAMES, make_session

CS, OS = ClientState, OriginState
GET = b"GET /a HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
OK = [(b"Content-Length", b"2")]


# -- the tables ----------------------------------------------------------------------------------


def _walk(ex: Exchange, *states: ClientState | OriginState) -> None:
    for state in states:
        ex.move(state)


def test_a_proxied_keep_alive_exchange_is_a_legal_walk() -> None:
    ex = Exchange()
    _walk(ex, CS.HEAD, CS.FORWARD, OS.SENDING, OS.RECEIVING, OS.DONE, CS.DONE)
    assert (ex.client, ex.origin) == (CS.DONE, OS.DONE)


def test_other_legal_walks() -> None:
    _walk(Exchange(), CS.HEAD, CS.FORWARD, OS.GATED, OS.CONNECTING, OS.SENDING, OS.CLOSING, OS.DONE)
    _walk(Exchange(), CS.HEAD, CS.FORWARD, OS.SENDING, OS.CONNECTING, OS.SENDING)  # a retry
    _walk(Exchange(), CS.HEAD, CS.FORWARD, OS.SENDING, OS.RECEIVING, OS.TUNNEL, CS.TUNNEL)
    _walk(Exchange(), CS.HEAD, CS.LOCAL, CS.CLOSING, CS.CLOSED)
    _walk(Exchange(), CS.LOCAL, CS.DONE)  # a held-back pipelined request, malformed


@pytest.mark.parametrize(
    ("walk", "refused"),
    [
        ((), CS.FORWARD),  # a request is forwarded only once its head is in
        ((), CS.DONE),
        ((CS.HEAD, CS.FORWARD, CS.DONE), CS.IDLE),  # a finished exchange is never reused
        ((CS.CLOSING,), CS.HEAD),  # nothing after the final response
        ((CS.CLOSED,), CS.CLOSING),
        ((CS.HEAD, CS.LOCAL), CS.TUNNEL),  # only the origin's 101 makes a tunnel
        ((), OS.RECEIVING),  # no response without a request sent
        ((OS.SENDING, OS.RECEIVING), OS.CONNECTING),  # no retry once a response began
        ((OS.SENDING, OS.RECEIVING, OS.DONE), OS.SENDING),
        ((OS.CLOSED,), OS.SENDING),
        ((OS.SENDING, OS.CLOSING), OS.TUNNEL),
    ],
)
def test_illegal_moves_are_refused_with_both_state_names(
    walk: tuple[ClientState | OriginState, ...], refused: ClientState | OriginState
) -> None:
    ex = Exchange()
    _walk(ex, *walk)
    before = (ex.client, ex.origin)
    with pytest.raises(IllegalTransition) as caught:
        ex.move(refused)
    current = before[0] if isinstance(refused, ClientState) else before[1]
    side = "client" if isinstance(refused, ClientState) else "origin"
    assert str(caught.value) == f"illegal {side} state change {current.value} -> {refused.value}"
    assert (ex.client, ex.origin) == before  # a refused move changes nothing


def test_every_live_client_state_can_close_and_closed_is_final() -> None:
    for state in (CS.IDLE, CS.HEAD, CS.FORWARD, CS.LOCAL, CS.TUNNEL, CS.CLOSING):
        ex = Exchange()
        ex.client = state
        ex.move(CS.CLOSED)
    for target in ClientState:
        ex = Exchange()
        ex.client = CS.CLOSED
        with pytest.raises(IllegalTransition):
            ex.move(target)


def test_repr_names_the_states() -> None:
    ex = Exchange()
    _walk(ex, CS.HEAD, CS.FORWARD, OS.CONNECTING)
    assert repr(ex) == "<Exchange client=forward origin=connecting>"


def test_the_machine_module_does_no_io() -> None:
    """exchange.py and every module of ours it imports stay free of asyncio and sockets."""
    src = Path(__file__).parents[3] / "src"
    seen: set[str] = set()
    todo = ["edgeproxy.dataplane.http.exchange"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = src / (module.replace(".", "/") + ".py")
        if not path.exists():
            continue  # a package's name: its __init__ is not what the machine needs
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"asyncio", "socket", "selectors"}, module
                if name.startswith("edgeproxy."):
                    todo.append(name)
    assert "edgeproxy.dataplane.http.parser" in seen


# -- whole exchanges against fakes ---------------------------------------------------------------


@dataclass
class Stream:
    written: list[bytes] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def pause_reading(self) -> None:
        self.events.append("pause")

    def resume_reading(self) -> None:
        self.events.append("resume")

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.events.append("write_eof")

    def close(self) -> None:
        self.events.append("close")

    def abort(self) -> None:
        self.events.append("abort")

    def text(self) -> bytes:
        return b"".join(self.written)


@dataclass
class Link:
    reused: bool = False
    got_response: bool = False
    written: list[bytes] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def start(self, owner: OriginOwner, head_only: bool, upgrade: bool) -> None:
        self.events.append("start")

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def write_eof(self) -> None:
        self.events.append("write_eof")

    def pause_reading(self) -> None:
        self.events.append("pause")

    def resume_reading(self) -> None:
        self.events.append("resume")

    def close(self) -> None:
        self.events.append("close")

    def abort(self) -> None:
        self.events.append("abort")


@dataclass
class Pool:
    idle: list[Link] = field(default_factory=list)
    connecting: list[HttpConnection] = field(default_factory=list)
    released: list[Link] = field(default_factory=list)

    def take(self) -> Link | None:
        return self.idle.pop() if self.idle else None

    def connect(self, owner: HttpConnection) -> None:
        self.connecting.append(owner)

    def release(self, link: Link) -> None:
        self.released.append(link)


@dataclass
class Shared:
    limits: EdgeLimits = field(default_factory=EdgeLimits)
    records: list[AccessRecord] = field(default_factory=list)
    identities: IdentityCache = field(default_factory=IdentityCache)
    revocation: RevocationProvider | None = None
    draining: bool = False

    def __post_init__(self) -> None:
        self.observer: RequestObserver | None = self  # it records what the connection reports

    def request_done(self, record: AccessRecord) -> None:
        self.records.append(record)


@dataclass
class Rig:
    conn: HttpConnection
    stream: Stream
    pool: Pool
    shared: Shared
    now: list[float]


def rig(*idle: Link) -> Rig:
    stream, pool, shared, now = Stream(), Pool(list(idle)), Shared(), [100.0]
    conn = HttpConnection(
        shared,
        make_session("http://origin.invalid"),
        stream,
        peer=("192.0.2.7", 40000),
        matcher=HostMatcher(HOSTNAMES),
        pool=pool,  # type: ignore[arg-type]
        clock=lambda: now[0],
    )
    return Rig(conn, stream, pool, shared, now)


def test_keep_alive_request_through_a_pooled_connection() -> None:
    link = Link(reused=True)
    r = rig(link)
    r.conn.receive(GET)
    ex = r.conn.ex
    assert (ex.client, ex.origin) == (CS.FORWARD, OS.SENDING)
    [head] = link.written
    assert head.startswith(b"GET /a HTTP/1.1\r\nHost: api.example.com\r\n")
    assert b"X-Forwarded-For: 192.0.2.7\r\n" in head
    assert r.conn.origin_head(200, b"OK", OK) is False
    assert (ex.client, ex.origin) == (CS.FORWARD, OS.RECEIVING)
    r.conn.origin_body(b"hi")
    r.conn.origin_end(keep_alive=True)
    assert (ex.client, ex.origin) == (CS.DONE, OS.DONE)
    assert r.conn.ex is not ex
    assert r.conn.ex.client is CS.IDLE
    assert r.pool.released == [link]
    assert r.stream.text().startswith(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
    assert r.stream.text().endswith(b"\r\n\r\nhi")
    assert [(rec.status, rec.path) for rec in r.shared.records] == [(200, "/a")]
    assert r.conn.deadline == 100.0 + EdgeLimits().idle_timeout
    assert r.stream.events == []  # never paused, never closed


def test_new_origin_connection_pauses_the_client_until_connected() -> None:
    r = rig()
    r.conn.receive(GET)
    assert r.conn.ex.origin is OS.CONNECTING
    assert r.conn.paused == Pause.AWAITING_ORIGIN
    assert r.stream.events == ["pause"]
    link = Link()
    r.conn.origin_connected(link)
    assert r.conn.ex.origin is OS.SENDING  # type: ignore[comparison-overlap]  # mypy keeps the narrowing across the call
    assert r.conn.paused == Pause.NONE
    assert r.stream.events == ["pause", "resume"]
    assert link.written
    assert link.written[0].startswith(b"GET /a ")


def test_pipelined_request_waits_for_the_first_response() -> None:
    first, second = Link(reused=True), Link(reused=True)
    r = rig(second, first)
    r.conn.receive(GET + GET.replace(b"/a", b"/b"))
    assert r.conn.paused == Pause.PIPELINED
    assert len(first.written) == 1
    assert second.written == []
    r.conn.origin_head(200, b"OK", OK)
    r.conn.origin_body(b"hi")
    r.conn.origin_end(keep_alive=True)
    assert second.written
    assert second.written[0].startswith(b"GET /b ")
    assert r.conn.paused == Pause.NONE  # type: ignore[comparison-overlap]  # mypy keeps the narrowing across the call
    assert r.stream.events == ["pause", "resume"]


def test_origin_failure_before_the_response_is_a_local_502() -> None:
    link = Link()
    r = rig(link)
    r.conn.receive(GET)
    ex = r.conn.ex
    r.conn.origin_failed("refused")
    assert ex.origin is OS.CLOSED
    assert ex.client is CS.DONE  # answered by the edge, and the connection goes on
    assert r.stream.text().startswith(b"HTTP/1.1 502 ")
    assert r.shared.records[0].status == 502


def test_stale_pooled_connection_is_retried_once_on_another() -> None:
    stale, fresh = Link(reused=True), Link(reused=True)
    r = rig(fresh, stale)
    r.conn.receive(GET)
    r.conn.origin_failed("origin closed the connection")
    assert r.conn.ex.origin is OS.SENDING
    assert r.conn.ex.retried
    assert fresh.written == stale.written


def test_head_deadline_answers_408_and_lingers() -> None:
    r = rig()
    r.conn.receive(b"GET / HTTP/1.1\r\nHost: api")
    assert r.conn.ex.client is CS.HEAD
    r.conn.on_deadline(r.conn.deadline)
    assert r.conn.ex.client is CS.CLOSING  # type: ignore[comparison-overlap]  # mypy keeps the narrowing across the call
    assert r.stream.text().startswith(b"HTTP/1.1 408 ")
    assert r.stream.events == ["write_eof"]
    r.conn.receive(b"more")  # discarded while lingering
    r.conn.connection_lost()
    assert r.conn.ex.client is CS.CLOSED


def test_bytes_after_a_framing_error_never_reach_an_origin() -> None:
    link = Link(reused=True)
    r = rig(link)
    r.conn.receive(b"GET / HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 1\r\n")
    r.conn.receive(b"Content-Length: 2\r\n\r\nxGET /smuggled HTTP/1.1\r\n\r\n")
    assert link.written == []
    assert r.stream.text().startswith(b"HTTP/1.1 400 ")
    assert r.conn.ex.client is CS.CLOSING


def test_websocket_upgrade_becomes_a_tunnel() -> None:
    link = Link(reused=True)
    r = rig(link)
    r.conn.receive(
        b"GET /ws HTTP/1.1\r\nHost: api.example.com\r\nConnection: Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\nearly"
    )
    r.conn.origin_head(101, b"Switching Protocols", [(b"Upgrade", b"websocket")])
    r.conn.origin_upgraded(b"from-origin")
    ex = r.conn.ex
    assert (ex.client, ex.origin) == (CS.TUNNEL, OS.TUNNEL)
    assert link.written[-1] == b"early"
    r.conn.receive(b"to-origin")
    assert link.written[-1] == b"to-origin"
    assert r.stream.written[-1] == b"from-origin"
    r.conn.origin_failed("origin closed the connection")
    assert (ex.client, ex.origin) == (CS.CLOSING, OS.CLOSED)


def test_repr_of_the_connection_names_states_and_pause_reasons() -> None:
    r = rig()
    r.conn.receive(GET)
    assert repr(r.conn) == (
        "<HttpConnection 192.0.2.7:40000 client=forward origin=connecting "
        "paused=<Pause.AWAITING_ORIGIN: 4>>"
    )


def test_a_small_body_is_buffered_before_any_origin_connection() -> None:
    link = Link(reused=True)
    r = rig(link)
    r.conn.receive(b"POST /p HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 6\r\n\r\nabc")
    ex = r.conn.ex
    assert (ex.client, ex.origin) == (CS.FORWARD, OS.BUFFERING)
    assert r.pool.idle == [link]  # not taken yet
    r.conn.receive(b"def")
    assert ex.origin is OS.SENDING
    [sent] = link.written  # head and whole body in one write
    assert sent.endswith(b"Content-Length: 6\r\n\r\nabcdef")


def test_a_slow_buffered_body_is_408_without_an_origin() -> None:
    r = rig(Link(reused=True))
    r.conn.receive(b"POST /p HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: 6\r\n\r\nab")
    ex = r.conn.ex
    limits = EdgeLimits()
    assert r.conn.deadline == 100.0 + limits.header_timeout + 2 / limits.body_min_rate
    r.now[0] = r.conn.deadline
    r.conn.on_deadline(r.now[0])
    assert (ex.client, ex.origin) == (CS.CLOSING, OS.CLOSED)
    assert r.stream.text().startswith(b"HTTP/1.1 408 ")
    assert len(r.pool.idle) == 1  # the origin was never asked


def test_a_slow_streamed_body_is_408_and_its_origin_connection_aborted() -> None:
    link = Link(reused=True)
    r = rig(link)
    big = EdgeLimits().request_buffer_bytes + 1
    r.conn.receive(
        b"POST /p HTTP/1.1\r\nHost: api.example.com\r\nContent-Length: %d\r\n\r\nab" % big
    )
    ex = r.conn.ex
    assert ex.origin is OS.SENDING  # larger than the buffer: streamed at once
    r.now[0] += EdgeLimits().body_timeout
    r.conn.on_deadline(r.now[0])
    assert (ex.client, ex.origin) == (CS.CLOSING, OS.CLOSED)
    assert link.events[-1] == "abort"
    assert r.stream.text().startswith(b"HTTP/1.1 408 ")


def test_a_client_that_stops_reading_is_aborted_after_send_timeout() -> None:
    link = Link(reused=True)
    r = rig(link)
    r.conn.receive(GET)
    r.conn.origin_head(200, b"OK", [(b"Content-Length", b"100000")])
    r.conn.client_blocked(True)
    assert link.events[-1] == "pause"
    assert r.conn.deadline == 100.0 + EdgeLimits().send_timeout
    r.conn.origin_flush()  # data already in flight does not extend it
    assert r.conn.deadline == 100.0 + EdgeLimits().send_timeout
    r.conn.on_deadline(r.conn.deadline)
    assert r.stream.events[0] == "abort"
    assert link.events[-1] == "abort"
