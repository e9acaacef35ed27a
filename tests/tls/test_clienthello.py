"""The bounded ClientHello parser: real hellos from stdlib `ssl`, hand-built edge cases, garbage."""

from __future__ import annotations

import random
import ssl

import pytest

from edgeproxy.tls.clienthello import (
    MAX_BUFFERED,
    MAX_CLIENT_HELLO,
    NEED_MORE,
    ClientHelloParser,
    Malformed,
    NotTls,
    Outcome,
    Parsed,
    PlainHttp,
    Unsupported,
)
from edgeproxy.tls.session import Reason


def real_hello(sni: str | None = "api.example.com", alpn: list[str] | None = None) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = sni is not None
    if alpn:
        ctx.set_alpn_protocols(alpn)
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def vec(data: bytes, size: int) -> bytes:
    return len(data).to_bytes(size) + data


def ext(ext_type: int, data: bytes) -> bytes:
    return ext_type.to_bytes(2) + vec(data, 2)


def sni_ext(*names: bytes) -> bytes:
    return ext(0, vec(b"".join(b"\x00" + vec(n, 2) for n in names), 2))


def versions_ext(*versions: int) -> bytes:
    return ext(43, vec(b"".join(v.to_bytes(2) for v in versions), 1))


def hello_body(
    exts: bytes | None = b"", version: int = 0x0303, suites: bytes = b"\x13\x01"
) -> bytes:
    body = version.to_bytes(2) + bytes(32) + vec(b"", 1) + vec(suites, 2) + vec(b"\x00", 1)
    return body if exts is None else body + vec(exts, 2)


def records(body: bytes, *, fragment: int = 2**14, msg_type: int = 1) -> bytes:
    hs = bytes([msg_type]) + len(body).to_bytes(3) + body
    return b"".join(
        b"\x16\x03\x01" + vec(hs[i : i + fragment], 2) for i in range(0, len(hs), fragment)
    )


def parse(data: bytes) -> Outcome:
    return ClientHelloParser().feed(data)


def test_real_hello() -> None:
    out = parse(real_hello(alpn=["h2", "http/1.1"]))
    assert isinstance(out, Parsed)
    assert out.sni == "api.example.com"
    assert 0x0304 in out.versions
    assert 0x0303 in out.versions
    assert out.alpn == (b"h2", b"http/1.1")


def test_real_hello_without_sni() -> None:
    out = parse(real_hello(sni=None))
    assert isinstance(out, Parsed)
    assert out.sni is None
    assert out.alpn == ()


def test_sni_is_normalized() -> None:
    out = parse(records(hello_body(sni_ext(b"API.Example.COM."))))
    assert isinstance(out, Parsed)
    assert out.sni == "api.example.com"


def test_legacy_hello_without_extensions() -> None:
    assert parse(records(hello_body(None))) == Parsed(None, (0x0303,), ())


def test_byte_at_a_time_and_buffered_replay() -> None:
    data = real_hello()
    parser = ClientHelloParser()
    for i, byte in enumerate(data):
        out = parser.feed(bytes([byte]))
        assert (out is NEED_MORE) == (i < len(data) - 1)
    assert isinstance(out, Parsed)
    assert parser.buffered == data
    assert parser.feed(b"more") is out  # final outcomes stick


@pytest.mark.parametrize("fragment", [1, 2, 3, 50, 511])
def test_split_across_records(fragment: int) -> None:
    data = records(hello_body(sni_ext(b"a.example") + versions_ext(0x0304)), fragment=fragment)
    assert parse(data) == Parsed("a.example", (0x0304,), ())


def test_every_truncation_needs_more() -> None:
    data = real_hello()
    for n in range(len(data)):
        assert parse(data[:n]) is NEED_MORE, n


def test_mutated_hellos_never_raise() -> None:
    rng = random.Random(1234)
    base = bytearray(real_hello())
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(5, len(data))] = rng.randrange(256)
        cut = rng.randint(0, len(data))
        out = parse(bytes(data[:cut]))
        assert out is NEED_MORE or isinstance(
            out, Parsed | Malformed | NotTls | PlainHttp | Unsupported
        )


def test_random_garbage_is_not_tls() -> None:
    rng = random.Random(99)
    for _ in range(500):
        data = rng.randbytes(rng.randint(1, 64))
        out = parse(data)
        if data[0] != 0x16:
            assert isinstance(out, NotTls | PlainHttp) or out is NEED_MORE


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"GETX / HTTP/1.1\r\n", "first byte 0x47 is not a TLS handshake record"),
        (b"get / HTTP/1.1\r\n", "first byte 0x67 is not a TLS handshake record"),
        (b"HELO example.com\r\n", "first byte 0x48 is not a TLS handshake record"),
        (b"\x80\x2e\x01\x03\x00", "SSLv2-style record header"),
        (b"\x15\x03\x03\x00\x02\x02\x28", "first byte 0x15 is not a TLS handshake record"),
        (b"\x16\x02\x00\x00\x01\x01", "record version major 2 is not TLS"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "first byte 0x53 is not a TLS handshake record"),
    ],
)
def test_not_tls(data: bytes, detail: str) -> None:
    found = parse(data)
    assert found == NotTls(detail)
    assert isinstance(found, NotTls)
    assert found.reason is Reason.NOT_TLS


@pytest.mark.parametrize(
    "data",
    [b"GET / HTTP/1.1\r\n", b"POST /x HTTP/1.0\r\n", b"OPTIONS * HTTP/1.1\r\n",
     b"CONNECT a:443 HTTP/1.1\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"DELETE /a"],
)  # fmt: skip
def test_plain_http(data: bytes) -> None:
    assert parse(data) == PlainHttp()
    assert PlainHttp().reason is Reason.PLAIN_HTTP


def test_plain_http_a_byte_at_a_time() -> None:
    parser = ClientHelloParser()
    outcomes = [parser.feed(bytes([b])) for b in b"OPTIONS * HTTP/1.1\r\n"]
    assert outcomes[:7] == [NEED_MORE] * 7  # "OPTIONS" could still be a method
    assert outcomes[7] == PlainHttp()


@pytest.mark.parametrize(
    ("version", "exts"),
    [
        (0x0300, b""),  # SSLv3 only
        (0x0301, b""),  # TLS 1.0 only
        (0x0302, b""),  # TLS 1.1 only
        (0x0303, versions_ext(0x0302, 0x0301)),  # supported_versions wins over legacy_version
        (0x0303, versions_ext(0x7A7A)),  # GREASE only
    ],
)
def test_old_versions_are_unsupported(version: int, exts: bytes) -> None:
    out = parse(records(hello_body(exts, version=version)))
    assert isinstance(out, Unsupported)
    assert out.reason is Reason.UNSUPPORTED_PROTOCOL
    assert out.detail.startswith("client offers only")


def test_grease_versions_are_dropped() -> None:
    out = parse(records(hello_body(versions_ext(0x1A1A, 0x0304, 0x0303))))
    assert isinstance(out, Parsed)
    assert out.versions == (0x0304, 0x0303)


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"\x16\x03\x01\x00\x00", "handshake record length 0"),
        (b"\x16\x03\x01\x40\x01", "handshake record length 16385"),
        (records(hello_body(sni_ext(b"a.com") + sni_ext(b"b.com"))), "duplicate extension 0"),
        (records(hello_body(sni_ext(b"a.com", b"b.com"))), "more than one host_name"),
        (records(hello_body(sni_ext(b""))), "empty host_name"),
        (records(hello_body(b"") + b"x"), "1 trailing bytes in ClientHello"),
        (records(hello_body(suites=b"\x13")), "cipher_suites length"),
        (records(hello_body(ext(16, vec(b"\x00", 2)))), "empty ALPN protocol name"),
        (records(hello_body(ext(43, b"\x03\x03\x04\x03"))), "supported_versions length"),
        (records(hello_body(ext(43, b"\x04\x03\x04"))), "truncated supported_versions"),
        (records(hello_body(ext(0, b"\x00"))), "truncated server_name_list"),
        (records(hello_body(versions_ext(0x0304) + b"\x00")), "truncated extension"),
        (records(hello_body())[:5] + b"\x15" + records(hello_body())[6:], None),
    ],
    ids=lambda v: "-" if isinstance(v, bytes) else str(v),
)
def test_malformed(data: bytes, detail: str | None) -> None:
    out = parse(data)
    assert isinstance(out, Malformed), out
    assert out.reason is Reason.NOT_TLS
    if detail is not None:
        assert out.detail == detail


def test_alert_record_in_the_middle_is_malformed() -> None:
    data = records(hello_body(sni_ext(b"a.example")), fragment=20)
    out = parse(data[:25] + b"\x15\x03\x03\x00\x02\x02\x28" + data[25:])
    assert out == Malformed("record type 21 before the ClientHello was complete")


def test_bound_on_buffered_bytes() -> None:
    """A ClientHello in records so small that their headers outweigh it is refused at
    MAX_BUFFERED bytes, before the message bound is reached."""
    body = hello_body(ext(0xFFFF, bytes(MAX_CLIENT_HELLO - 60)))
    data = records(body, fragment=4)
    parser = ClientHelloParser()
    outcomes = [parser.feed(data[i : i + 1000]) for i in range(0, len(data), 1000)]
    refused = [o for o in outcomes if o is not NEED_MORE]
    assert refused[0] == Malformed(
        f"no complete ClientHello in {MAX_BUFFERED} bytes", Reason.CLIENT_HELLO_TOO_LARGE, 47
    )
    assert len(parser.buffered) < MAX_BUFFERED + 1000


def test_largest_accepted_hello() -> None:
    """64 KiB of message over five records: larger than one record, as post-quantum key shares
    and padded hellos are."""
    body = hello_body(ext(0xFFFF, bytes(MAX_CLIENT_HELLO - 4 - len(hello_body(ext(0xFFFF, b""))))))
    assert len(body) + 4 == MAX_CLIENT_HELLO
    assert isinstance(parse(records(body)), Parsed)
    assert isinstance(parse(records(body, fragment=1000)), Parsed)


def test_one_byte_over_the_bound_is_too_large() -> None:
    body = hello_body(ext(0xFFFF, bytes(MAX_CLIENT_HELLO - 3 - len(hello_body(ext(0xFFFF, b""))))))
    out = parse(records(body)[: 5 + 2**14])  # the first record is enough to know
    expected = f"ClientHello of {MAX_CLIENT_HELLO - 3} bytes exceeds {MAX_CLIENT_HELLO}"
    assert out == Malformed(expected, Reason.CLIENT_HELLO_TOO_LARGE, 47)


@pytest.mark.parametrize("msg_type", [0, 2, 11, 20, 255])
def test_another_first_message_is_unexpected(msg_type: int) -> None:
    out = parse(records(hello_body(), msg_type=msg_type))
    detail = f"first handshake message has type {msg_type}, not ClientHello"
    assert out == Malformed(detail, Reason.NOT_TLS, 10)


@pytest.mark.parametrize("name", [b"bad name", b"caf\xc3\xa9.example", b"a" * 254, b"a/b", b"."])
def test_a_name_that_is_not_a_host_name_names_nothing(name: bytes) -> None:
    assert parse(records(hello_body(sni_ext(name)))) == Parsed(None, (0x0303,), (), True)


@pytest.mark.parametrize("name", [b"a" * 256, b"a\0b", b"\0"])
def test_a_name_openssl_refuses_is_unrecognized(name: bytes) -> None:
    out = parse(records(hello_body(sni_ext(name))))
    assert isinstance(out, Malformed)
    assert (out.reason, out.alert) == (Reason.SNI_MISMATCH, 112)


def test_a_valid_name_is_not_flagged() -> None:
    assert parse(records(hello_body(sni_ext(b"a" * 253)))) == Parsed("a" * 253, (0x0303,), ())
