"""HTTP/2 stream limits (docs/dataplane.md "HTTP/2"): a stream past SETTINGS_MAX_CONCURRENT_STREAMS
is refused alone, a header list over `max_header_bytes` gets 431 on its stream, and after
`max_requests_per_connection` streams the edge sends GOAWAY; in every case the connection's
other streams, or the client's next connection, are served. A raw `h2` client over TLS sends
what well-behaved clients would not."""

from __future__ import annotations

import json

import pytest
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)

from edgeproxy.dataplane.http.h2server import HEADER_BLOCK_CAP
from support.h2raw import H2Raw
from support.origin import RecordingOrigin

from .clients import curl_keepalive
from .conftest import AccessLog, MakeFiles, Running, StartNode
from .pki import E2ePki

pytestmark = pytest.mark.slow
FLOOD = 3000  # streams: well past the reset budget's burst, and bounded


async def _node(
    node_files: MakeFiles, start_node: StartNode, pki: E2ePki, **limits: float
) -> Running:
    files = node_files()
    files.limits = {**files.limits, **limits}
    running = await start_node(files)
    await running.admin.publish([pki.ca_a.pem])
    return running


async def _raw(running: Running, pki: E2ePki) -> H2Raw:
    return await H2Raw.connect(running.port, pki.client_context(pki.alice), "api.test")


def _status(events: list[Event], sid: int) -> int | None:
    for event in events:
        if isinstance(event, ResponseReceived) and event.stream_id == sid:
            return int(dict(event.headers or ())[b":status"])
    return None


def _ended(events: list[Event]) -> set[int]:
    return {e.stream_id for e in events if isinstance(e, StreamEnded) and e.stream_id}


def _resets(events: list[Event]) -> dict[int, int]:
    return {e.stream_id: e.error_code for e in events if isinstance(e, StreamReset) and e.stream_id}


async def _until_ended(raw: H2Raw, sids: set[int], reads: int = 50) -> list[Event]:
    """Read until every stream of `sids` ended (or was reset), or the connection closed."""
    for _ in range(reads):
        if sids <= _ended(raw.events) | set(_resets(raw.events)) or raw.closed:
            break
        await raw.read(until=StreamEnded)
    return raw.events


async def test_a_stream_past_the_concurrent_limit_is_refused_alone(
    pki: E2ePki, origin: RecordingOrigin, node_files: MakeFiles, start_node: StartNode
) -> None:
    running = await _node(node_files, start_node, pki, max_concurrent_streams=2)
    raw = await _raw(running, pki)
    try:
        # Sent before the edge's SETTINGS are read, as a client may (its limit is not known
        # yet): two streams the origin holds, and a third one past the limit.
        held = [raw.request("api.test", f"/limit/{i}?hold") for i in range(2)]
        extra = raw.request("api.test", "/limit/extra")
        await raw.flush()
        await raw.read(until=StreamReset)
        assert _resets(raw.events) == {extra: ErrorCodes.REFUSED_STREAM}
        assert raw.goaway() is None
        origin.release_rest.set()
        events = await _until_ended(raw, set(held))
        assert [_status(events, sid) for sid in held] == [200, 200]
        # The connection goes on: a slot is free again.
        after = raw.request("api.test", "/limit/after")
        await raw.flush()
        events = await _until_ended(raw, {after})
        assert _status(events, after) == 200
    finally:
        await raw.close()
    assert "/limit/extra" not in origin.paths()
    assert sorted(origin.paths()) == ["/limit/0?hold", "/limit/1?hold", "/limit/after"]


async def test_streams_past_the_limit_again_and_again_are_calmed(
    pki: E2ePki, origin: RecordingOrigin, node_files: MakeFiles, start_node: StartNode
) -> None:
    """Refusing a stream costs the edge little, but not nothing: a client that keeps opening
    streams past the limit spends the rapid-reset budget and is calmed like one."""
    running = await _node(node_files, start_node, pki, max_concurrent_streams=1)
    raw = await _raw(running, pki)
    try:
        raw.request("api.test", "/past/held?hold")
        for i in range(FLOOD):
            raw.request("api.test", f"/past/{i}")
            if i % 100 == 99:
                await raw.flush()
        await raw.flush()
        await raw.read(until=ConnectionTerminated)
        goaway = raw.goaway()
        assert goaway is not None
        assert goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    finally:
        origin.release_rest.set()
        await raw.close()
    assert not [p for p in origin.paths() if p.startswith("/past/") and "held" not in p]


def _body(raw: H2Raw, sid: int) -> bytes:
    return b"".join(
        e.data or b"" for e in raw.events if isinstance(e, DataReceived) and e.stream_id == sid
    )


async def test_a_header_list_over_the_limit_is_a_431_on_its_stream_and_the_connection_goes_on(
    pki: E2ePki, origin: RecordingOrigin, node_files: MakeFiles, start_node: StartNode
) -> None:
    running = await _node(node_files, start_node, pki, max_header_bytes=8192)
    raw = await _raw(running, pki)
    try:
        big = raw.request("api.test", "/big-head", extra=[("x-big", "a" * 9000)])
        await raw.flush()
        await _until_ended(raw, {big})
        assert _status(raw.events, big) == 431
        problem = json.loads(_body(raw, big))
        assert problem["type"].endswith("/request-header-fields-too-large")
        after = raw.request("api.test", "/after-big-head", extra=[("x-small", "a" * 1000)])
        await raw.flush()
        await _until_ended(raw, {after})
        assert _status(raw.events, after) == 200
        assert raw.goaway() is None
    finally:
        await raw.close()
    # A header block past what any limit may allow (HEADER_BLOCK_CAP) ends the connection.
    raw = await _raw(running, pki)
    try:
        raw.request("api.test", "/huge-head", extra=[("x-huge", "a" * (HEADER_BLOCK_CAP + 1))])
        await raw.flush()
        await raw.read(until=ConnectionTerminated)
        goaway = raw.goaway()
        assert goaway is not None
        assert goaway.error_code != ErrorCodes.NO_ERROR
    finally:
        await raw.close()
    assert origin.paths() == ["/after-big-head"]


async def test_after_max_requests_per_connection_goaway_and_the_client_reconnects(
    pki: E2ePki,
    origin: RecordingOrigin,
    node_files: MakeFiles,
    start_node: StartNode,
    access_log: AccessLog,
) -> None:
    running = await _node(node_files, start_node, pki, max_requests_per_connection=3)
    # curl: five streams; the edge's GOAWAY comes with the third, so curl opens a second
    # connection for the fourth.
    paths = [f"/per-connection/{i}" for i in range(5)]
    results = await curl_keepalive(
        pki, running.port, "api.test", pki.alice, [("GET", p) for p in paths], http2=True
    )
    assert results == [(200, 1), (200, 0), (200, 0), (200, 1), (200, 0)]
    lines = [r for r in access_log.records("request") if r.path in paths]
    assert [(line.path, line.protocol, line.status) for line in lines] == [
        (p, "h2", 200) for p in paths
    ]
    ports = [line.client_port for line in lines]
    assert ports[0] == ports[1] == ports[2] != ports[3] == ports[4]
    # What the edge sends: GOAWAY NO_ERROR naming the third stream, which it still serves.
    raw = await _raw(running, pki)
    try:
        for i in range(3):
            sid = raw.request("api.test", f"/raw/{i}")
            await raw.flush()
            await raw.read(until=ConnectionTerminated if i == 2 else StreamEnded)
        goaway = raw.goaway()
        assert goaway is not None
        assert (goaway.error_code, goaway.last_stream_id) == (ErrorCodes.NO_ERROR, sid)
        await raw.read()  # the edge closes once the third stream is answered
        assert raw.closed
    finally:
        await raw.close()
    assert [r.status for r in access_log.records("request") if r.path.startswith("/raw/")] == [
        200,
        200,
        200,
    ]
