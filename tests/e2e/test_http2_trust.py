"""Trust changes reach HTTP/2 connections too (docs/dataplane.md): a connection no longer trusted
after an activation gets GOAWAY once its in-flight streams are answered; one still trusted is
not touched. `max_connection_age` retires HTTP/2 connections the same way."""

from __future__ import annotations

import pytest
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, ResponseReceived, StreamEnded

from support.h2raw import H2Raw
from support.origin import RecordingOrigin

from .conftest import AccessLog, MakeFiles, Running, StartNode
from .pki import Client, E2ePki
from .test_open_connections import wait_closed

pytestmark = pytest.mark.slow


async def _opened(port: int, pki: E2ePki, client: Client, path: str) -> H2Raw:
    raw = await H2Raw.connect(port, pki.client_context(client), "api.test")
    raw.request("api.test", path)
    await raw.flush()
    await raw.read(until=StreamEnded)
    assert any(isinstance(e, ResponseReceived) for e in raw.events)
    return raw


async def test_an_activation_that_drops_the_ca_sends_goaway_after_the_stream_in_flight(
    node: Running, pki: E2ePki, origin: RecordingOrigin, access_log: AccessLog
) -> None:
    alice = await _opened(node.port, pki, pki.alice, "/alice-1")
    carol = await _opened(node.port, pki, pki.carol, "/carol-1")
    try:
        in_flight = alice.request("api.test", "/slow")
        await alice.flush()
        await origin.slow_started.wait()
        version = await node.admin.create_version(node.set_id, [pki.root.pem])
        await node.admin.settle(node.set_id, await node.admin.activate(node.set_id, version))
        await wait_closed(node, "unknown_ca")

        await alice.read()  # until the edge closes
        goaway = alice.goaway()
        assert goaway is not None
        assert goaway.error_code == ErrorCodes.NO_ERROR
        assert goaway.last_stream_id is not None
        assert goaway.last_stream_id >= in_flight  # the stream in flight is served ...
        lines = {r.path: r for r in access_log.records("request")}
        assert lines["/slow"].status == 200  # ... and was answered before the close
        assert lines["/slow"].client_port == lines["/alice-1"].client_port
        assert alice.closed

        carol.request("api.test", "/carol-2")
        await carol.flush()
        await carol.read(until=StreamEnded)
        assert carol.goaway() is None
        assert "/carol-2" in origin.paths()
    finally:
        await alice.close()
        await carol.close()


async def test_max_connection_age_sends_goaway(
    pki: E2ePki, node_files: MakeFiles, start_node: StartNode
) -> None:
    running = await start_node(node_files(limits={"max_connection_age": 0.5}))
    running.set_id, running.version = await running.admin.publish([pki.ca_a.pem])
    alice = await _opened(running.port, pki, pki.alice, "/alice-1")
    try:
        await wait_closed(running, "max_age")
        await alice.read(until=ConnectionTerminated)
        goaway = alice.goaway()
        assert goaway is not None
        assert goaway.error_code == ErrorCodes.NO_ERROR
    finally:
        await alice.close()
