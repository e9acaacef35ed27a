"""Test-time PKI and helpers for the TLS tests: real handshakes, nothing checked in."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from edgeproxy.config.model import (
    EdgeCertificateConfig,
    EdgeLimits,
    EnforcementMode,
    MutualAuthConfig,
)
from edgeproxy.tls.contexts import build_state
from edgeproxy.tls.engine import Event, TlsEngine
from edgeproxy.tls.trust import TrustAnchors, TrustState
from support.pki import build_certificate, common_name, private_key_pem, trustme_issuer

from .aio import FAST, Server, start_server

API = "api.example.com"


def der(ca_or_pem: trustme.CA | bytes) -> bytes:
    pem = ca_or_pem.cert_pem.bytes() if isinstance(ca_or_pem, trustme.CA) else ca_or_pem
    return x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)


@dataclass
class Pki:
    server_ca: trustme.CA
    server_pem: Path  # key + chain for every test host name
    client_ca: trustme.CA  # a root that issues client certificates directly
    good: trustme.LeafCert
    expired: trustme.LeafCert
    not_yet_valid: trustme.LeafCert
    stranger: trustme.LeafCert  # issued by a CA nobody trusts
    root: trustme.CA  # root → intermediate → chained
    intermediate: trustme.CA
    chained: trustme.LeafCert
    server_only: ssl.SSLContext  # a client context whose certificate has EKU serverAuth only

    def anchors(
        self, *cas: trustme.CA, version: int = 1, require_root: bool = False, ca_set: str = "p"
    ) -> TrustAnchors:
        return TrustAnchors(
            ca_set, version, tuple(der(c) for c in cas or (self.client_ca,)), require_root
        )

    def edge(
        self,
        name: str = "api",
        hostnames: Sequence[str] = (API, "*.api.example.com"),
        *,
        mode: EnforcementMode = "require",
        default: bool = False,
        send_ca_list: bool = False,
        origin: str = "http://127.0.0.1:8080",
        alpn: tuple[str, ...] = ("h2", "http/1.1"),
    ) -> EdgeCertificateConfig:
        auth = MutualAuthConfig(ca_set="p", mode=mode, send_ca_list_to_client=send_ca_list)
        return EdgeCertificateConfig(
            name=name,
            hostnames=tuple(hostnames),
            certificate=self.server_pem,
            private_key=self.server_pem,
            origin=origin,
            mutual_authentication=auth,
            default=default,
            alpn=alpn,
        )

    def client_context(
        self, leaf: trustme.LeafCert | None = None, *, tls: ssl.TLSVersion | None = None
    ) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.server_ca.configure_trust(ctx)
        if leaf is not None:
            leaf.configure_cert(ctx)
        if tls is not None:
            ctx.minimum_version = ctx.maximum_version = tls
        return ctx


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    tmp = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)
    day = dt.timedelta(days=1)
    server_ca = trustme.CA()
    server = server_ca.issue_cert(API, "*.api.example.com", "www.example.com", "other.example.com")
    server_pem = tmp / "server.pem"
    server.private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    client_ca = trustme.CA()
    root = trustme.CA()
    intermediate = root.create_child_ca()
    return Pki(
        server_ca=server_ca,
        server_pem=server_pem,
        client_ca=client_ca,
        good=client_ca.issue_cert("alice@example.com", common_name="alice"),
        expired=client_ca.issue_cert(
            "old@example.com", not_before=now - 10 * day, not_after=now - day
        ),
        not_yet_valid=client_ca.issue_cert(
            "new@example.com", not_before=now + day, not_after=now + 10 * day
        ),
        stranger=trustme.CA().issue_cert("mallory@example.com"),
        root=root,
        intermediate=intermediate,
        chained=intermediate.issue_cert("bob@example.com"),
        server_only=_server_only_client(server_ca, client_ca, tmp),
    )


def _server_only_client(server_ca: trustme.CA, issuer: trustme.CA, tmp: Path) -> ssl.SSLContext:
    """A client certificate chaining to `issuer`, for serverAuth only (RFC 5280 4.2.1.12)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = build_certificate(
        common_name("server-only"),
        key,
        not_before=now - dt.timedelta(hours=1),
        not_after=now + dt.timedelta(days=1),
        issuer=trustme_issuer(issuer),
        ca=None,
        extensions=[x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])],
    )
    pem = tmp / "server-only.pem"
    pem.write_bytes(private_key_pem(key) + cert.public_bytes(Encoding.PEM))
    ctx = ssl.create_default_context()
    server_ca.configure_trust(ctx)
    ctx.load_cert_chain(pem)
    return ctx


def state_of(
    *bound: tuple[EdgeCertificateConfig, TrustAnchors | None],
    previous: TrustState | None = None,
    generation: int = 0,
) -> TrustState:
    """A state of these edges, each with the anchors of the set it binds."""
    active = {edge.mutual_authentication.ca_set: anchors for edge, anchors in bound}
    return build_state(
        [edge for edge, _ in bound], active, previous=previous, generation=generation
    )


@pytest.fixture
def state_for(pki: Pki) -> Callable[..., TrustState]:
    """state_for(anchors=..., **edge kwargs): a one-edge TrustState (default: the client CA).
    Each state is built from the one made before, as a node does: unchanged contexts are kept."""
    missing = object()
    last: list[TrustState | None] = [None]

    def make(anchors: object = missing, revision: int = 0, **kw: object) -> TrustState:
        a = pki.anchors() if anchors is missing else anchors
        assert a is None or isinstance(a, TrustAnchors)
        state = state_of((pki.edge(**kw), a), previous=last[0], generation=revision)  # type: ignore[arg-type]
        last[0] = state
        return state

    return make


@dataclass
class Handshake:
    """A stdlib `ssl` client wired to a `TlsEngine` through memory BIOs, pumped by hand."""

    engine: TlsEngine
    obj: ssl.SSLObject
    incoming: ssl.MemoryBIO
    outgoing: ssl.MemoryBIO
    events: list[Event] = field(default_factory=list)
    server_plain: bytearray = field(default_factory=bytearray)
    client_error: ssl.SSLError | None = None
    client_done: bool = False

    def to_server(self) -> bool:
        data = self.outgoing.read()
        if not data:
            return False
        out = self.engine.feed(data)
        self.events.extend(out.events)
        self.server_plain += out.plaintext
        if out.outgoing:
            self.incoming.write(out.outgoing)
        return True

    def pump(self, rounds: int = 20) -> Handshake:
        for _ in range(rounds):
            if not self.client_done and self.client_error is None:
                try:
                    self.obj.do_handshake()
                    self.client_done = True
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError as exc:
                    self.client_error = exc
            if not self.to_server():
                break
        return self

    def client_read(self) -> bytes:
        """Everything the client can read now; raises what the client would raise."""
        chunks = []
        try:
            while True:
                chunk = self.obj.read(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            pass
        finally:
            self.to_server()
        return b"".join(chunks)

    def client_write(self, data: bytes) -> None:
        self.obj.write(data)
        self.to_server()

    def server_write(self, data: bytes) -> None:
        self.incoming.write(self.engine.send(data))


@pytest.fixture
def connect() -> Callable[..., Handshake]:
    def make(
        state: TrustState,
        client_ctx: ssl.SSLContext,
        sni: str | None = API,
        session: ssl.SSLSession | None = None,
        pump: bool = True,
    ) -> Handshake:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        if sni is None:
            client_ctx.check_hostname = False
        obj = client_ctx.wrap_bio(incoming, outgoing, server_hostname=sni, session=session)
        hs = Handshake(TlsEngine(state), obj, incoming, outgoing)
        return hs.pump() if pump else hs

    return make


StartServer = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start(state_for: Callable[..., TrustState]) -> AsyncIterator[StartServer]:
    """start(state=None, limits=FAST): an adapter + echo app listening on 127.0.0.1:<ephemeral>."""
    servers: list[asyncio.Server] = []

    async def make(state: TrustState | None = None, limits: EdgeLimits = FAST) -> Server:
        srv, server = await start_server(state or state_for(), limits)
        servers.append(srv)
        return server

    yield make
    for srv in servers:
        srv.close()
        await srv.wait_closed()
