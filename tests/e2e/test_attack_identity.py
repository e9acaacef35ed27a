"""The attacker's catalogue for identity headers: raw request bytes over real TLS, and exactly what
the recording origin received (docs/dataplane.md: identity fields are the edge's alone).

Whatever a client writes, the identity fields the origin sees must be the ones the edge sets for
that connection, byte for byte: the ones a clean request on the same kind of connection gets. An
origin may fold case and read `_`, `.` or other punctuation as `-` (CGI, WSGI, PHP, Rack), so every
name that folds to an identity field counts as one.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
from dataclasses import dataclass
from itertools import count

import pytest

from support.origin import RecordingOrigin, Seen

from .clients import TIMEOUT, read_until_closed
from .conftest import Running
from .pki import Client, E2ePki

pytestmark = pytest.mark.slow

IDENTITY = frozenset({"xforwardedclientcert", "clientcert", "clientcertchain", "xclientcertverify"})
MARK = "evil"  # in every value the attacker sends: must never reach the origin

# Every spelling of the four identity fields the parser admits: letter case, `_` for `-`, mixed,
# other token characters an origin might fold.
SPELLINGS = [
    f"{prefix}{sep.join(words)}"
    for words in (
        ("X", "Forwarded", "Client", "Cert"),
        ("Client", "Cert"),
        ("Client", "Cert", "Chain"),
        ("X", "Client", "Cert", "Verify"),
    )
    for prefix, sep in (("", "-"), ("", "_"), ("", "."), ("", "~"), ("", "+"))
] + [
    "x-client-cert-verify",
    "X-CLIENT-CERT-VERIFY",
    "x-cLiEnT-cErT-vErIfY",
    "X_CLIENT_CERT_VERIFY",
    "x_client_cert_verify",
    "X-Client_Cert-Verify",
    "X_Client-Cert_Verify",
    "x-forwarded_client-cert",
    "X_FORWARDED_CLIENT_CERT",
    "client_cert",
    "CLIENT-CERT",
    "Client-cert_Chain",
    "CLIENT_CERT_CHAIN",
    "X__Client__Cert__Verify",
    "X-Client-Cert-Verify_",
    "_X-Client-Cert-Verify",
    "X-Client-Cert-Verify-",
    "X-Client-Cert--Verify",
]

# Heads llhttp must refuse (400) before anything reaches the origin: whitespace around or inside a
# name, obs-fold continuation lines, control bytes, bare LF.
MALFORMED = {
    "space-before-colon": "X-Client-Cert-Verify : SUCCESS-evil\r\n",
    "tab-before-colon": "X-Client-Cert-Verify\t: SUCCESS-evil\r\n",
    "spaces-before-colon": "X_Client_Cert_Verify   : SUCCESS-evil\r\n",
    "obs-fold": "X-Trace: a\r\n X-Client-Cert-Verify: SUCCESS-evil\r\n",
    "obs-fold-tab": "X-Client-Cert-Verify: FAILED\r\n\tSUCCESS-evil\r\n",
    "obs-fold-underscore": "X-Trace: a\r\n\tX_Client_Cert_Verify: SUCCESS-evil\r\n",
    "nul-in-name": "X-Client-Cert-Verify\x00: SUCCESS-evil\r\n",
    "cr-in-name": "X-Client\rCert-Verify: SUCCESS-evil\r\n",
    "space-in-name": "X-Client Cert-Verify: SUCCESS-evil\r\n",
    "no-colon": "X-Client-Cert-Verify SUCCESS-evil\r\n",
    "bare-lf": "X-Client-Cert-Verify: SUCCESS-evil\n",
    "nbsp-in-name": "X-Client-Cert-Verify\xa0: SUCCESS-evil\r\n",
}


@dataclass(frozen=True)
class Scenario:
    sni: str
    client: str | None  # an attribute of E2ePki, or None: no certificate
    verify: str  # the X-Client-Cert-Verify value the edge must set


SCENARIOS = [
    Scenario("api.test", "alice", "SUCCESS"),  # require, xfcc + rfc9440
    Scenario("forward.test", None, "NONE"),  # request, on_failure forward
    Scenario("forward.test", "bob", "FAILED:unknown_ca"),
    Scenario("forward.test", "alice", "SUCCESS"),
    Scenario("other.test", "alice", "SUCCESS"),  # request, deny; xfcc only
]
IDS = [f"{s.sni.split('.')[0]}-{s.client or 'nocert'}" for s in SCENARIOS]
_paths = count()


def fold(name: str) -> str:
    """A field name as the most lenient origin reads it."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def identity_of(seen: Seen) -> list[tuple[str, str]]:
    """The identity fields the origin saw, in order, names as sent."""
    return [(k, v) for k, v in seen.headers if fold(k) in IDENTITY]


def request(path: str, host: str, extra: str = "", *, close: bool = False) -> bytes:
    connection = "Connection: close\r\n" if close else ""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}{connection}\r\n".encode("latin-1")


def tls_exchange(pki: E2ePki, port: int, sni: str, client: Client | None, payload: bytes) -> bytes:
    """One TLS connection: write `payload` at once, return everything read until the close."""
    context = pki.client_context(client)
    with (
        socket.create_connection(("127.0.0.1", port), TIMEOUT) as sock,
        context.wrap_socket(sock, server_hostname=sni) as tls,
    ):
        tls.sendall(payload)
        return read_until_closed(tls)


async def send(pki: E2ePki, node: Running, scenario: Scenario, payload: bytes) -> bytes:
    client = None if scenario.client is None else getattr(pki, scenario.client)
    return await asyncio.to_thread(tls_exchange, pki, node.port, scenario.sni, client, payload)


def statuses(raw: bytes) -> list[int]:
    return [int(m) for m in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


def new_path(name: str) -> str:
    return f"/attack-{name}-{next(_paths)}"


async def baseline(
    pki: E2ePki, node: Running, origin: RecordingOrigin, scenario: Scenario
) -> list[tuple[str, str]]:
    """What the edge itself asserts on this kind of connection: a clean request's identity."""
    path = new_path("baseline")
    raw = await send(pki, node, scenario, request(path, scenario.sni, close=True))
    assert statuses(raw) == [200], raw[:200]
    own = identity_of(origin.last(path))
    assert [v for k, v in own if k == "X-Client-Cert-Verify"] == [scenario.verify]
    names = [k for k, _ in own]
    if scenario.verify == "SUCCESS":
        assert names.count("X-Forwarded-Client-Cert") == 1
        client = getattr(pki, scenario.client or "")
        xfcc = dict(own)["X-Forwarded-Client-Cert"]
        assert xfcc.startswith(f"Hash={hashlib.sha256(client.der).hexdigest()};")
    else:  # no certificate details without a verified certificate
        assert names == ["X-Client-Cert-Verify"]
    return own


def assert_only_the_edges(seen: Seen, own: list[tuple[str, str]]) -> None:
    assert identity_of(seen) == own
    assert all(MARK not in value for _, value in seen.headers), seen.headers
    assert all("_" not in name for name, _ in seen.headers), seen.headers


def spoofing(names: list[str], value: str = f"SUCCESS-{MARK}") -> str:
    return "".join(f"{name}: {value}\r\n" for name in names)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
async def test_no_spelling_of_an_identity_field_reaches_the_origin(
    node: Running, pki: E2ePki, origin: RecordingOrigin, scenario: Scenario
) -> None:
    own = await baseline(pki, node, origin, scenario)
    path = new_path("spellings")
    # Every spelling once, the canonical ones twice more (duplicates), one very long value.
    canonical = ["X-Forwarded-Client-Cert", "Client-Cert", "Client-Cert-Chain"]
    canonical += ["X-Client-Cert-Verify"]
    extra = spoofing(SPELLINGS) + spoofing(canonical * 2)
    extra += spoofing(["X_Forwarded_Client_Cert"], "Hash=" + "a" * 6000 + MARK)
    raw = await send(pki, node, scenario, request(path, scenario.sni, extra, close=True))
    assert statuses(raw) == [200], raw[:200]
    assert_only_the_edges(origin.last(path), own)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
async def test_spoofing_in_a_pipelined_second_request_is_stripped_too(
    node: Running, pki: E2ePki, origin: RecordingOrigin, scenario: Scenario
) -> None:
    own = await baseline(pki, node, origin, scenario)
    first, second, third = new_path("first"), new_path("second"), new_path("third")
    underscored = ["X_Client_Cert_Verify", "X_Forwarded_Client_Cert", "Client_Cert"]
    payload = (
        request(first, scenario.sni)
        + request(second, scenario.sni, spoofing([*underscored, "Client-Cert-Chain"]))
        + request(third, scenario.sni, spoofing(["x_client_cert_verify"]), close=True)
    )
    raw = await send(pki, node, scenario, payload)
    assert statuses(raw) == [200, 200, 200], raw[:300]
    for path in (first, second, third):
        assert_only_the_edges(origin.last(path), own)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
async def test_connection_naming_an_identity_field_cannot_remove_the_edges_own(
    node: Running, pki: E2ePki, origin: RecordingOrigin, scenario: Scenario
) -> None:
    # Fields named in Connection are hop-by-hop and dropped: only the client's copies, never the
    # ones the edge adds after the client's fields are gone.
    own = await baseline(pki, node, origin, scenario)
    path = new_path("connection")
    extra = "Connection: keep-alive, X-Client-Cert-Verify, X-Forwarded-Client-Cert, Client-Cert\r\n"
    extra += spoofing(["X-Client-Cert-Verify", "X_Client_Cert_Verify"])
    raw = await send(pki, node, scenario, request(path, scenario.sni, extra, close=True))
    assert statuses(raw) == [200], raw[:200]
    assert_only_the_edges(origin.last(path), own)


@pytest.mark.parametrize("scenario", SCENARIOS[:2], ids=IDS[:2])
async def test_identity_fields_in_a_chunked_trailer_do_not_reach_the_origin(
    node: Running, pki: E2ePki, origin: RecordingOrigin, scenario: Scenario
) -> None:
    own = await baseline(pki, node, origin, scenario)
    path = new_path("trailer")
    payload = (
        f"POST {path} HTTP/1.1\r\nHost: {scenario.sni}\r\nTransfer-Encoding: chunked\r\n"
        f"Connection: close\r\n\r\n5\r\nhello\r\n0\r\n"
        f"X-Client-Cert-Verify: SUCCESS-{MARK}\r\nX_Client_Cert_Verify: SUCCESS-{MARK}\r\n\r\n"
    ).encode()
    raw = await send(pki, node, scenario, payload)
    assert statuses(raw) == [200], raw[:200]
    seen = origin.last(path)
    assert seen.body_bytes == 5
    assert_only_the_edges(seen, own)


@pytest.mark.parametrize("scenario", SCENARIOS[:3], ids=IDS[:3])
@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_identity_lines_are_refused_with_400(
    node: Running, pki: E2ePki, origin: RecordingOrigin, scenario: Scenario, case: str
) -> None:
    path = new_path(case)
    line = MALFORMED[case]
    head = f"GET {path} HTTP/1.1\r\nHost: {scenario.sni}\r\n{line}Connection: close\r\n\r\n"
    raw = await send(pki, node, scenario, head.encode("latin-1"))
    assert statuses(raw) == [400], raw[:200]
    assert path not in origin.paths()


@pytest.mark.parametrize("scenario", SCENARIOS[:2], ids=IDS[:2])
async def test_a_malformed_pipelined_request_is_refused_after_the_good_one(
    node: Running, pki: E2ePki, origin: RecordingOrigin, scenario: Scenario
) -> None:
    own = await baseline(pki, node, origin, scenario)
    good, bad = new_path("good"), new_path("bad")
    payload = request(good, scenario.sni) + request(
        bad, scenario.sni, "X-Client-Cert-Verify : SUCCESS-evil\r\n", close=True
    )
    raw = await send(pki, node, scenario, payload)
    assert statuses(raw) == [200, 400], raw[:300]
    assert_only_the_edges(origin.last(good), own)
    assert bad not in origin.paths()


FORMS = {
    # (request line, extra head lines, body): each spoofs the identity fields in its own way.
    "http10": ("GET {path} HTTP/1.0", "", b""),
    "absolute-form": ("GET https://{host}{path} HTTP/1.1", "Connection: close\r\n", b""),
    "post-length": ("POST {path} HTTP/1.1", "Content-Length: 4\r\nConnection: close\r\n", b"body"),
    "head": ("HEAD {path} HTTP/1.1", "Connection: close\r\n", b""),
}


@pytest.mark.parametrize("scenario", SCENARIOS[:2], ids=IDS[:2])
@pytest.mark.parametrize("form", sorted(FORMS))
async def test_every_request_form_gets_only_the_edges_identity(
    node: Running, pki: E2ePki, origin: RecordingOrigin, scenario: Scenario, form: str
) -> None:
    own = await baseline(pki, node, origin, scenario)
    path = new_path(form)
    line, extra, body = FORMS[form]
    head = line.format(path=path, host=scenario.sni) + f"\r\nHost: {scenario.sni}\r\n"
    head += spoofing(["X-Client-Cert-Verify", "X_Client_Cert_Verify", "x-forwarded-client-cert"])
    raw = await send(pki, node, scenario, (head + extra + "\r\n").encode() + body)
    assert statuses(raw) == [200], raw[:200]
    assert_only_the_edges(origin.last(path), own)


def websocket_upgrade(
    pki: E2ePki, port: int, sni: str, client: Client | None, payload: bytes
) -> bytes:
    """Send an upgrade request; return the response head (the tunnel then stays open: close it)."""
    context = pki.client_context(client)
    with (
        socket.create_connection(("127.0.0.1", port), TIMEOUT) as sock,
        context.wrap_socket(sock, server_hostname=sni) as tls,
    ):
        tls.sendall(payload)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = tls.recv(4096)
            if not chunk:
                break
            head += chunk
        return head


@pytest.mark.parametrize("scenario", SCENARIOS[:2], ids=IDS[:2])
async def test_a_websocket_upgrade_gets_only_the_edges_identity(
    node: Running, pki: E2ePki, origin: RecordingOrigin, scenario: Scenario
) -> None:
    own = await baseline(pki, node, origin, scenario)
    before = len(origin.requests)
    head = (
        f"GET /ws HTTP/1.1\r\nHost: {scenario.sni}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        + spoofing(["X-Client-Cert-Verify", "X_Client_Cert_Verify", "Client_Cert"])
        + "\r\n"
    )
    client = None if scenario.client is None else getattr(pki, scenario.client)
    raw = await asyncio.to_thread(
        websocket_upgrade, pki, node.port, scenario.sni, client, head.encode()
    )
    assert statuses(raw) == [101], raw[:200]
    (seen,) = [r for r in origin.requests[before:] if r.path == "/ws"]
    assert_only_the_edges(seen, own)
