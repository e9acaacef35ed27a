"""Header rewriting for both directions, each as one pass over the parsed list and one bytes join.

Hop-by-hop fields (RFC 9110 §7.6.1) never cross the proxy: Connection and every field it names,
Keep-Alive, Proxy-*, TE, Trailer, Upgrade (kept for WebSocket only) and Transfer-Encoding, which is
replaced by our own framing of the body. X-Forwarded-Proto/-Host are replaced, X-Forwarded-For and
Via appended to.

Identity fields (docs/dataplane.md): only the edge, from the TLS session, may assert a client
identity, so every inbound field the origin could read as one of ours is dropped from requests.
Origins do not all compare names the way RFC 9110 does: CGI, WSGI, PHP and Rack turn `-` into `_`
(`X_Client_Cert_Verify` and `X-Client-Cert-Verify` both become `HTTP_X_CLIENT_CERT_VERIFY`), some
frameworks fold other punctuation too. Two rules, applied in this one place, close that:

* a request field whose name holds anything but ASCII letters, digits and `-` is dropped, whatever
  it is called (nginx's defaults, `underscores_in_headers off` and `ignore_invalid_headers on`).
  llhttp admits every RFC 9110 token character (`_ . ! # $ % & ' * + ^ ` | ~`); none of them is
  needed by a real client, and each is a spelling an origin might fold into one of ours. Dropped
  silently: no log line or counter per request, it is a byte scan of names we do not know;
* a name that spells an identity field (`IDENTITY_HEADERS`) is dropped, compared case-insensitively
  and with separators ignored: `x-client-cert-verify`, `X-Client-Cert-Verify-` and
  `XClientCertVerify` alike (the `_` spellings are gone by the first rule already).

Whitespace in or around a name, obs-fold continuation lines and bare LF never get this far: llhttp
refuses the request (400).
"""

from __future__ import annotations

from collections.abc import Iterable

from edgeproxy.dataplane.http.parser import HttpError, RequestHead

# Every field the edge sets or could set about the client (identity.py), whatever a binding's
# `identity_headers` say: a field the edge does not send on this binding must not reach the origin
# as the client's word either.
EDGE_IDENTITY_FIELDS = (
    "X-Forwarded-Client-Cert",
    "Client-Cert",
    "Client-Cert-Chain",
    "X-Client-Cert-Verify",
)


def normalised_name(name: str | bytes) -> bytes:
    """A field name as the rules compare it: lower case, `_` read as `-`."""
    raw = name.encode("ascii") if isinstance(name, str) else name
    return raw.lower().replace(b"_", b"-")


def identity_names(names: Iterable[str] = EDGE_IDENTITY_FIELDS) -> frozenset[bytes]:
    """The normalised names to strip from every request. Computed once, at import: a configurable
    identity field name would be added here, at configuration load, never per request."""
    return frozenset(normalised_name(n) for n in names)


IDENTITY_HEADERS = identity_names()
# The same names reduced to their letters: `X-Client-Cert-Verify-`, `XClientCertVerify` and
# `x-client-certverify` are one field to an origin that ignores separators.
_IDENTITY_LETTERS = frozenset(n.replace(b"-", b"") for n in IDENTITY_HEADERS)
VIA = b"1.1 edgeproxy"

# What the single pass does with a field, by lower-cased name (absent: `_classify` decides).
_DROP, _HOST, _LENGTH, _TE, _CONNECTION, _XFF, _VIA, _UPGRADE, _FORWARD, _EXPECT = range(10)
_HOP = {
    b"connection": _CONNECTION,
    b"keep-alive": _DROP,
    b"te": _DROP,
    b"trailer": _DROP,
    b"transfer-encoding": _TE,
    b"upgrade": _UPGRADE,
    b"content-length": _LENGTH,
    b"via": _VIA,
}
_REQUEST = {
    **_HOP,
    **dict.fromkeys(IDENTITY_HEADERS, _DROP),
    b"host": _HOST,
    b"x-forwarded-for": _XFF,
    b"x-forwarded-proto": _DROP,
    b"x-forwarded-host": _DROP,
    b"expect": _EXPECT,
}
# An origin's Alt-Svc would send clients to another endpoint or protocol (HTTP/3), around the
# edge's mutual TLS: the edge advertises no alternative service, and passes none on.
_RESPONSE = {**_HOP, b"alt-svc": _DROP}
# Every other name's verdict, _FORWARD or _DROP, memoised: real traffic repeats a few dozen
# names, so the byte scans below run once per name, not once per header of every request. Bounded:
# once full (names made up to fill it), new names are classified every time, which stays correct.
_request_kinds = dict(_REQUEST)
_MAX_KINDS = len(_REQUEST) + 4096
_MAX_KIND_NAME = 64  # bytes: with the count, what the memo may hold is bounded (~0.5 MB)


def _classify(lname: bytes) -> int:
    """_FORWARD or _DROP for a lower-cased field name not in _REQUEST (module docstring).

    Letters, digits and `-` only, and not an identity field's letters: `isalnum` is ASCII-only on
    bytes and false for b"", so `_`, `.` and the other token characters all fail it.
    """
    bare = lname.replace(b"-", b"")
    ok = bare.isalnum() and bare not in _IDENTITY_LETTERS and lname[:6] != b"proxy-"
    kind = _FORWARD if ok else _DROP
    if len(lname) <= _MAX_KIND_NAME and len(_request_kinds) < _MAX_KINDS:
        _request_kinds[lname] = kind
    return kind


_CONNECTION_OPTIONS = frozenset({b"close", b"keep-alive", b"upgrade"})
_NONE: frozenset[bytes] = frozenset()

# Response body framing towards the client.
RAW = 0  # bytes pass through as received: Content-Length, or no body at all
CHUNKED = 1  # re-chunked (origin chunked or close-delimited, HTTP/1.1 client)
UNTIL_CLOSE = 2  # close-delimited (HTTP/1.0 client): the connection closes after it


def _named(connection: bytes) -> frozenset[bytes]:
    """The field names a Connection header lists besides its options (close, keep-alive...)."""
    if connection.lower() in _CONNECTION_OPTIONS:  # nearly every request: skip the split
        return _NONE
    return (
        frozenset(t.strip().lower() for t in connection.split(b",")) - {b""} - _CONNECTION_OPTIONS
    )


def rewrite_request(
    head: RequestHead,
    target: bytes,
    client_ip: bytes,
    identity: bytes,
    drop: frozenset[bytes] = _NONE,
) -> tuple[bytes, bytes | None, int, bool]:
    """The origin-bound head; returns (head bytes, Host value, Content-Length or -1, chunked).

    Raises HttpError(400) for a missing or repeated Host or an unusable Content-Length.
    """
    out = [head.method, b" ", target, b" HTTP/1.1\r\n"]
    host: bytes | None = None
    length = -1
    length_value = b""
    chunked = b""  # the Transfer-Encoding value
    connection: bytes | None = None
    xff = via = b""
    for name, value in head.headers:
        lname = name.lower()
        kind = _request_kinds.get(lname)
        if kind is None:
            kind = _classify(lname)
        if kind == _FORWARD:
            if lname not in drop:
                out += (name, b": ", value, b"\r\n")
        elif kind == _HOST:
            if host is not None:
                raise HttpError(400, "more than one Host header")
            if value[-1:] == b"." or b".." in value or b".:" in value or value[:1] == b".":
                value = normal_host(value)  # rare: the cheap test above keeps it off the fast path
            host = value
            out += (name, b": ", value, b"\r\n")
        elif kind == _LENGTH:
            length_value = value.strip()
            length = int(length_value) if length_value.isdigit() else -2
        elif kind == _EXPECT:
            if value.strip().lower() == b"100-continue":
                head.expect_continue = True  # the edge answers it (exchange.py), not the origin
            else:
                out += (name, b": ", value, b"\r\n")
        elif kind == _TE:
            # llhttp refuses a request whose codings do not end in chunked.
            chunked = value if not chunked else chunked + b", " + value
        elif kind == _CONNECTION:
            connection = value if connection is None else connection + b"," + value
        elif kind == _XFF:
            xff = value if not xff else xff + b", " + value
        elif kind == _VIA:
            via = value if not via else via + b", " + value
    if connection is not None and not drop:
        named = _named(connection)
        if named:  # rare: fields named in Connection are hop-by-hop too; redo the pass
            return rewrite_request(head, target, client_ip, identity, named)
    if host is None or not host.strip():
        raise HttpError(400, "missing Host header")
    if length == -2:
        raise HttpError(400, "invalid Content-Length")
    out += (
        b"X-Forwarded-For: ",
        xff + b", " + client_ip if xff else client_ip,
        b"\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: ",
        host,
        b"\r\nVia: ",
        via + b", " + VIA if via else VIA,
        b"\r\n",
        identity,
    )
    if head.websocket:
        out.append(b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    elif chunked:
        out += (_transfer_encoding(chunked), b"\r\n")
    elif length >= 0:
        # Re-serialised, never copied: `0003` reaches the origin as `3`.
        out += (b"Content-Length: ", b"%d" % length, b"\r\n\r\n")
    else:
        out.append(b"\r\n")
    return b"".join(out), host, length, bool(chunked)


def normal_host(value: bytes) -> bytes:
    """A Host value (or an absolute-form authority) by the edge's rule (docs/dataplane.md).

    One trailing dot names the DNS root and the same host: it is dropped, so the origin sees
    `api.example.com` for `api.example.com.` (in Host and X-Forwarded-Host alike). An empty label
    anywhere else (`..`, a leading dot, a second trailing dot, nothing before the port) is no host
    name at all: 400. IP literals (`[...]`) have no labels and pass unchanged.
    """
    if value[:1] == b"[":
        return value
    name, colon, port = value.partition(b":")
    if name[-1:] == b".":
        name = name[:-1]
    if not name or name[:1] == b"." or name[-1:] == b"." or b".." in name:
        raise HttpError(400, "empty label in Host")
    return name + colon + port


def rewrite_response(
    status: int,
    reason: bytes,
    headers: list[tuple[bytes, bytes]],
    *,
    head_only: bool,
    http10: bool,
    close: bool,
) -> tuple[bytes, int, bool]:
    """The client-bound head; returns (head bytes, client framing, origin body ends at EOF)."""
    out = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    has_length = False
    chunked = b""
    via = b""
    upgrade: bytes | None = None
    connection: bytes | None = None
    for name, value in headers:
        lname = name.lower()
        kind = _RESPONSE.get(lname)
        if kind is None:
            if lname[:6] != b"proxy-":
                out += (name, b": ", value, b"\r\n")
        elif kind == _LENGTH:
            has_length = True
            out += (name, b": ", value, b"\r\n")
        elif kind == _TE:
            chunked = value if not chunked else chunked + b", " + value
        elif kind == _VIA:
            via = value if not via else via + b", " + value
        elif kind == _UPGRADE:
            upgrade = value
        elif kind == _CONNECTION:
            connection = value if connection is None else connection + b"," + value
    if connection is not None:
        named = _named(connection)
        if named:
            out = [out[0], *_strip(out[1:], named)]
    out += (b"Via: ", via + b", " + VIA if via else VIA, b"\r\n")
    no_body = head_only or status < 200 or status in (204, 304)
    # A response whose last transfer coding is not chunked is delimited by close (RFC 9112 §6.3).
    until_eof = not no_body and not has_length and not _ends_chunked(chunked)
    framing = RAW
    if status == 101:
        out += (b"Connection: Upgrade\r\nUpgrade: ", upgrade or b"websocket", b"\r\n\r\n")
        return b"".join(out), RAW, False
    if not no_body and not has_length:
        framing = UNTIL_CLOSE if http10 else CHUNKED
        if framing == CHUNKED:
            out.append(_transfer_encoding(chunked))
    if close or framing == UNTIL_CLOSE:
        out.append(b"Connection: close\r\n\r\n")
    elif http10:
        out.append(b"Connection: keep-alive\r\n\r\n")
    else:
        out.append(b"\r\n")
    return b"".join(out), framing, until_eof


def response_fields(
    status: int, headers: list[tuple[bytes, bytes]], *, head_only: bool
) -> tuple[list[tuple[bytes, bytes]], bool]:
    """The client-bound HTTP/2 field list of an origin response (the rules of `rewrite_response`,
    without HTTP/1.1 framing: HTTP/2 frames the body itself); returns (fields, origin body ends
    at EOF)."""
    fields = [(b":status", b"%d" % status)]
    has_length = False
    chunked = via = b""
    named = _NONE
    for name, value in headers:
        lname = name.lower()
        kind = _RESPONSE.get(lname)
        if kind is None:
            if lname[:6] != b"proxy-":
                fields.append((lname, value))
        elif kind == _LENGTH:
            has_length = True
            fields.append((lname, value))
        elif kind == _TE:
            chunked = value if not chunked else chunked + b", " + value
        elif kind == _VIA:
            via = value if not via else via + b", " + value
        elif kind == _CONNECTION:
            named = named | _named(value)
    if named:
        fields = [f for f in fields if f[0] not in named]
    fields.append((b"via", via + b", " + VIA if via else VIA))
    no_body = head_only or status < 200 or status in (204, 304)
    return fields, not no_body and not has_length and not _ends_chunked(chunked)


def request_trailers(fields: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A client's request trailers as they go on, by the rules of request headers: hop-by-hop,
    identity and odd names dropped."""
    kept: list[tuple[bytes, bytes]] = []
    for name, value in fields:
        lname = name.lower()
        kind = _request_kinds.get(lname)
        if kind is None:
            kind = _classify(lname)
        if kind == _FORWARD:
            kept.append((lname, value))
    return kept


def response_trailers(fields: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """An HTTP/2 origin's response trailers as they go on (gRPC's `grpc-status` and
    `grpc-message` among them): pseudo-headers, hop-by-hop and framing fields dropped."""
    kept: list[tuple[bytes, bytes]] = []
    for name, value in fields:
        lname = name.lower()
        if lname[:1] != b":" and lname not in _RESPONSE and lname[:6] != b"proxy-":
            kept.append((lname, value))
    return kept


def chunked_trailers(fields: list[tuple[bytes, bytes]]) -> bytes:
    """The last chunk of a chunked body, carrying `fields` as its trailer section."""
    return b"".join([b"0\r\n", *(n + b": " + v + b"\r\n" for n, v in fields), b"\r\n"])


def _ends_chunked(value: bytes) -> bool:
    return value.rstrip().lower().endswith(b"chunked")


def _transfer_encoding(value: bytes) -> bytes:
    """Our chunked framing, keeping any other transfer coding of the body (e.g. gzip)."""
    if value == b"chunked" or not value:
        return b"Transfer-Encoding: chunked\r\n"
    codings = [c.strip() for c in value.split(b",") if c.strip()]
    kept = [c for c in codings if c.lower() != b"chunked"]
    return b"Transfer-Encoding: " + b", ".join([*kept, b"chunked"]) + b"\r\n"


def _strip(lines: list[bytes], named: Iterable[bytes]) -> list[bytes]:
    """Drop fields named in Connection from already-serialised (name, ": ", value, CRLF) runs."""
    kept: list[bytes] = []
    for i in range(0, len(lines), 4):
        if lines[i].lower() not in named:
            kept += lines[i : i + 4]
    return kept


class HostMatcher:
    """Does a Host header name one of an edge certificate's hostnames? (docs/dataplane.md: SNI and
    Host agree)"""

    __slots__ = ("_exact", "_suffixes")

    def __init__(self, hostnames: Iterable[str]) -> None:
        names = [h.strip().lower().rstrip(".").encode() for h in hostnames]
        self._exact = frozenset(n for n in names if not n.startswith(b"*."))
        self._suffixes = tuple(n[1:] for n in names if n.startswith(b"*."))

    def matches(self, host: bytes) -> bool:
        host = host.strip().lower()
        if host.startswith(b"["):
            end = host.find(b"]")
            port = host[end + 1 :]
            host = host[: end + 1]
            if end < 0 or (port and not port.startswith(b":")):
                return False
            port = port[1:]
        else:
            host, _, port = host.partition(b":")
        if port and not port.isdigit():
            return False
        host = host.rstrip(b".")
        if host in self._exact:
            return True
        # A wildcard covers exactly one left-most label (RFC 6125 §6.4.3).
        return any(
            host.endswith(s) and len(host) > len(s) and b"." not in host[: -len(s)]
            for s in self._suffixes
        )
