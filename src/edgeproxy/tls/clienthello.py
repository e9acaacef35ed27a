"""Sans-IO, bounded parser of a TLS ClientHello (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2).

The edge reads the ClientHello *before* OpenSSL sees a byte (docs/dataplane.md): the SNI picks the
edge
certificate, and therefore the context, for the whole connection. The parser only frames records
and reads three extensions (server_name, ALPN, supported_versions); everything else is OpenSSL's
job once the buffered bytes are replayed into it.

Bounds: the ClientHello message may span several records and be up to `MAX_CLIENT_HELLO` bytes
(64 KiB, header included): post-quantum key shares, padding (RFC 7685) and long ALPN or PSK lists
already push real hellos past one 16 KiB record. At most `MAX_BUFFERED` bytes of records are kept
while waiting, which also caps record-header overhead (a hello split into tiny records); the
adapter's `client_hello_timeout` bounds the wait. Anything larger is refused with an
`illegal_parameter` alert (OpenSSL's own answer to an excessive message) and the reason
`client_hello_too_large`. Each byte is looked at a bounded number of times (records are framed
once, the message body is parsed once), so a client trickling one byte per read cannot make us do
quadratic work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from edgeproxy.tls.session import Reason

MAX_CLIENT_HELLO: Final = 64 * 1024  # the handshake message, its 4-byte header included
MAX_BUFFERED: Final = 2 * MAX_CLIENT_HELLO  # record bytes, headers included, kept while waiting

TLS1_2: Final = 0x0303
TLS1_3: Final = 0x0304

_HANDSHAKE: Final = 22
_CLIENT_HELLO: Final = 1
_EXT_SERVER_NAME: Final = 0
_EXT_ALPN: Final = 16
_EXT_SUPPORTED_VERSIONS: Final = 43
_MAX_FRAGMENT: Final = 2**14  # RFC 8446 §5.1: TLSPlaintext.length MUST NOT exceed 2^14
_HOSTNAME_CHARS: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-._")
# How plaintext HTTP requests start (RFC 9110 §9 methods, and HTTP/2's "PRI * HTTP/2.0"
# preface): a common mistake, answered with a plain 400 and counted apart from garbage.
_HTTP_METHODS: Final = tuple(
    m + b" " for m in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS",
                       b"TRACE", b"PATCH", b"PRI")
)  # fmt: skip
_HTTP_FIRST: Final = frozenset(m[0] for m in _HTTP_METHODS)


@dataclass(frozen=True, slots=True)
class NeedMore:
    """The ClientHello is not complete yet: read more (under the deadline)."""


NEED_MORE: Final = NeedMore()


@dataclass(frozen=True, slots=True)
class Parsed:
    sni: str | None  # lower-case, trailing dot removed; None when absent or not a host name
    versions: tuple[int, ...]  # supported_versions (GREASE removed), else (legacy_version,)
    alpn: tuple[bytes, ...]
    # A host_name was sent but is not a DNS name (characters outside letters, digits, `-`, `.`,
    # `_`, or over 253 bytes). It names no edge certificate, so it is handled like an unknown
    # name (the default edge, else unrecognized_name); it is not a malformed hello. Over 255
    # bytes or with a NUL byte, OpenSSL would refuse it anyway: Malformed, sni_mismatch.
    sni_invalid: bool = False


@dataclass(frozen=True, slots=True)
class NotTls:
    """The first bytes are not a TLS handshake record: plaintext HTTP, SSLv2, other protocols."""

    detail: str
    reason: Reason = Reason.NOT_TLS


# Alert descriptions (RFC 8446 §6.2) the parser's refusals are answered with.
UNEXPECTED_MESSAGE: Final = 10
DECODE_ERROR: Final = 50
UNRECOGNIZED_NAME: Final = 112  # RFC 6066 §3
ILLEGAL_PARAMETER: Final = 47


@dataclass(frozen=True, slots=True)
class PlainHttp:
    """The first bytes are an HTTP request line: plaintext HTTP sent to the TLS port."""

    detail: str = "plaintext HTTP on the TLS port"
    reason: Reason = Reason.PLAIN_HTTP


@dataclass(frozen=True, slots=True)
class Malformed:
    """TLS framing, but a ClientHello we refuse: truncated fields, bad lengths, over the bound.

    `alert`: the description of the fatal alert to answer with.
    """

    detail: str
    reason: Reason = Reason.NOT_TLS
    alert: int = DECODE_ERROR


def _too_large(detail: str) -> Malformed:
    return Malformed(detail, Reason.CLIENT_HELLO_TOO_LARGE, ILLEGAL_PARAMETER)


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A well-formed ClientHello that offers neither TLS 1.2 nor TLS 1.3 (docs/security.md: TLS >=
    1.2)."""

    versions: tuple[int, ...]
    reason: Reason = Reason.UNSUPPORTED_PROTOCOL

    @property
    def detail(self) -> str:
        return "client offers only " + ",".join(f"0x{v:04x}" for v in self.versions)


Outcome = NeedMore | Parsed | NotTls | PlainHttp | Malformed | Unsupported


class _Bad(Exception):
    pass


class _UnknownName(_Bad):
    """A server name no edge can serve, that the default edge cannot take either."""


class ClientHelloParser:
    """Feed bytes as they arrive; `feed` returns `NEED_MORE` until the outcome is final.

    `buffered` holds every byte fed so far, to be replayed into OpenSSL after `Parsed`.
    """

    __slots__ = ("_framed", "_hs", "_outcome", "_raw")

    def __init__(self) -> None:
        self._raw = bytearray()
        self._framed = 0  # bytes of _raw already split into records
        self._hs = bytearray()  # handshake-layer bytes collected from those records
        self._outcome: Outcome = NEED_MORE

    @property
    def buffered(self) -> bytes:
        return bytes(self._raw)

    def feed(self, data: bytes) -> Outcome:
        if self._outcome is not NEED_MORE:
            return self._outcome
        self._raw += data
        self._outcome = self._advance()
        if self._outcome is NEED_MORE and len(self._raw) >= MAX_BUFFERED:
            self._outcome = _too_large(f"no complete ClientHello in {MAX_BUFFERED} bytes")
        return self._outcome

    def _advance(self) -> Outcome:
        raw = self._raw
        if self._framed == 0 and raw:
            first = raw[0]
            if first != _HANDSHAKE:
                if first & 0x80:
                    return NotTls("SSLv2-style record header")
                if first in _HTTP_FIRST:
                    return _plain_http(raw)
                return NotTls(f"first byte 0x{first:02x} is not a TLS handshake record")
        while len(raw) - self._framed >= 5:
            pos = self._framed
            ctype, major, length = raw[pos], raw[pos + 1], int.from_bytes(raw[pos + 3 : pos + 5])
            if ctype != _HANDSHAKE:
                return Malformed(f"record type {ctype} before the ClientHello was complete")
            if major != 3:
                return NotTls(f"record version major {major} is not TLS")
            if length == 0 or length > _MAX_FRAGMENT:
                return Malformed(f"handshake record length {length}")
            if len(raw) - pos < 5 + length:
                break
            self._hs += raw[pos + 5 : pos + 5 + length]
            self._framed = pos + 5 + length
            outcome = self._message()
            if outcome is not NEED_MORE:
                return outcome
        return NEED_MORE

    def _message(self) -> Outcome:
        hs = self._hs
        if hs[0] != _CLIENT_HELLO:
            # Well-framed, but the wrong message: RFC 8446 §6.2 names this unexpected_message.
            detail = f"first handshake message has type {hs[0]}, not ClientHello"
            return Malformed(detail, alert=UNEXPECTED_MESSAGE)
        if len(hs) < 4:
            return NEED_MORE
        length = int.from_bytes(hs[1:4])
        if length + 4 > MAX_CLIENT_HELLO:
            return _too_large(f"ClientHello of {length} bytes exceeds {MAX_CLIENT_HELLO}")
        if len(hs) < 4 + length:
            return NEED_MORE
        try:
            return _parse_body(bytes(hs[4 : 4 + length]))
        except _UnknownName as exc:
            return Malformed(str(exc), Reason.SNI_MISMATCH, UNRECOGNIZED_NAME)
        except _Bad as exc:
            return Malformed(str(exc))


def _plain_http(raw: bytearray) -> Outcome:
    """A request line's method and its space, or not; wait while the bytes so far could be one."""
    head = bytes(raw[:8])  # the longest method with its space: "CONNECT ", "OPTIONS "
    if any(head.startswith(m) for m in _HTTP_METHODS):
        return PlainHttp()
    if any(m.startswith(head) for m in _HTTP_METHODS):
        return NEED_MORE
    return NotTls(f"first byte 0x{raw[0]:02x} is not a TLS handshake record")


def _vec(b: bytes, p: int, size: int, end: int, what: str) -> tuple[int, int]:
    """Bounds of the vector whose `size`-byte length prefix starts at `p`, within `b[:end]`."""
    start = p + size
    if start > end:
        raise _Bad(f"truncated {what}")
    stop = start + (b[p] if size == 1 else b[p] << 8 | b[p + 1])
    if stop > end:
        raise _Bad(f"truncated {what}")
    return start, stop


def _parse_body(b: bytes) -> Outcome:
    # Plain indexing rather than a reader object: this runs once per connection, and a typical
    # hello has ~17 extensions, so call overhead would cost a few % of a full handshake.
    end = len(b)
    if end < 35:
        raise _Bad("truncated ClientHello")
    legacy_version = b[0] << 8 | b[1]
    s, p = _vec(b, 34, 1, end, "session_id")  # after legacy_version and 32 bytes of random
    if p - s > 32:
        raise _Bad("session_id longer than 32 bytes")
    s, p = _vec(b, p, 2, end, "cipher_suites")
    if p - s < 2 or (p - s) % 2:
        raise _Bad("cipher_suites length")
    s, p = _vec(b, p, 1, end, "compression_methods")
    if p == s:
        raise _Bad("empty compression_methods")
    sni: str | None = None
    sni_invalid = False
    alpn: tuple[bytes, ...] = ()
    versions: tuple[int, ...] | None = None
    if p < end:  # extensions are optional before TLS 1.3 (RFC 5246 §7.4.1.2)
        p, ext_end = _vec(b, p, 2, end, "extensions")
        if ext_end != end:
            raise _Bad(f"{end - ext_end} trailing bytes in ClientHello")
        seen: set[int] = set()
        while p < ext_end:
            s, p = _vec(b, p + 2, 2, ext_end, "extension")
            ext_type = b[s - 4] << 8 | b[s - 3]
            if ext_type in seen:  # RFC 8446 §4.2: at most one extension of each type
                raise _Bad(f"duplicate extension {ext_type}")
            seen.add(ext_type)
            if ext_type == _EXT_SERVER_NAME:
                sni, sni_invalid = _server_name(b[s:p])
            elif ext_type == _EXT_ALPN:
                alpn = _alpn(b[s:p])
            elif ext_type == _EXT_SUPPORTED_VERSIONS:
                versions = _supported_versions(b[s:p])
    if versions is None:
        versions = (legacy_version,)
        acceptable = legacy_version >= TLS1_2
    else:
        acceptable = TLS1_2 in versions or TLS1_3 in versions
    if not acceptable:
        return Unsupported(versions)
    return Parsed(sni, versions, alpn, sni_invalid)


def _server_name(d: bytes) -> tuple[str | None, bool]:
    """(host name, sent but not a DNS host name)."""
    s, end = _vec(d, 0, 2, len(d), "server_name_list")
    if end != len(d):
        raise _Bad("trailing bytes in server_name")
    host: str | None = None
    seen = invalid = False
    while s < end:
        name_type = d[s]
        n, s = _vec(d, s + 1, 2, end, "host_name")
        if name_type != 0:
            continue  # unknown NameTypes are skipped; RFC 6066 §3 defines only host_name
        if seen:
            raise _Bad("more than one host_name")
        if n == s:  # HostName<1..2^16-1>: an empty one is a syntax error, not an odd name
            raise _Bad("empty host_name")
        if s - n > 255 or 0 in d[n:s]:
            # OpenSSL refuses these itself (unrecognized_name, "bad extension"), even on the
            # default edge; say it first, with the reason it is.
            raise _UnknownName("server_name longer than 255 bytes or with a NUL byte")
        seen = True
        host = _hostname(d[n:s])
        invalid = host is None
    return host, invalid


def _hostname(name: bytes) -> str | None:
    name = name.lower().removesuffix(b".")
    if not 0 < len(name) <= 253 or not _HOSTNAME_CHARS.issuperset(name):
        return None
    return name.decode("ascii")


def _alpn(d: bytes) -> tuple[bytes, ...]:
    s, end = _vec(d, 0, 2, len(d), "protocol_name_list")
    if end != len(d):
        raise _Bad("trailing bytes in alpn")
    out: list[bytes] = []
    while s < end:
        n, s = _vec(d, s, 1, end, "protocol_name")
        if n == s:
            raise _Bad("empty ALPN protocol name")
        out.append(d[n:s])
    return tuple(out)


def _supported_versions(d: bytes) -> tuple[int, ...]:
    s, end = _vec(d, 0, 1, len(d), "supported_versions")
    if end != len(d):
        raise _Bad("trailing bytes in supported_versions")
    if end - s < 2 or (end - s) % 2:
        raise _Bad("supported_versions length")
    all_versions = (d[i] << 8 | d[i + 1] for i in range(s, end, 2))
    return tuple(v for v in all_versions if v & 0x0F0F != 0x0A0A)  # drop GREASE (RFC 8701)
