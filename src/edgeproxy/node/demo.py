"""The embedded demo of `make run` ([demo] in the config): a dev PKI, a demo CA set, a demo origin.

On first start `ensure_dev_pki` makes a server certificate for `localhost` (the edge certificate
the config names) and a client CA with one client certificate; `ensure_demo_ca_set` puts that client
CA in a CA set active on the node's network; `DemoOrigin` answers every request with what it
received, so the identity headers the edge adds are visible; `curl_commands` is what to type.
Every step is idempotent across restarts. DEV ONLY: the keys are unencrypted files on disk.
"""

from __future__ import annotations

import logging
import os
import shlex
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import trustme
from aiohttp import WSMsgType, web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgeproxy.config.model import HostPort
from edgeproxy.config.values import is_loopback
from edgeproxy.domain.certificates import CertificateInput
from edgeproxy.domain.errors import Conflict
from edgeproxy.domain.model import ActivationStatus, Network
from edgeproxy.domain.secrets import generate_kek
from edgeproxy.runtime.weblistener import WebListener
from edgeproxy.service.shared import Actor
from edgeproxy.service.truststore import Truststore
from edgeproxy.service.versions import VersionDraft

log = logging.getLogger(__name__)

DEMO_ACTOR: Final = Actor("demo")
CLIENT_COMMON_NAME: Final = "demo-client"
CLIENT_URI: Final = "spiffe://demo/client"
CLIENT_VALIDITY: Final = timedelta(days=3650)
_ORGANIZATION: Final = "edgeproxy demo"


@dataclass(frozen=True)
class DevPki:
    """Where the dev PKI lives. Private keys are mode 0600; CA private keys are never written."""

    server_chain: Path  # edge certificate chain, leaf first (the config's `certificate`)
    server_key: Path  # its key (the config's `private_key`)
    server_ca: Path  # curl --cacert
    client_ca: Path  # the trust anchor of the demo CA set
    client_cert: Path  # curl --cert
    client_key: Path  # curl --key

    def client_ca_pem(self) -> str:
        return self.client_ca.read_text(encoding="ascii")


def ensure_dev_pki(pki_dir: Path, server_chain: Path, server_key: Path) -> DevPki:
    """Reuse the dev PKI if its files exist, else make it. The server files (chain, key, CA) and
    the client files (CA, certificate, key) are two groups: a group with a file missing is made
    anew as a whole, because its files only make sense together."""
    pki = DevPki(
        server_chain=server_chain,
        server_key=server_key,
        server_ca=pki_dir / "server-ca.pem",
        client_ca=pki_dir / "client-ca.pem",
        client_cert=pki_dir / "client.pem",
        client_key=pki_dir / "client.key",
    )
    pki_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not all(p.exists() for p in (pki.server_chain, pki.server_key, pki.server_ca)):
        _make_server(pki)
        log.info("demo: made a server certificate for localhost", extra={"path": str(server_chain)})
    if not all(p.exists() for p in (pki.client_ca, pki.client_cert, pki.client_key)):
        _make_client(pki)
        log.info("demo: made a client CA and certificate", extra={"path": str(pki.client_cert)})
    return pki


def _make_server(pki: DevPki) -> None:
    ca = trustme.CA(organization_name=_ORGANIZATION, organization_unit_name="demo server CA")
    leaf = ca.issue_cert("localhost", "127.0.0.1", common_name="localhost")
    _write(pki.server_ca, ca.cert_pem.bytes(), private=False)
    _write(pki.server_chain, b"".join(b.bytes() for b in leaf.cert_chain_pems), private=False)
    _write(pki.server_key, leaf.private_key_pem.bytes(), private=True)


def _make_client(pki: DevPki) -> None:
    ca = trustme.CA(organization_name=_ORGANIZATION, organization_unit_name="demo client CA")
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)  # trustme's default key type
    # trustme cannot put a URI in the SAN (SPIFFE IDs are the common workload identity), so the
    # client certificate is built here, signed by trustme's CA key.
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC).replace(microsecond=0)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, CLIENT_COMMON_NAME),
        ]
    )
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + CLIENT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(CLIENT_URI)]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(pki.client_ca, ca.cert_pem.bytes(), private=False)
    _write(pki.client_cert, cert.public_bytes(serialization.Encoding.PEM), private=False)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write(pki.client_key, key_pem, private=True)


def _write(path: Path, data: bytes, *, private: bool) -> None:
    """Write atomically (temp file + rename): a crash never leaves half a PEM behind. The mode is
    set explicitly, whatever the umask: 0600 for keys."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600 if private else 0o644)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_dev_kek(path: Path) -> None:
    """The demo's key-encryption key (docs/security.md): 32 random bytes, base64, mode 0600,
    made on first start and kept, so the store's sealed keys open after a restart. DEV-ONLY."""
    if not path.exists():
        _write(path, generate_kek().encode(), private=True)


def _fingerprint(pem: str) -> str:
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    return cert.fingerprint(hashes.SHA256()).hex()


async def ensure_demo_ca_set(
    service: Truststore, name: str, client_ca_pem: str, network: Network
) -> None:
    """Create what the demo needs and is missing: the set `name`, a version holding the client CA,
    and its activation on `network`. Never overrule anyone, never fail the start over it.

    Once someone other than the demo has activated or deactivated the set on `network`, that
    choice stands. So does a demo activation that failed (the reason is on record), and an
    activation of the set still in flight is left to settle: a second one would be refused, and
    a node that cannot start over it cannot settle it either. Otherwise a version holding the CA
    (among others, perhaps) is preferred over a new one.
    """
    fingerprint = _fingerprint(client_ca_pem)
    sets = await service.ca_sets.list_ca_sets(name_prefix=name)
    ca_set = next((s for s in sets if s.name == name), None)
    if ca_set is None:
        ca_set = await service.ca_sets.create_ca_set(
            DEMO_ACTOR, name, "Client CA of the embedded demo (make run)"
        )
        log.info("demo: created CA set", extra={"ca_set": name})
    activations = await service.activations.list_activations(ca_set.id)  # newest first
    latest = next((a for a in activations if a.network is network), None)
    if latest is not None and latest.created_by != DEMO_ACTOR.name:
        log.info(
            "demo: leaving the CA set as its last activation by someone else set it",
            extra={"ca_set": name, "network": network.value, "by": latest.created_by},
        )
        return
    if latest is not None and latest.status is ActivationStatus.FAILED:
        log.warning(
            "demo: the demo's activation failed; not retrying it",
            extra={"ca_set": name, "reason": latest.failure_reason},
        )
        return
    holding = [
        v.version
        for v in await service.versions.list_versions(ca_set.id)
        if fingerprint in v.fingerprints
    ]
    if ca_set.active_version(network) in holding:
        return
    if any(a.status is ActivationStatus.IN_PROGRESS for a in activations):
        log.warning(
            "demo: an activation of the CA set is in flight; not activating over it",
            extra={"ca_set": name},
        )
        return
    if holding:
        number = max(holding)
    else:
        draft = VersionDraft(
            allow_insecure_sha1=False,
            require_root_certificate=False,
            description="demo client CA",
            certificates=(CertificateInput(client_ca_pem, "demo client CA"),),
        )
        number = (await service.versions.create_version(DEMO_ACTOR, ca_set.id, draft)).version
    try:
        await service.activations.activate(DEMO_ACTOR, ca_set.id, number, network)
    except Conflict as refused:  # it would lock out clients seen there: an operator's call
        log.warning(
            "demo: not activating the demo version: %s",
            refused.detail,
            extra={"ca_set": name, "version": number, "network": network.value},
        )
        return
    log.info(
        "demo: activated CA set version",
        extra={"ca_set": name, "version": number, "network": network.value},
    )


# -- demo origin ----------------------------------------------------------------------------------


async def _echo(request: web.Request) -> web.Response:
    size = 0
    async for chunk in request.content.iter_any():  # streamed: the body is counted, not kept
        size += len(chunk)
    headers = {k: ", ".join(request.headers.getall(k)) for k in request.headers}
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "headers": headers,
            "bodyBytes": size,
        }
    )


async def _websocket(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse()
    if not ws.can_prepare(request).ok:
        return await _echo(request)  # a plain GET /ws is echoed like any other path
    await ws.prepare(request)
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            await ws.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await ws.send_bytes(message.data)
    return ws


def create_demo_origin_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/ws", _websocket)
    app.router.add_route("*", "/{tail:.*}", _echo)
    return app


class DemoOrigin(WebListener):
    """A role serving the demo origin: any method and path → 200 JSON echo; `/ws` echoes frames."""

    def __init__(self, listen: HostPort) -> None:
        super().__init__(create_demo_origin_app(), listen, key="demo.origin_listen")


# -- what to type ---------------------------------------------------------------------------------


def _connect_host(host: str) -> str:
    """An address to reach a listener bound to `host` (a wildcard bind is reached on loopback)."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104


def curl_commands(pki: DevPki, edge_listen: HostPort, hostname: str) -> str:
    """The text printed at start: one curl command that succeeds and one that is refused."""
    host = _connect_host(edge_listen.host)
    url = f"https://{hostname}:{edge_listen.port}/"
    resolve: list[str] = []
    if hostname != host and not (hostname == "localhost" and is_loopback(host)):
        # The edge certificate's hostname may not resolve to the listener: pin it (SNI and Host
        # still carry the hostname, which the edge requires to agree, docs/dataplane.md).
        address = f"[{host}]" if ":" in host else host
        resolve = ["--resolve", f"{hostname}:{edge_listen.port}:{address}"]
    base = ["curl", *resolve, "--cacert", str(pki.server_ca)]
    ok = [*base, "--cert", str(pki.client_cert), "--key", str(pki.client_key), url]
    refused = [*base, url]
    return (
        "Demo ready. With the demo client certificate the request reaches the demo origin,\n"
        "which echoes the identity headers the edge added:\n\n"
        f"  {shlex.join(ok)}\n\n"
        "Without a client certificate the edge refuses it:\n\n"
        f"  {shlex.join(refused)}\n"
    )
