"""Sans-IO pieces: identity encoding, header rewriting, Host matching, problem responses."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import unquote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from edgeproxy.dataplane.http.headers import (
    CHUNKED,
    IDENTITY_HEADERS,
    RAW,
    UNTIL_CLOSE,
    HostMatcher,
    identity_names,
    normal_host,
    normalised_name,
    rewrite_request,
    rewrite_response,
)
from edgeproxy.dataplane.http.identity import IdentityCache, encode_identity
from edgeproxy.dataplane.http.parser import HttpError, RequestHead, asks_websocket
from edgeproxy.dataplane.http.problems import client_certificate_problem, problem_response
from edgeproxy.tls.session import Reason, VerifyResult

from .edgehttp_support import HOSTNAMES, ClientPki, make_session, parse_xfcc

ORIGIN = "http://127.0.0.1:1"


def headers_of(block: bytes) -> dict[str, str]:
    lines = block.decode().split("\r\n")
    return dict(line.split(": ", 1) for line in lines if line)


def test_xfcc_matches_the_certificate(pki: ClientPki) -> None:
    identity = encode_identity(make_session(ORIGIN, pki.chain_der, identity_headers=("xfcc",)))
    fields = headers_of(identity.header_block)
    assert set(fields) == {"X-Forwarded-Client-Cert", "X-Client-Cert-Verify"}
    pairs = parse_xfcc(fields["X-Forwarded-Client-Cert"])
    got = dict(pairs)
    leaf_der = pki.chain_der[0]
    assert got["Hash"] == hashlib.sha256(leaf_der).hexdigest()
    assert unquote(got["Cert"]) == pki.leaf.public_bytes(Encoding.PEM).decode()
    assert got["Subject"] == pki.leaf.subject.rfc4514_string()
    assert [v for k, v in pairs if k == "URI"] == ["spiffe://partners.example/ns/a;b"]
    assert [v for k, v in pairs if k == "DNS"] == [
        "client.partners.example",
        "alt.partners.example",
    ]
    # The URI holds ";" so it must be quoted; plain DNS names are not.
    assert 'URI="spiffe://partners.example/ns/a;b"' in fields["X-Forwarded-Client-Cert"]
    assert fields["X-Client-Cert-Verify"] == "SUCCESS"
    assert identity.fingerprint_sha256 == got["Hash"]
    assert identity.serial == format(pki.leaf.serial_number, "x")


def test_rfc9440_byte_sequences_decode_to_the_chain(pki: ClientPki) -> None:
    identity = encode_identity(make_session(ORIGIN, pki.chain_der, identity_headers=("rfc9440",)))
    fields = headers_of(identity.header_block)
    assert "X-Forwarded-Client-Cert" not in fields
    cert = fields["Client-Cert"]
    assert cert.startswith(":")
    assert cert.endswith(":")
    assert x509.load_der_x509_certificate(base64.b64decode(cert[1:-1])) == pki.leaf
    chain = [
        base64.b64decode(item.strip()[1:-1]) for item in fields["Client-Cert-Chain"].split(",")
    ]
    assert chain == [pki.chain_der[1]]  # the leaf is not repeated (RFC 9440 §2.3)


def test_leaf_only_chain_omits_client_cert_chain(pki: ClientPki) -> None:
    identity = encode_identity(
        make_session(ORIGIN, pki.chain_der[:1], identity_headers=("rfc9440",))
    )
    assert "Client-Cert-Chain" not in headers_of(identity.header_block)


def test_client_cert_chain_is_the_verified_chain_not_what_was_sent(pki: ClientPki) -> None:
    leaf, intermediate = pki.chain_der
    junk = (b"\x30\x03junk", intermediate, b"\x30\x03more")
    sent = make_session(
        ORIGIN, (leaf, *junk), verified=(leaf, intermediate), identity_headers=("rfc9440",)
    )
    fields = headers_of(encode_identity(sent).header_block)
    assert fields["Client-Cert-Chain"] == ":" + base64.b64encode(intermediate).decode() + ":"
    # Same leaf and verified chain, other junk: the same encoding, cached once.
    cache = IdentityCache()
    other = make_session(
        ORIGIN, (leaf, b"\x30\x01x"), verified=(leaf, intermediate), identity_headers=("rfc9440",)
    )
    assert cache.get(sent) is cache.get(other)
    # A verified chain that is not known (a resumed session forgotten): no chain asserted.
    unknown = make_session(ORIGIN, pki.chain_der, verified=(), identity_headers=("rfc9440",))
    fields = headers_of(encode_identity(unknown).header_block)
    assert "Client-Cert-Chain" not in fields
    assert fields["X-Client-Cert-Verify"] == "SUCCESS"


@pytest.mark.parametrize(
    ("verify", "reason", "expected"),
    [
        (VerifyResult.FAILED, Reason.EXPIRED, "FAILED:expired"),
        (VerifyResult.FAILED, None, "FAILED:other"),
        (VerifyResult.NONE, Reason.NO_CERTIFICATE, "NONE"),
    ],
)
def test_unverified_certificates_assert_only_the_verify_status(
    pki: ClientPki, verify: VerifyResult, reason: Reason | None, expected: str
) -> None:
    chain = pki.chain_der if verify is VerifyResult.FAILED else ()
    session = make_session(
        ORIGIN, chain, verify=verify, reason=reason, identity_headers=("xfcc", "rfc9440")
    )
    assert headers_of(encode_identity(session).header_block) == {"X-Client-Cert-Verify": expected}


def test_identity_cache_encodes_once_per_distinct_session(pki: ClientPki) -> None:
    cache = IdentityCache(size=2)
    first = cache.get(make_session(ORIGIN, pki.chain_der))
    assert cache.get(make_session(ORIGIN, pki.chain_der)) is first
    other = cache.get(make_session(ORIGIN, pki.chain_der, identity_headers=("rfc9440",)))
    assert other is not first


def _head(headers: list[tuple[bytes, bytes]], **kw: object) -> RequestHead:
    args = {"method": b"GET", "target": b"/p", "version": "1.1", "keep_alive": True}
    args |= {"upgrade": False, "websocket": False, **kw}
    return RequestHead(headers=headers, **args)  # type: ignore[arg-type]


def test_rewrite_request_removes_hop_by_hop_and_sets_forwarding() -> None:
    head = _head(
        [
            (b"Host", b"api.example.com"),
            (b"Connection", b"keep-alive, X-Secret"),
            (b"X-Secret", b"s"),
            (b"Keep-Alive", b"timeout=5"),
            (b"TE", b"trailers"),
            (b"Trailer", b"X-T"),
            (b"Proxy-Authorization", b"Basic x"),
            (b"X-Forwarded-For", b"1.2.3.4"),
            (b"X-Forwarded-Proto", b"http"),
            (b"x-forwarded-client-cert", b"Hash=evil"),
            (b"CLIENT-CERT", b":ZXZpbA==:"),
            (b"Via", b"1.0 corp"),
            (b"Accept", b"*/*"),
        ]
    )
    data, host, length, chunked = rewrite_request(head, b"/p", b"10.0.0.9", b"X-Id: 1\r\n")
    text = data.decode()
    assert (host, length, chunked) == (b"api.example.com", -1, False)
    assert text.startswith("GET /p HTTP/1.1\r\nHost: api.example.com\r\n")
    assert text.endswith("\r\n\r\n")
    for gone in ("Connection", "X-Secret", "Keep-Alive", "TE:", "Trailer", "Proxy-", "evil"):
        assert gone not in text
    assert "X-Forwarded-For: 1.2.3.4, 10.0.0.9\r\n" in text
    assert "X-Forwarded-Proto: https\r\n" in text
    assert "X-Forwarded-Host: api.example.com\r\n" in text
    assert "Via: 1.0 corp, 1.1 edgeproxy\r\n" in text
    assert "Accept: */*\r\n" in text
    assert "X-Id: 1\r\n" in text


# Spellings an origin may read as one of the edge's identity fields (CGI/WSGI/PHP/Rack fold `-`
# and `_`; some frameworks fold other punctuation).
IDENTITY_LOOKALIKES = [
    b"X_Client_Cert_Verify",
    b"x_client_cert_verify",
    b"X-Client_Cert-Verify",
    b"X_Forwarded_Client_Cert",
    b"x-forwarded_client-cert",
    b"CLIENT_CERT",
    b"Client_Cert_Chain",
    b"client-cert_chain",
    b"X.Client.Cert.Verify",
    b"X~Client~Cert~Verify",
    b"X-CLIENT-CERT-VERIFY",
    b"x-cLiEnT-cErT-vErIfY",
    b"CLIENT-CERT-CHAIN",
]


@pytest.mark.parametrize("name", IDENTITY_LOOKALIKES)
def test_rewrite_request_drops_every_spelling_of_an_identity_field(name: bytes) -> None:
    head = _head([(b"Host", b"h"), (name, b"SUCCESS-evil"), (b"X-Kept", b"1")])
    data, _, _, _ = rewrite_request(head, b"/", b"ip", b"X-Client-Cert-Verify: NONE\r\n")
    assert b"evil" not in data
    assert name not in data
    assert b"X-Client-Cert-Verify: NONE\r\n" in data
    assert b"X-Kept: 1\r\n" in data


@pytest.mark.parametrize(
    "name", [b"X_Request_Id", b"Accept_Encoding", b"x.trace", b"X-A!", b"a#b", b"_", b"-"]
)
def test_rewrite_request_drops_names_beyond_letters_digits_and_hyphen(name: bytes) -> None:
    # nginx's defaults (underscores_in_headers off, ignore_invalid_headers on): not only the
    # identity lookalikes, any such name is dropped.
    head = _head([(b"Host", b"h"), (name, b"v-dropped"), (b"X-Request-Id", b"42")])
    data, _, _, _ = rewrite_request(head, b"/", b"ip", b"")
    assert b"v-dropped" not in data
    assert b"X-Request-Id: 42\r\n" in data


def test_identity_names_are_normalised_once() -> None:
    assert (
        identity_names(
            ["x_forwarded_client_cert", "CLIENT-CERT", "Client_Cert_Chain", "X-Client-Cert-Verify"]
        )
        == IDENTITY_HEADERS
    )
    assert normalised_name("X_Client-Cert_Verify") == b"x-client-cert-verify"


def test_rewrite_request_reframes_bodies() -> None:
    head = _head([(b"Host", b"h"), (b"Transfer-Encoding", b"chunked")])
    data, _, _, chunked = rewrite_request(head, b"/", b"ip", b"")
    assert chunked
    assert data.endswith(b"Transfer-Encoding: chunked\r\n\r\n")
    head = _head([(b"Host", b"h"), (b"Content-Length", b"12")])
    data, _, length, _ = rewrite_request(head, b"/", b"ip", b"")
    assert length == 12
    assert data.endswith(b"Content-Length: 12\r\n\r\n")


@pytest.mark.parametrize(
    "headers",
    [[], [(b"Host", b"a"), (b"Host", b"b")], [(b"Host", b"a"), (b"Content-Length", b"x")]],
)
def test_rewrite_request_refuses_ambiguous_heads(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(HttpError) as info:
        rewrite_request(_head(headers), b"/", b"ip", b"")
    assert info.value.status == 400


def test_rewrite_response_framing_and_hop_by_hop() -> None:
    headers = [(b"Connection", b"X-H"), (b"X-H", b"1"), (b"Keep-Alive", b"t"), (b"X-App", b"a")]
    data, framing, until_eof = rewrite_response(
        200,
        b"OK",
        [*headers, (b"Transfer-Encoding", b"chunked")],
        head_only=False,
        http10=False,
        close=False,
    )
    assert framing == CHUNKED
    assert not until_eof
    assert b"X-H" not in data
    assert b"Keep-Alive" not in data
    assert b"X-App: a\r\n" in data
    assert data.endswith(b"Via: 1.1 edgeproxy\r\nTransfer-Encoding: chunked\r\n\r\n")
    _, framing, until_eof = rewrite_response(
        200, b"OK", [], head_only=False, http10=True, close=False
    )
    assert (framing, until_eof) == (UNTIL_CLOSE, True)
    data, framing, _ = rewrite_response(
        200, b"OK", [(b"Content-Length", b"3")], head_only=False, http10=False, close=True
    )
    assert framing == RAW
    assert data.endswith(b"Connection: close\r\n\r\n")
    _, framing, until_eof = rewrite_response(
        304, b"", [], head_only=False, http10=False, close=False
    )
    assert (framing, until_eof) == (RAW, False)


@pytest.mark.parametrize(
    "host",
    [b"api.example.com", b"API.Example.COM:8443", b"api.example.com.", b"x.api.example.com"],
)
def test_host_matcher_accepts(host: bytes) -> None:
    assert HostMatcher(HOSTNAMES).matches(host)


@pytest.mark.parametrize(
    "host",
    [b"evil.com", b"a.b.api.example.com", b".api.example.com", b"api.example.com:x", b"[::1]:443"],
)
def test_host_matcher_rejects(host: bytes) -> None:
    assert not HostMatcher(HOSTNAMES).matches(host)


def test_problem_documents() -> None:
    data = client_certificate_problem("no_certificate", close=False, head_only=False)
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"Content-Type: application/problem+json" in head
    assert b"keep-alive" in head
    doc = json.loads(body)
    assert doc["type"] == "https://edgeproxy.dev/problems/client-certificate-required"
    assert doc["reason"] == "no_certificate"
    assert doc["status"] == 403
    assert problem_response(431, head_only=True).endswith(b"Connection: close\r\n\r\n")


def test_other_transfer_codings_survive_rechunking() -> None:
    head = _head([(b"Host", b"h"), (b"Transfer-Encoding", b"gzip, chunked")])
    data, _, _, chunked = rewrite_request(head, b"/", b"ip", b"")
    assert chunked
    assert data.endswith(b"Transfer-Encoding: gzip, chunked\r\n\r\n")
    te = [(b"Transfer-Encoding", b"gzip")]  # not ending in chunked: delimited by close
    data, framing, until_eof = rewrite_response(
        200, b"OK", te, head_only=False, http10=False, close=False
    )
    assert (framing, until_eof) == (CHUNKED, True)
    assert b"Transfer-Encoding: gzip, chunked\r\n" in data


def test_made_up_names_beyond_the_memo_are_still_classified() -> None:
    # An attacker may send thousands of distinct names to fill the verdict memo; past its bound
    # every name is still judged, only not remembered.
    for i in range(5000):
        head = _head([(b"Host", b"h"), (b"X-Made-Up-%d" % i, b"kept"), (b"X_U_%d" % i, b"evil")])
        data, _, _, _ = rewrite_request(head, b"/", b"ip", b"")
        assert b"X-Made-Up-%d: kept\r\n" % i in data
        assert b"evil" not in data
    long_ok, long_bad = b"X-" + b"a" * 300, b"X_" + b"a" * 300
    head = _head([(b"Host", b"h"), (long_ok, b"kept"), (long_bad, b"evil")])
    data, _, _, _ = rewrite_request(head, b"/", b"ip", b"")
    assert long_ok + b": kept\r\n" in data
    assert b"evil" not in data


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"api.example.com", b"api.example.com"),
        (b"api.example.com.", b"api.example.com"),
        (b"api.example.com.:8443", b"api.example.com:8443"),
        (b"[::1]:443", b"[::1]:443"),
    ],
)
def test_normal_host_drops_one_root_dot(value: bytes, expected: bytes) -> None:
    assert normal_host(value) == expected


@pytest.mark.parametrize(
    "value", [b"api..example.com", b"api.example.com..", b".api.example.com", b".", b":443"]
)
def test_normal_host_refuses_empty_labels(value: bytes) -> None:
    with pytest.raises(HttpError) as caught:
        normal_host(value)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("offer", "websocket"),
    [
        (b"websocket", True),
        (b"WebSocket", True),
        (b"h2c, websocket", True),
        (b" websocket ,", True),
        (b"websocket/13", False),  # a version is no longer the bare token
        (b"notwebsocket-evil", False),
        (b"websocket2", False),
        (b"web socket", False),
        (b"websocket, @junk", False),
        (b"", False),
    ],
)
def test_only_the_websocket_token_asks_for_websocket(offer: bytes, websocket: bool) -> None:
    assert asks_websocket(offer) is websocket


def test_rewrite_request_canonical_content_length_and_no_expect() -> None:
    head = RequestHead(
        b"POST",
        b"/",
        "1.1",
        [(b"Host", b"h."), (b"Content-Length", b"0003"), (b"Expect", b"100-Continue")],
        True,
        False,
        False,
    )
    data, host, length, _ = rewrite_request(head, b"/", b"ip", b"")
    assert (host, length) == (b"h", 3)
    assert b"Content-Length: 3\r\n" in data
    assert b"Host: h\r\n" in data
    assert b"Expect" not in data
    assert head.expect_continue
