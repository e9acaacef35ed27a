"""TlsEngine against a real stdlib `ssl` client over memory BIOs: every accept has a reject twin."""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from OpenSSL import SSL

from edgeproxy.tls import engine as engine_module
from edgeproxy.tls import membio
from edgeproxy.tls.engine import (
    PLAIN_HTTP_ANSWER,
    HandshakeComplete,
    HandshakeFailed,
    IllegalTransition,
    PeerClosed,
    State,
    TlsEngine,
    TlsError,
)
from edgeproxy.tls.recheck import judge_chain
from edgeproxy.tls.session import Reason, VerifyResult
from edgeproxy.tls.trust import TrustAnchors, TrustState
from support.pki import AgedChain, aged_chain

from .conftest import API, Handshake, Pki, der, state_of

TLS_VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]
Connect = Callable[..., Handshake]
StateFor = Callable[..., TrustState]


@pytest.fixture(autouse=True, params=["membio", "fallback"])
def bio_levels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test twice: with the BIO fill levels read (membio.py), and without, as where the
    binding is missing (each BIO asked until WantReadError)."""
    if request.param == "fallback":
        monkeypatch.setattr(engine_module, "incoming", lambda conn: membio.UNKNOWN)
        monkeypatch.setattr(engine_module, "outgoing", lambda conn: membio.UNKNOWN)


def test_bio_fill_levels_are_read_here() -> None:
    """The fast path is the one this installation runs, and it reads the real levels."""
    assert membio.AVAILABLE
    conn = SSL.Connection(SSL.Context(SSL.TLS_CLIENT_METHOD), None)
    conn.set_connect_state()
    assert membio.incoming(conn) == 0
    assert membio.outgoing(conn) == 0
    conn.bio_write(b"\x16\x03\x01")
    assert membio.incoming(conn) == 3
    with pytest.raises(SSL.WantReadError):
        conn.do_handshake()  # writes a ClientHello, then wants the server's answer
    hello = membio.outgoing(conn)
    assert hello > 0
    assert len(conn.bio_read(hello)) == hello
    assert membio.outgoing(conn) == 0


def failed(hs: Handshake) -> HandshakeFailed:
    assert hs.engine.state is State.FAILED, hs.engine
    [event] = [e for e in hs.events if isinstance(e, HandshakeFailed)]
    return event


def complete(hs: Handshake) -> HandshakeComplete:
    assert hs.engine.state is State.ESTABLISHED, (hs.engine, hs.events, hs.client_error)
    [event] = [e for e in hs.events if isinstance(e, HandshakeComplete)]
    return event


@pytest.mark.parametrize("tls", TLS_VERSIONS, ids=["tls12", "tls13"])
def test_valid_client_certificate_succeeds(
    pki: Pki, state_for: StateFor, connect: Connect, tls: ssl.TLSVersion
) -> None:
    hs = connect(state_for(), pki.client_context(pki.good, tls=tls))
    session = complete(hs).session
    assert session is hs.engine.session
    assert session.verify_result is VerifyResult.SUCCESS
    assert session.verify_reason is None
    assert session.edge.name == "api"
    assert session.sni == API
    assert session.tls_version == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[tls.name]
    assert session.cipher
    assert (session.ca_set, session.ca_set_version) == ("p", 1)
    leaf = x509.load_der_x509_certificate(session.peer_chain_der[0])
    assert leaf.subject.rfc4514_string().startswith("CN=alice,")
    assert session.verify_header_value == "SUCCESS"
    hs.client_write(b"ping")
    assert bytes(hs.server_plain) == b"ping"
    hs.server_write(b"pong")
    assert hs.client_read() == b"pong"


@pytest.mark.parametrize("tls", TLS_VERSIONS, ids=["tls12", "tls13"])
@pytest.mark.parametrize(
    ("leaf", "reason"),
    [
        (None, Reason.NO_CERTIFICATE),
        ("stranger", Reason.UNKNOWN_CA),
        ("expired", Reason.EXPIRED),
        ("not_yet_valid", Reason.NOT_YET_VALID),
    ],
)
def test_require_mode_refuses(
    pki: Pki,
    state_for: StateFor,
    connect: Connect,
    leaf: str | None,
    reason: Reason,
    tls: ssl.TLSVersion,
) -> None:
    cert = None if leaf is None else getattr(pki, leaf)
    hs = connect(state_for(), pki.client_context(cert, tls=tls))
    assert failed(hs).reason is reason
    assert hs.engine.session is None
    if hs.client_error is None:  # TLS 1.3: the client finished first, the alert comes on read
        with pytest.raises(ssl.SSLError):
            hs.client_read()


def test_certificate_not_for_client_auth_is_refused(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    assert failed(connect(state_for(), pki.server_only)).reason is Reason.BAD_CERTIFICATE


def test_request_mode_without_certificate_completes_with_none(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    session = complete(connect(state_for(mode="request"), pki.client_context())).session
    assert session.verify_result is VerifyResult.NONE
    assert session.verify_reason is Reason.NO_CERTIFICATE
    assert session.peer_chain_der == ()


@pytest.mark.parametrize(
    ("leaf", "reason"),
    [("stranger", Reason.UNKNOWN_CA), ("expired", Reason.EXPIRED), ("good", None)],
)
def test_request_mode_with_certificate_reports_verdict(
    pki: Pki, state_for: StateFor, connect: Connect, leaf: str, reason: Reason | None
) -> None:
    hs = connect(state_for(mode="request"), pki.client_context(getattr(pki, leaf)))
    session = complete(hs).session
    assert session.verify_reason is reason
    assert session.verify_result is (VerifyResult.FAILED if reason else VerifyResult.SUCCESS)
    assert len(session.peer_chain_der) == 1
    if reason:
        assert session.verify_header_value == f"FAILED:{reason}"


@pytest.mark.parametrize("leaf", ["good", None])
def test_no_active_version_fails_closed_in_require_mode(
    pki: Pki, state_for: StateFor, connect: Connect, leaf: str | None
) -> None:
    cert = None if leaf is None else getattr(pki, leaf)
    hs = connect(state_for(anchors=None), pki.client_context(cert))
    assert failed(hs).reason is Reason.NO_ACTIVE_VERSION


def test_no_active_version_fails_closed_in_request_mode(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    for leaf in (pki.good, None):
        session = complete(
            connect(state_for(anchors=None, mode="request"), pki.client_context(leaf))
        ).session
        assert session.verify_result is VerifyResult.FAILED
        assert session.verify_reason is Reason.NO_ACTIVE_VERSION
        assert session.ca_set is None
        assert session.ca_set_version is None


def test_partial_chain_anchors_on_an_intermediate(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    client = pki.client_context(pki.chained)
    loose = state_for(anchors=pki.anchors(pki.intermediate))
    session = complete(connect(loose, client)).session
    assert session.verify_result is VerifyResult.SUCCESS
    assert len(session.peer_chain_der) == 2  # leaf first, then the intermediate it sent
    assert session.peer_chain_der[1] == der(pki.intermediate)


def test_require_root_refuses_an_intermediate_anchor(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    strict = state_for(anchors=pki.anchors(pki.intermediate, require_root=True))
    assert failed(connect(strict, pki.client_context(pki.chained))).reason is Reason.UNKNOWN_CA


def test_require_root_accepts_a_chain_to_a_root_in_the_version(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    strict = state_for(anchors=pki.anchors(pki.root, pki.intermediate, require_root=True))
    assert complete(connect(strict, pki.client_context(pki.chained))).session.verify_result is (
        VerifyResult.SUCCESS
    )


@pytest.mark.parametrize(
    ("sni", "edge"),
    [
        (API, "api"),
        ("x.api.example.com", "api"),  # wildcard, one label deep
        ("www.example.com", "www"),  # exact, the default edge
        ("a.b.api.example.com", "www"),  # two labels deep: falls back to the default
        ("other.example.com", "www"),  # unknown: the default
        (None, "www"),  # no SNI: the default
    ],
)
def test_sni_selects_the_edge(pki: Pki, connect: Connect, sni: str | None, edge: str) -> None:
    anchors = pki.anchors()
    state = state_of(
        (pki.edge(), anchors), (pki.edge("www", ["www.example.com"], default=True), anchors)
    )
    ctx = pki.client_context(pki.good)
    if sni in ("a.b.api.example.com", None):
        ctx.check_hostname = False
    hs = connect(state, ctx, sni=sni)
    assert complete(hs).session.edge.name == edge
    assert hs.engine.sni == sni


def test_unknown_sni_without_default_is_refused_with_unrecognized_name(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    hs = connect(state_for(), pki.client_context(pki.good), sni="other.example.com")
    assert failed(hs).reason is Reason.SNI_MISMATCH
    assert hs.engine.edge is None
    assert hs.engine.sni == "other.example.com"
    assert hs.client_error is not None
    assert "UNRECOGNIZED_NAME" in str(hs.client_error)


def test_tls11_only_client_is_refused(pki: Pki, state_for: StateFor, connect: Connect) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = pki.client_context(pki.good, tls=ssl.TLSVersion.TLSv1_1)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client library speak TLS 1.1 at all
    hs = connect(state_for(), ctx)
    assert failed(hs).reason is Reason.UNSUPPORTED_PROTOCOL
    assert hs.client_error is not None
    assert "PROTOCOL_VERSION" in str(hs.client_error)


def test_application_data_in_the_last_flight(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    hs = connect(state_for(), pki.client_context(pki.good), pump=False)
    with pytest.raises(ssl.SSLWantReadError):
        hs.obj.do_handshake()
    hs.to_server()  # ClientHello → server flight
    hs.obj.do_handshake()  # TLS 1.3: the client is done once it has sent Finished...
    hs.obj.write(b"GET / HTTP/1.1\r\n\r\n")  # ...and pipelines its request behind it
    out = hs.engine.feed(hs.outgoing.read())  # one read: Finished + application data
    assert [type(e) for e in out.events] == [HandshakeComplete]
    assert out.plaintext == b"GET / HTTP/1.1\r\n\r\n"
    assert out.outgoing  # NewSessionTickets


def test_clienthello_fragmented_across_records_and_reads(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    hs = connect(state_for(), pki.client_context(pki.good), pump=False)
    with pytest.raises(ssl.SSLWantReadError):
        hs.obj.do_handshake()
    record = hs.outgoing.read()
    body = record[5:]
    refragmented = b"".join(
        b"\x16\x03\x01" + len(body[i : i + 50]).to_bytes(2) + body[i : i + 50]
        for i in range(0, len(body), 50)
    )
    for i in range(0, len(refragmented), 7):  # and trickled in 7-byte reads
        out = hs.engine.feed(refragmented[i : i + 7])
        hs.incoming.write(out.outgoing)
    assert hs.engine.state is State.HANDSHAKING
    complete(hs.pump())


def test_close_notify_both_ways(pki: Pki, state_for: StateFor, connect: Connect) -> None:
    hs = connect(state_for(), pki.client_context(pki.good))
    complete(hs)
    hs.client_read()  # take the tickets
    hs.incoming.write(hs.engine.close())
    assert hs.engine.state is State.CLOSING
    assert hs.obj.read() == b""  # stdlib: close_notify reads as EOF (no data: SSLWantReadError)
    with pytest.raises(TlsError):
        hs.engine.send(b"late")
    hs.obj.unwrap()  # the client answers with its close_notify
    out = hs.engine.feed(hs.outgoing.read())
    assert out.events == (PeerClosed(True),)
    assert hs.engine.state is State.CLOSED  # type: ignore[comparison-overlap]  # mypy keeps the narrowing across the call


def test_peer_close_notify_then_local_close(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    hs = connect(state_for(), pki.client_context(pki.good))
    complete(hs)
    hs.client_read()
    with pytest.raises(ssl.SSLWantReadError):
        hs.obj.unwrap()
    out = hs.engine.feed(hs.outgoing.read())
    assert out.events == (PeerClosed(True),)
    assert hs.engine.state is State.CLOSING
    hs.server_write(b"still allowed")  # half-close (RFC 8446 §6.1): we may finish our reply
    assert hs.engine.close()
    assert hs.engine.state is State.CLOSED  # type: ignore[comparison-overlap]  # mypy keeps the narrowing across the call


def test_eof_without_close_notify_is_unclean(
    pki: Pki, state_for: StateFor, connect: Connect
) -> None:
    hs = connect(state_for(), pki.client_context(pki.good))
    complete(hs)
    out = hs.engine.feed_eof()
    assert out.events == (PeerClosed(False, "EOF without close_notify"),)
    assert hs.engine.state is State.CLOSED


def test_eof_before_and_during_handshake(pki: Pki, state_for: StateFor) -> None:
    engine = TlsEngine(state_for())
    assert engine.feed(b"\x16\x03\x01").events == ()
    assert engine.feed_eof().events[0] == HandshakeFailed(
        Reason.OTHER, "EOF after 3 bytes of ClientHello"
    )


@pytest.mark.parametrize(
    ("data", "reason", "alert"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", Reason.PLAIN_HTTP, PLAIN_HTTP_ANSWER),
        (b"\x80\x2e\x01\x00\x02", Reason.NOT_TLS, b""),  # SSLv2 ClientHello
        (
            b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",
            Reason.NOT_TLS,
            b"\x15\x03\x03\x00\x02\x02\x0a",  # unexpected_message: not a ClientHello
        ),
    ],
)
def test_garbage_is_refused_before_openssl(
    state_for: StateFor, data: bytes, reason: Reason, alert: bytes
) -> None:
    engine = TlsEngine(state_for())
    out = engine.feed(data)
    assert out.events == (HandshakeFailed(reason, engine.failure.detail if engine.failure else ""),)
    assert out.outgoing == alert
    assert engine.state is State.FAILED
    assert engine.feed(b"more").events == ()  # terminal


def test_bulk_data_both_ways(pki: Pki, state_for: StateFor, connect: Connect) -> None:
    hs = connect(state_for(), pki.client_context(pki.good))
    complete(hs)
    hs.client_read()
    blob = bytes(range(256)) * 4096  # 1 MiB
    hs.client_write(blob)
    assert bytes(hs.server_plain) == blob
    hs.server_write(blob)
    assert hs.client_read() == blob


def test_state_machine_refuses_illegal_moves(state_for: StateFor) -> None:
    engine = TlsEngine(state_for())
    assert repr(engine) == "<TlsEngine HELLO sni=None edge=None>"
    with pytest.raises(IllegalTransition):
        engine._to(State.ESTABLISHED)
    with pytest.raises(TlsError):
        engine.send(b"too early")
    assert engine.feed(b"") is engine.feed(b"")  # empty input: nothing happens
    assert engine.close() == b""
    assert engine.state is State.CLOSED
    with pytest.raises(IllegalTransition):
        engine._to(State.HANDSHAKING)


@pytest.mark.parametrize("tls", TLS_VERSIONS, ids=["tls12", "tls13"])
def test_sessions_resume_only_under_the_same_trust_version(
    pki: Pki, state_for: StateFor, connect: Connect, tls: ssl.TLSVersion
) -> None:
    ctx = pki.client_context(pki.good, tls=tls)
    v1 = state_for()
    first = connect(v1, ctx)
    complete(first)
    first.client_read()
    session = first.obj.session
    again = connect(v1, ctx, session=session)
    assert complete(again).session.verify_result is VerifyResult.SUCCESS
    assert again.obj.session_reused
    v2 = state_for(anchors=pki.anchors(version=2))
    later = connect(v2, ctx, session=session)
    complete(later)
    assert not later.obj.session_reused


def test_request_mode_never_resumes(pki: Pki, state_for: StateFor, connect: Connect) -> None:
    ctx = pki.client_context(pki.expired)
    state = state_for(mode="request")
    first = connect(state, ctx)
    assert complete(first).session.verify_reason is Reason.EXPIRED
    first.client_read()
    again = connect(state, ctx, session=first.obj.session)
    assert complete(again).session.verify_reason is Reason.EXPIRED
    assert not again.obj.session_reused


@pytest.fixture(scope="module")
def aged() -> AgedChain:
    return aged_chain()


# (anchors, require_root, what the client sends, the reason; None: accepted)
EDGE_AND_JUDGE_CASES = [
    # The root expired: requireRootCertificate must reach it; a partial chain stops before it.
    (("intermediate", "root_expired"), True, ("client", "intermediate"), Reason.EXPIRED),
    (("intermediate", "root_expired"), False, ("client", "intermediate"), None),
    # The only anchor expired.
    (("root_expired",), False, ("client", "intermediate"), Reason.EXPIRED),
    (("root",), True, ("client", "intermediate"), None),
    # No path to the root: the client sends no intermediate, the version holds none.
    (("root",), True, ("client",), Reason.UNKNOWN_CA),
    (("intermediate",), False, ("client",), None),
    # An intermediate alone under requireRootCertificate (validation refuses such a version).
    (("intermediate",), True, ("client", "intermediate"), Reason.UNKNOWN_CA),
    # A leaf no TLS client may use: OpenSSL checks its purpose once a path is found, before the
    # dates of the chain.
    (("intermediate",), False, ("server_only", "intermediate"), Reason.BAD_CERTIFICATE),
    (("intermediate",), False, ("no_signature", "intermediate"), Reason.BAD_CERTIFICATE),
    (("root_expired",), False, ("server_only", "intermediate"), Reason.BAD_CERTIFICATE),
    (("root",), True, ("server_only",), Reason.UNKNOWN_CA),
]


@pytest.mark.parametrize(("held", "require_root", "sent", "reason"), EDGE_AND_JUDGE_CASES)
def test_the_handshake_and_the_impact_verifier_give_the_same_reason(
    pki: Pki,
    state_for: StateFor,
    connect: Connect,
    aged: AgedChain,
    tmp_path: Path,
    held: tuple[str, ...],
    require_root: bool,
    sent: tuple[str, ...],
    reason: Reason | None,
) -> None:
    """What the impact API reports (tls/recheck.py `judge_chain`) is what the edge refuses with."""
    certs = [getattr(aged, name) for name in held]
    anchors = TrustAnchors("p", 1, tuple(c.der for c in certs), require_root)
    chain = [getattr(aged, name) for name in sent]
    assert judge_chain([c.der for c in chain], anchors) is reason
    pem = tmp_path / "client.pem"
    pem.write_text(chain[0].key_pem + "".join(c.pem for c in chain))
    client = pki.client_context()
    client.load_cert_chain(pem)
    hs = connect(state_for(anchors=anchors), client)
    if reason is None:
        assert complete(hs).session.verify_result is VerifyResult.SUCCESS
    else:
        assert failed(hs).reason is reason
