"""RequestReader framing without sockets: one request at a time, limits, errors, upgrades."""

from __future__ import annotations

from edgeproxy.dataplane.http.parser import HttpError, RequestHead, RequestReader


class Sink:
    """Records events; with `auto_release` it ends each exchange as soon as the request ends."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.reader: RequestReader | None = None
        self.auto_release = False

    def on_request(self, head: RequestHead) -> None:
        self.events.append(("head", head.target))

    def on_request_body(self, data: bytes) -> None:
        self.events.append(("body", data))

    def on_request_end(self) -> None:
        self.events.append(("end", None))
        if self.auto_release:
            self.reader.release()  # type: ignore[union-attr]

    def on_request_error(self, error: HttpError) -> None:
        self.events.append(("error", error.status))


def reader(max_header: int = 1024, max_body: int = 100) -> tuple[RequestReader, Sink]:
    sink = Sink()
    sink.reader = RequestReader(sink, max_header, max_body)
    return sink.reader, sink


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: h\r\n\r\n".encode()


def test_pipelined_requests_are_delivered_one_exchange_at_a_time() -> None:
    r, sink = reader()
    r.feed(get("/1") + b"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc" + get("/3"))
    assert sink.events == [("head", b"/1"), ("end", None)]
    assert r.backlog > 0
    r.feed(get("/4"))  # arrives while /1 is in flight: held, not parsed
    assert sink.events == [("head", b"/1"), ("end", None)]
    r.release()
    assert sink.events[2:] == [("head", b"/2"), ("body", b"abc"), ("end", None)]
    r.release()
    r.release()
    assert [e for e in sink.events if e[0] == "head"] == [
        (("head", p)) for p in (b"/1", b"/2", b"/3", b"/4")
    ]
    assert r.backlog == 0


def test_synchronous_release_inside_a_callback_does_not_recurse() -> None:
    r, sink = reader()
    sink.auto_release = True
    r.feed(b"".join(get(f"/{i}") for i in range(2000)))
    assert sum(1 for kind, _ in sink.events if kind == "end") == 2000


def test_fast_path_streams_body_chunks_as_they_arrive() -> None:
    r, sink = reader(max_body=10_000)
    r.feed(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    assert sink.events == [("head", b"/"), ("body", b"hello")]
    r.feed(b"0\r\n\r\n")
    assert sink.events[-1] == ("end", None)


def test_header_limit_431_and_a_head_within_the_limit() -> None:
    r, sink = reader(max_header=256)
    r.feed(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 300 + b"\r\n\r\n")
    assert sink.events == [("error", 431)]
    r, sink = reader(max_header=256)
    r.feed(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 100 + b"\r\n\r\n")
    assert sink.events == [("head", b"/"), ("end", None)]


def test_a_header_dribbled_in_pieces_is_still_bounded() -> None:
    r, sink = reader(max_header=256)
    r.feed(b"GET / HTTP/1.1\r\nX-Big: ")
    for _ in range(40):
        r.feed(b"a" * 10)
    assert sink.events == [("error", 431)]


def test_body_limit_counts_chunked_bodies() -> None:
    r, sink = reader(max_body=8)
    r.feed(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
    r.feed(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n")
    assert sink.events == [("head", b"/"), ("body", b"hello"), ("error", 413)]


def test_garbage_is_400_and_nothing_after_it_is_parsed() -> None:
    r, sink = reader()
    r.feed(b"HELLO THERE\r\n\r\n")
    r.feed(get("/after"))
    assert sink.events == [("error", 400)]


def test_smuggling_shapes_are_rejected() -> None:
    r, sink = reader()
    r.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert sink.events == [("error", 400)]


def test_error_in_a_held_back_request_waits_for_the_current_exchange() -> None:
    r, sink = reader()
    r.feed(get("/ok") + b"NOT HTTP\r\n\r\n")
    assert sink.events == [("head", b"/ok"), ("end", None)]
    r.release()
    assert sink.events[-1] == ("error", 400)


def test_websocket_upgrade_stops_parsing_and_keeps_tunnel_bytes() -> None:
    r, sink = reader()
    r.feed(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x01a"
    )
    r.feed(b"GET /not-http HTTP/1.1\r\n\r\n")
    assert sink.events == [("head", b"/ws"), ("end", None)]
    assert r.take_tunnel_bytes() == b"\x81\x01aGET /not-http HTTP/1.1\r\n\r\n"


def test_other_upgrades_keep_parsing_http() -> None:
    r, sink = reader()
    sink.auto_release = True
    r.feed(b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" + get("/b"))
    assert [e for e in sink.events if e[0] == "head"] == [("head", b"/a"), ("head", b"/b")]


def test_trailers_and_chunk_extensions_are_bounded_too() -> None:
    r, sink = reader(max_header=256, max_body=10_000)
    r.feed(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: ")
    for _ in range(40):
        r.feed(b"t" * 10)
    assert sink.events[-1] == ("error", 400)
    r, sink = reader(max_header=256, max_body=10_000)  # a small trailer is fine (and dropped)
    r.feed(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
    r.feed(b"1\r\na\r\n0\r\nX-T: t\r\n\r\n")
    assert sink.events[-1] == ("end", None)


def test_a_long_chunk_extension_is_refused_even_inside_one_large_read() -> None:
    """A read that carries the whole extension and the data after it gives llhttp callbacks
    that would hide the run; large reads are parsed in head-sized pieces so it is still seen."""
    r, sink = reader(max_header=256, max_body=10_000)
    r.feed(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"3;"
        + b"x" * 2000
        + b"\r\nabc\r\n0\r\n\r\n"
        + get("/next")
    )
    assert sink.events[-1] == ("error", 400)
    assert ("head", b"/next") not in sink.events


def test_a_refused_upgrade_resumes_http_after_the_request() -> None:
    r, sink = reader()
    r.feed(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        + get("/next")
    )
    assert sink.events == [("head", b"/ws"), ("end", None)]
    r.resume_http()  # the origin answered 200, not 101
    r.release()
    assert sink.events[-2:] == [("head", b"/next"), ("end", None)]


def test_large_reads_in_pieces_keep_websocket_tunnel_bytes() -> None:
    r, sink = reader(max_header=64)
    frames = bytes(range(256)) * 4
    r.feed(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" + frames
    )
    assert sink.events == [("head", b"/ws"), ("end", None)]
    assert r.take_tunnel_bytes() == frames
