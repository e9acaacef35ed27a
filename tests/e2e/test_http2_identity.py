"""Identity fields over HTTP/2, as an attacker writes them (docs/dataplane.md "HTTP/2"): under a
pseudo-header name the request is malformed and refused, never forwarded; in `_` or `.` spellings
they are dropped like over HTTP/1.1, and the origin sees only the edge's own identity fields.
A raw `h2` client over TLS, its own header checks turned off, sends what curl would not."""

from __future__ import annotations

import pytest
from h2.errors import ErrorCodes
from h2.events import ConnectionTerminated, Event, ResponseReceived, StreamEnded, StreamReset

from support.h2raw import H2Raw
from support.origin import RecordingOrigin

from .conftest import Running
from .pki import E2ePki

pytestmark = pytest.mark.slow
MARK = "evil"  # in every value the attacker sends: must never reach the origin
PSEUDO = [":x-client-cert-verify", ":client-cert", ":x-forwarded-client-cert", ":client_cert"]


async def _raw(node: Running, pki: E2ePki) -> H2Raw:
    raw = await H2Raw.connect(node.port, pki.client_context(pki.alice), "api.test")
    raw.h2.config.validate_outbound_headers = False  # send what h2 itself would refuse
    return raw


def _status(events: list[Event], sid: int) -> int | None:
    for event in events:
        if isinstance(event, ResponseReceived) and event.stream_id == sid:
            return int(dict(event.headers or ())[b":status"])
    return None


@pytest.mark.parametrize("name", PSEUDO)
async def test_an_identity_field_under_a_pseudo_header_name_is_refused_never_forwarded(
    node: Running, pki: E2ePki, origin: RecordingOrigin, name: str
) -> None:
    raw = await _raw(node, pki)
    try:
        sid = raw.request("api.test", "/pseudo", extra=[(name, f"SUCCESS-{MARK}")])
        await raw.flush()
        events = await raw.read(until=StreamReset | ConnectionTerminated)
    finally:
        await raw.close()
    assert _status(events, sid) is None  # no answer at all: a malformed request
    resets = [e for e in events if isinstance(e, StreamReset) and e.stream_id == sid]
    goaway = raw.goaway()
    codes = [e.error_code for e in resets] + ([goaway.error_code] if goaway else [])
    assert codes == [ErrorCodes.PROTOCOL_ERROR]
    assert "/pseudo" not in origin.paths()
    # The twin: the same request without the field is served on a new connection.
    raw = await _raw(node, pki)
    try:
        sid = raw.request("api.test", "/pseudo-twin")
        await raw.flush()
        events = await raw.read(until=StreamEnded)
    finally:
        await raw.close()
    assert _status(events, sid) == 200


async def test_underscore_and_dot_spellings_over_http2_are_dropped(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    forged = [
        ("x_client_cert_verify", f"SUCCESS-{MARK}"),
        ("x_forwarded_client_cert", f"Hash={MARK}"),
        ("client_cert", f":{MARK}:"),
        ("client_cert_chain", f":{MARK}:"),
        ("x.client.cert.verify", f"SUCCESS-{MARK}"),
        ("x-client-cert-verify", f"SUCCESS-{MARK}"),
    ]
    raw = await _raw(node, pki)
    try:
        sid = raw.request("api.test", "/underscores", extra=forged)
        clean = raw.request("api.test", "/underscores-clean")
        await raw.flush()
        for _ in range(10):  # until both streams ended
            ended = {e.stream_id for e in raw.events if isinstance(e, StreamEnded)}
            if {sid, clean} <= ended or raw.closed:
                break
            await raw.read(until=StreamEnded)
    finally:
        await raw.close()
    assert (_status(raw.events, sid), _status(raw.events, clean)) == (200, 200)
    seen, own = origin.last("/underscores"), origin.last("/underscores-clean")
    assert MARK not in str(seen.headers)
    assert not [name for name, _ in seen.headers if "_" in name or "." in name]
    identity = (
        "X-Forwarded-Client-Cert",
        "Client-Cert",
        "Client-Cert-Chain",
        "X-Client-Cert-Verify",
    )
    assert [seen.all(n) for n in identity] == [own.all(n) for n in identity]
    assert seen.one("X-Client-Cert-Verify") == "SUCCESS"
    assert pki.alice.subject.split(",")[0] in seen.one("X-Forwarded-Client-Cert")
