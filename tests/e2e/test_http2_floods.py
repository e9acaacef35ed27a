"""HTTP/2 floods (the 2019 advisories and the 2023 rapid reset): the flooding connection gets
GOAWAY ENHANCE_YOUR_CALM and is closed; another client is served all along."""

from __future__ import annotations

import pytest
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, ResponseReceived, StreamEnded
from h2.settings import SettingCodes

from support.h2raw import H2Raw
from support.origin import RecordingOrigin

from .clients import curl
from .conftest import Running
from .pki import E2ePki

pytestmark = pytest.mark.slow
FLOOD = 3000  # frames: well past every budget's burst, and bounded


async def _raw(node: Running, pki: E2ePki, settings: dict[int, int] | None = None) -> H2Raw:
    return await H2Raw.connect(node.port, pki.client_context(pki.alice), "api.test", settings)


async def _still_served(node: Running, pki: E2ePki, origin: RecordingOrigin, path: str) -> None:
    run, status, _ = await curl(pki, node.port, "api.test", pki.alice, path, extra=("--http2",))
    assert status == 200, run
    assert path in origin.paths()


async def _flooded(
    node: Running, pki: E2ePki, origin: RecordingOrigin, raw: H2Raw, after: str
) -> None:
    """Send what the test queued: the connection is calmed, and another client served."""
    await raw.flush()
    await _calmed(raw)
    await _still_served(node, pki, origin, after)


async def _calmed(raw: H2Raw) -> None:
    await raw.read(until=ConnectionTerminated)
    goaway = raw.goaway()
    assert goaway is not None
    assert goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
    await raw.read()  # then the edge closes the connection
    assert raw.closed


async def test_rapid_reset_is_calmed(node: Running, pki: E2ePki, origin: RecordingOrigin) -> None:
    raw = await _raw(node, pki)
    try:
        for i in range(FLOOD):
            sid = raw.request("api.test", f"/rr/{i}", end=False)
            raw.h2.reset_stream(sid, ErrorCodes.CANCEL)
            if i % 100 == 99:
                await raw.flush()
        await _flooded(node, pki, origin, raw, "/after-rapid-reset")
    finally:
        await raw.close()


async def test_settings_and_ping_floods_are_calmed(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    settings = await _raw(node, pki)
    pings = await _raw(node, pki)
    try:
        for i in range(FLOOD):
            settings.h2.update_settings({SettingCodes.MAX_FRAME_SIZE: 16384 + i % 2})
            pings.h2.ping(i.to_bytes(8, "big"))
        await settings.flush()
        await pings.flush()
        await _calmed(settings)
        await _calmed(pings)
        await _still_served(node, pki, origin, "/after-settings-flood")
    finally:
        await settings.close()
        await pings.close()


async def test_a_window_kept_tiny_is_calmed(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    """Data dribble (CVE-2019-9511): a 16-byte window, opened a byte at a time."""
    raw = await _raw(node, pki, {SettingCodes.INITIAL_WINDOW_SIZE: 16})
    try:
        sid = raw.request("api.test", "/bytes/1048576")
        await raw.read(until=ResponseReceived)
        for _ in range(FLOOD):
            raw.h2.increment_flow_control_window(1, sid)
        await _flooded(node, pki, origin, raw, "/after-tiny-windows")
    finally:
        await raw.close()


async def test_a_normal_h2_client_is_never_calmed(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    raw = await _raw(node, pki)
    try:
        sids = [raw.request("api.test", f"/calm/{i}") for i in range(50)]
        await raw.flush()
        ended: set[int] = set()
        for _ in range(200):
            events = await raw.read(until=StreamEnded)
            ended |= {e.stream_id for e in events if isinstance(e, StreamEnded)}
            if ended >= set(sids) or raw.closed:
                break
        assert ended >= set(sids)
        assert raw.goaway() is None
    finally:
        await raw.close()
