"""End to end over real sockets: identity headers, SNI/Host agreement, request-mode policy."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from edgeproxy.dataplane.http.identity import ClientIdentity, IdentityCache
from edgeproxy.tls.session import Reason, TlsSession, VerifyResult
from support.origin import RecordingOrigin, Seen

from .edgehttp_origin import Proxy, StartProxy
from .edgehttp_support import ClientPki, RawClient, parse_xfcc

SPOOFED = (
    'X-Forwarded-Client-Cert: Hash=spoofed;Subject="CN=admin"\r\n'
    "client-cert: :c3Bvb2Y=:\r\n"
    "Client-Cert-Chain: :c3Bvb2Y=:\r\n"
    "X-CLIENT-CERT-VERIFY: SUCCESS\r\n"
)


async def forwarded(
    origin: RecordingOrigin, start_proxy: StartProxy, headers: str = "", **options: object
) -> tuple[Proxy, Seen]:
    """GET / with `headers` through a proxy started with `options`, answered 200: the proxy, and
    the request as the origin saw it."""
    proxy = await start_proxy(origin.url, **options)
    client = await RawClient.connect(proxy.port)
    assert (await client.request("/", headers=headers)).status == 200
    await client.close()
    return proxy, origin.requests[0]


async def test_200_with_xfcc_and_rfc9440_identity_at_origin(
    origin: RecordingOrigin, start_proxy: StartProxy, pki: ClientPki
) -> None:
    proxy = await start_proxy(origin.url, identity_headers=("xfcc", "rfc9440"))
    client = await RawClient.connect(proxy.port)
    resp = await client.request("/hello?x=1")
    assert resp.status == 200
    assert json.loads(resp.body)["path"] == "/hello?x=1"
    seen = origin.requests[0]
    xfcc = dict(parse_xfcc(seen.one("X-Forwarded-Client-Cert")))
    assert xfcc["Hash"] == hashlib.sha256(pki.chain_der[0]).hexdigest()
    assert unquote(xfcc["Cert"]) == pki.leaf.public_bytes(Encoding.PEM).decode()
    assert xfcc["Subject"] == pki.leaf.subject.rfc4514_string()
    leaf = base64.b64decode(seen.one("Client-Cert").strip(":"))
    assert x509.load_der_x509_certificate(leaf) == pki.leaf
    chain = seen.one("Client-Cert-Chain")
    assert chain is not None
    assert base64.b64decode(chain.strip(":")) == pki.chain_der[1]
    assert seen.one("X-Client-Cert-Verify") == "SUCCESS"
    record = proxy.records[0]
    assert (record.status, record.method, record.path) == (200, "GET", "/hello?x=1")
    assert record.client_fingerprint_sha256 == xfcc["Hash"]
    assert record.client_subject == pki.leaf.subject.rfc4514_string()
    assert (record.edge_certificate, record.ca_set, record.ca_set_version) == ("api", "partners", 3)
    assert record.verify_result == "SUCCESS"
    assert record.origin_duration is not None
    await client.close()


async def test_spoofed_identity_headers_are_replaced(
    origin: RecordingOrigin, start_proxy: StartProxy, pki: ClientPki
) -> None:
    _, seen = await forwarded(origin, start_proxy, SPOOFED, identity_headers=("xfcc",))
    assert "spoofed" not in json.dumps(seen.headers)
    assert "c3Bvb2Y" not in json.dumps(seen.headers)
    assert seen.all("Client-Cert") == []
    assert seen.all("Client-Cert-Chain") == []
    assert seen.one("X-Forwarded-Client-Cert").startswith("Hash=")
    assert seen.all("X-Client-Cert-Verify") == ["SUCCESS"]


async def test_spoofed_identity_headers_are_dropped_without_a_certificate(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    _, seen = await forwarded(
        origin,
        start_proxy,
        SPOOFED,
        verify=VerifyResult.NONE,
        reason=Reason.NO_CERTIFICATE,
        mode="request",
        on_failure="forward",
        identity_headers=("xfcc", "rfc9440"),
    )
    assert seen.all("X-Forwarded-Client-Cert") == []
    assert seen.all("Client-Cert") == []
    assert seen.all("X-Client-Cert-Verify") == ["NONE"]


async def test_host_mismatch_is_421_and_never_reaches_origin(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    for host in ("evil.example", "a.b.api.example.com", "api.example.com.evil"):
        await client.send(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        resp = await client.response()
        assert resp.status == 421
        assert json.loads(resp.body)["type"].endswith("/misdirected-request")
    # Absolute-form naming another authority is refused too, whatever Host says.
    await client.send(b"GET http://evil.example/ HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
    assert (await client.response()).status == 421
    assert origin.requests == []
    await client.close()


async def test_matching_hosts_are_proxied(origin: RecordingOrigin, start_proxy: StartProxy) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    for host in ("api.example.com", "API.EXAMPLE.COM:8443", "x.api.example.com"):
        await client.send(f"GET /h HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert (await client.response()).status == 200
    await client.send(
        b"GET http://api.example.com/abs?q=1 HTTP/1.1\r\nHost: api.example.com\r\n\r\n"
    )
    assert (await client.response()).status == 200
    assert [r.path for r in origin.requests] == ["/h", "/h", "/h", "/abs?q=1"]
    await client.close()


async def test_request_mode_deny_is_403_and_never_reaches_origin(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(
        origin.url, verify=VerifyResult.FAILED, reason=Reason.UNKNOWN_CA, mode="request"
    )
    client = await RawClient.connect(proxy.port)
    resp = await client.request("/secret")
    assert resp.status == 403
    assert resp.header("content-type") == "application/problem+json"
    doc = json.loads(resp.body)
    assert doc["reason"] == "unknown_ca"
    assert "unknown_ca" in doc["detail"]
    assert doc["type"] == "https://edgeproxy.dev/problems/client-certificate-rejected"
    assert (await client.request("/again")).status == 403  # keep-alive: still denied
    assert origin.requests == []
    assert [r.status for r in proxy.records] == [403, 403]
    await client.close()


async def test_request_mode_deny_without_certificate_names_the_requirement(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(
        origin.url, verify=VerifyResult.NONE, reason=Reason.NO_CERTIFICATE, mode="request"
    )
    client = await RawClient.connect(proxy.port)
    resp = await client.request("/", method="POST", body=b"payload")
    assert resp.status == 403
    assert json.loads(resp.body)["type"].endswith("/client-certificate-required")
    assert origin.requests == []
    await client.close()


async def test_request_mode_forward_sends_the_failure_to_origin(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy, seen = await forwarded(
        origin,
        start_proxy,
        verify=VerifyResult.FAILED,
        reason=Reason.EXPIRED,
        mode="request",
        on_failure="forward",
    )
    assert seen.all("X-Client-Cert-Verify") == ["FAILED:expired"]
    assert seen.all("X-Forwarded-Client-Cert") == []  # an unverified cert asserts nothing
    assert proxy.records[0].verify_reason == "expired"


async def test_forwarding_headers_and_hop_by_hop_both_ways(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    resp = await client.request(
        "/?hop=1",
        headers=(
            "Connection: keep-alive, X-Private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\n"
            "TE: trailers\r\nProxy-Authorization: Basic eA==\r\nX-Forwarded-For: 203.0.113.7\r\n"
            "X-Forwarded-Proto: http\r\nX-Forwarded-Host: evil\r\nVia: 1.0 corp\r\nX-Kept: yes\r\n"
        ),
    )
    assert resp.status == 200
    seen = origin.requests[0]
    for name in ("X-Private", "Keep-Alive", "TE", "Proxy-Authorization", "Connection"):
        assert seen.all(name) == [], name
    assert seen.one("X-Kept") == "yes"
    assert seen.one("X-Forwarded-For") == "203.0.113.7, 127.0.0.1"
    assert seen.one("X-Forwarded-Proto") == "https"
    assert seen.one("X-Forwarded-Host") == "api.example.com"
    assert seen.one("Via") == "1.0 corp, 1.1 edgeproxy"
    # Response: the origin's Connection-named field is hop-by-hop too; Via is appended.
    assert resp.header("x-resp-hop") is None
    assert resp.header("connection") is None
    assert resp.header("via") == "1.1 app, 1.1 edgeproxy"
    await client.close()


async def test_identity_is_encoded_once_per_connection(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    calls: list[TlsSession] = []

    class CountingCache(IdentityCache):
        __slots__ = ()

        def get(self, session: TlsSession) -> ClientIdentity:
            calls.append(session)
            return super().get(session)

    proxy.context.identities = CountingCache()
    client = await RawClient.connect(proxy.port)
    for _ in range(3):
        assert (await client.request("/")).status == 200
    assert len(calls) == 1
    other = await RawClient.connect(proxy.port)
    assert (await other.request("/")).status == 200
    assert len(calls) == 2  # a new connection asks again (and hits the shared cache)
    await client.close()
    await other.close()
