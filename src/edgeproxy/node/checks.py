"""`edgeproxy check-config` beyond parsing, at `nginx -t` grade (docs/operations.md "Running"):
each edge certificate's files, key, chain, host names and expiry, and its CA set in the store.

Every finding names the dotted key and the file it is about. Errors make the command exit 2;
warnings do not (an expiry ahead, a store that cannot be asked, a set not active yet).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from edgeproxy.config.model import Config, EdgeCertificateConfig
from edgeproxy.store import open_store

EXPIRY_WARNING = timedelta(days=30)
STORE_TIMEOUT = 3.0  # seconds: the store is asked, never waited for


@dataclass(frozen=True)
class Finding:
    severity: str  # "error" | "warning"
    key: str  # dotted config key
    text: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.key}: {self.text}"


def _covered(hostname: str, cert: x509.Certificate) -> bool:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    host = hostname.lower().rstrip(".")
    for name in names.get_values_for_type(x509.DNSName):
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if host.startswith("*.") and name == host:
            return True
        if name.startswith("*.") and not host.startswith("*."):
            head, _, rest = host.partition(".")
            if head and rest == name[2:]:
                return True
    return False


def check_edge(index: int, edge: EdgeCertificateConfig, now: datetime) -> list[Finding]:
    base = f"edge.certificates[{index}]"
    cert_key, key_key = f"{base}.certificate", f"{base}.private_key"
    out: list[Finding] = []
    try:
        chain = x509.load_pem_x509_certificates(edge.certificate.read_bytes())
    except OSError as error:
        return [Finding("error", cert_key, f"{edge.certificate}: {error.strerror or error}")]
    except ValueError:
        return [Finding("error", cert_key, f"{edge.certificate}: not a PEM certificate chain")]
    leaf = chain[0]
    try:
        key = load_pem_private_key(edge.private_key.read_bytes(), None)
    except OSError as error:
        out.append(Finding("error", key_key, f"{edge.private_key}: {error.strerror or error}"))
    except (ValueError, TypeError):
        out.append(Finding("error", key_key, f"{edge.private_key}: not an unencrypted PEM key"))
    else:
        spki = Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
            out.append(
                Finding(
                    "error",
                    key_key,
                    f"{edge.private_key} does not match the certificate of {edge.certificate}",
                )
            )
    for position, (cert, issuer) in enumerate(itertools.pairwise(chain)):
        if cert.issuer != issuer.subject:
            out.append(
                Finding(
                    "error",
                    cert_key,
                    f"{edge.certificate}: certificate {position + 1} is not the issuer of "
                    f"certificate {position} (the chain must go leaf first, then each issuer)",
                )
            )
    for hostname in edge.hostnames:
        if not _covered(hostname, leaf):
            out.append(
                Finding(
                    "error",
                    f"{base}.hostnames",
                    f"{hostname!r} is not among the subjectAltNames of {edge.certificate}",
                )
            )
    for position, cert in enumerate(chain):
        left = cert.not_valid_after_utc - now
        what = f"{edge.certificate}: certificate {position} ({cert.subject.rfc4514_string()})"
        if left <= timedelta():
            out.append(Finding("error", cert_key, f"{what} expired {cert.not_valid_after_utc}"))
        elif left < EXPIRY_WARNING:
            out.append(Finding("warning", cert_key, f"{what} expires in {left.days} day(s)"))
    return out


async def _active_sets(config: Config) -> dict[str, bool]:
    """CA set name → whether a version of it is active on the node's network."""
    store = open_store(
        config.store.url, connect_timeout=STORE_TIMEOUT, statement_timeout=STORE_TIMEOUT
    )
    try:
        await store.open()
        async with store.transaction(write=False) as tx:
            sets = await tx.list_ca_sets()
        return {s.name: s.active_version(config.node.network) is not None for s in sets}
    finally:
        await store.close()


def check_sets(config: Config) -> list[Finding]:
    """Warnings only: a binding whose set is missing or inactive starts, and fails closed."""
    assert config.edge is not None
    url = config.store.url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        # Never made by a check: the first `serve` creates it.
        return [Finding("warning", "store.url", "no SQLite store there yet; CA sets not checked")]
    try:
        active = asyncio.run(asyncio.wait_for(_active_sets(config), STORE_TIMEOUT * 2))
    except Exception as error:
        return [
            Finding(
                "warning",
                "store.url",
                f"the store cannot be asked ({type(error).__name__}); CA sets not checked",
            )
        ]
    out: list[Finding] = []
    network = config.node.network.value
    for index, edge in enumerate(config.edge.certificates):
        name = edge.mutual_authentication.ca_set
        key = f"edge.certificates[{index}].mutual_authentication.ca_set"
        if config.demo.enabled and name == config.demo.ca_set:
            continue  # the demo creates and activates it at start
        if name not in active:
            out.append(
                Finding(
                    "warning",
                    key,
                    f"no CA set named {name!r} in the store: {edge.name} fails closed",
                )
            )
        elif not active[name]:
            out.append(
                Finding(
                    "warning",
                    key,
                    f"CA set {name!r} has no version active on {network}: {edge.name} fails closed",
                )
            )
    return out


def check(config: Config, now: datetime | None = None) -> list[Finding]:
    """Every finding about `config` beyond what parsing checked."""
    if config.edge is None:
        return []
    moment = now or datetime.now(UTC)
    out: list[Finding] = []
    for index, edge in enumerate(config.edge.certificates):
        if config.demo.enabled and not Path(edge.certificate).exists():
            continue  # the demo makes its files at the first start
        out += check_edge(index, edge, moment)
    return out + check_sets(config)
