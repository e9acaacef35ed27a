"""Helpers for the HTTP proxy tests: a test-time PKI, TLS sessions, a raw HTTP/1.1 client.

(Imported relatively by the modules beside it: the package is `dataplane.http`, so no top-level
module named `http` shadows the standard library.)
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from edgeproxy.authz.policy import Policy
from edgeproxy.config.model import (
    EdgeCertificateConfig,
    EdgeLimits,
    EnforcementMode,
    FailureAction,
    IdentityHeaderFormat,
    MutualAuthConfig,
)
from edgeproxy.dataplane.http import ServedEdges
from edgeproxy.tls.session import Reason, TlsSession, VerifyResult
from support.pki import Issued, build_certificate, common_name

HOSTNAMES = ("api.example.com", "*.api.example.com")
NOW = datetime.now(UTC)


@dataclass(frozen=True)
class ClientPki:
    leaf: x509.Certificate
    intermediate: x509.Certificate

    @property
    def chain_der(self) -> tuple[bytes, ...]:
        return (self.leaf.public_bytes(Encoding.DER), self.intermediate.public_bytes(Encoding.DER))


def _name(cn: str) -> x509.Name:
    return common_name(cn, organization="Partner, Inc.")


def _cert(
    subject: x509.Name,
    issuer: Issued | None,
    *,
    ca: bool,
    san: list[x509.GeneralName] | None = None,
) -> Issued:
    """A certificate with a new P-256 key, self-signed without an `issuer`."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build_certificate(
        subject,
        key,
        not_before=NOW - timedelta(hours=1),
        not_after=NOW + timedelta(days=1),
        issuer=issuer,
        ca=ca,
        extensions=[x509.SubjectAlternativeName(san)] if san else [],
    )
    return Issued(cert, key)


def make_client_pki() -> ClientPki:
    """root -> intermediate -> client leaf with URI and DNS SANs and a DN that needs escaping."""
    root = _cert(_name("Test Root CA"), None, ca=True)
    intermediate = _cert(_name("Test Intermediate CA"), root, ca=True)
    leaf = _cert(
        _name('client "one"'),
        intermediate,
        ca=False,
        san=[
            x509.UniformResourceIdentifier("spiffe://partners.example/ns/a;b"),
            x509.DNSName("client.partners.example"),
            x509.DNSName("alt.partners.example"),
        ],
    )
    return ClientPki(leaf.cert, intermediate.cert)


def serve_edges(*sessions: TlsSession, limits: EdgeLimits | None = None) -> ServedEdges:
    """What the trust sync would keep for these sessions' edge certificates."""
    served = ServedEdges(limits or EdgeLimits())
    served.update(s.edge for s in sessions)
    return served


def make_session(
    origin: str,
    chain_der: tuple[bytes, ...] = (),
    *,
    verify: VerifyResult = VerifyResult.SUCCESS,
    reason: Reason | None = None,
    mode: EnforcementMode = "require",
    on_failure: FailureAction = "deny",
    identity_headers: tuple[IdentityHeaderFormat, ...] = ("xfcc",),
    verified: tuple[bytes, ...] | None = None,
    authorization: Policy | None = None,
) -> TlsSession:
    """`verified`: the verified chain; by default `chain_der` when the verdict is SUCCESS."""
    edge = EdgeCertificateConfig(
        name="api",
        hostnames=HOSTNAMES,
        certificate=Path("api-chain.pem"),
        private_key=Path("api.key"),
        origin=origin,
        mutual_authentication=MutualAuthConfig(
            ca_set="partners",
            mode=mode,
            on_failure=on_failure,
            identity_headers=identity_headers,
            authorization=authorization,
        ),
    )
    return TlsSession(
        edge=edge,
        sni="api.example.com",
        tls_version="TLSv1.3",
        cipher="TLS_AES_128_GCM_SHA256",
        peer_chain_der=chain_der,
        verify_result=verify,
        verify_reason=reason,
        ca_set="partners",
        ca_set_version=3,
        verified_chain_der=(chain_der if verify is VerifyResult.SUCCESS else ())
        if verified is None
        else verified,
    )


@dataclass
class Response:
    status: int
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


class RawClient:
    """Exact bytes out, responses parsed strictly enough for tests (CL, chunked, until close)."""

    opened: ClassVar[list[RawClient]] = []  # closed by the autouse fixture after each test

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        client = cls(reader, writer)
        cls.opened.append(client)
        return client

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def request(
        self, path: str = "/", method: str = "GET", headers: str = "", body: bytes = b""
    ) -> Response:
        length = f"Content-Length: {len(body)}\r\n" if body else ""
        await self.send(
            f"{method} {path} HTTP/1.1\r\nHost: api.example.com\r\n{headers}{length}\r\n".encode()
            + body
        )
        return await self.response(head_only=method == "HEAD")

    async def response(self, head_only: bool = False, timeout: float = 10) -> Response:
        async with asyncio.timeout(timeout):
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            resp = Response(int(lines[0].split(" ", 2)[1]))
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    resp.headers.setdefault(name.strip().lower(), []).append(value.strip())
            if head_only or resp.status < 200 or resp.status in (204, 304):
                return resp
            if resp.header("transfer-encoding") == "chunked":
                resp.body = await self._chunked()
            elif (length := resp.header("content-length")) is not None:
                resp.body = await self.reader.readexactly(int(length))
            else:
                resp.body = await self.reader.read()
            return resp

    async def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def at_eof(self, timeout: float = 5) -> bool:
        """True when the proxy closed the connection (EOF or reset) within `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.read(1) == b""
        except ConnectionError:
            return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def parse_xfcc(value: str) -> list[tuple[str, str]]:
    """Split one XFCC element into (key, value) pairs, honouring quoted strings."""
    pairs = []
    for m in re.finditer(r'([A-Za-z]+)=("(?:[^"\\]|\\.)*"|[^;]*)(?:;|$)', value):
        raw = m.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        pairs.append((m.group(1), raw))
    return pairs
