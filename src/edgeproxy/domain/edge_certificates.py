"""Validation of an edge certificate's server chain, private key and host names, and of its
mutual-authentication settings (docs/management.md "Edge certificates").

Pure: text and a clock in, a report out. No message ever echoes a PEM body: the private key field
is parsed and re-encoded, never quoted, and a key found in the chain field is refused unread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from edgeproxy.domain.certificates import ALLOWED_CURVES, EXPIRY_WARNING, MIN_RSA_BITS
from edgeproxy.domain.edge_model import ALPN_PROTOCOLS, LeafInfo, MutualAuth
from edgeproxy.domain.errors import BadRequest, FieldError, ValidationError
from edgeproxy.domain.hostnames import (
    ORIGIN_SCHEMES,
    covered_by,
    hostname_problem,
    url_problem,
)
from edgeproxy.domain.pem import BlockError, certificate_blocks, split_pem_blocks

MAX_CHAIN_CERTIFICATES = 10
MAX_HOSTNAMES = 100
CHAIN = "/certificateChainPem"
KEY = "/privateKeyPem"


@dataclass(frozen=True)
class ChainReport:
    """The outcome of checking a chain and key. `key_pem`: the key re-encoded as unencrypted
    PKCS#8 PEM, to be sealed at once; never shown (repr), never stored in clear."""

    leaf: LeafInfo | None
    chain_pem: str
    key_pem: bytes = field(repr=False)
    errors: tuple[FieldError, ...]
    warnings: tuple[FieldError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors and self.leaf is not None


class _Found:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.warnings: list[FieldError] = []

    def error(self, type_: str, detail: str, pointer: str) -> None:
        self.errors.append(FieldError(type_, detail, pointer))

    def warn(self, type_: str, detail: str, pointer: str) -> None:
        self.warnings.append(FieldError(type_, detail, pointer))


def check_hostnames(hostnames: Sequence[str]) -> tuple[str, ...]:
    """The host names lower-cased, or a 422 naming each bad one."""
    found = _Found()
    if not hostnames:
        found.error("no-hostnames", "at least one host name is required", "/hostnames")
    if len(hostnames) > MAX_HOSTNAMES:
        found.error("too-many-hostnames", f"at most {MAX_HOSTNAMES} host names", "/hostnames")
    seen: set[str] = set()
    for i, host in enumerate(hostnames):
        problem = hostname_problem(host)
        if problem is not None:
            found.error("invalid-hostname", f"hostnames[{i}] {problem}", f"/hostnames/{i}")
        elif host.lower() in seen:
            found.error("duplicate-hostname", f"hostnames[{i}] is listed twice", f"/hostnames/{i}")
        seen.add(host.lower())
    if found.errors:
        raise ValidationError("invalid-hostnames", found.errors[0].detail, tuple(found.errors))
    return tuple(h.lower() for h in hostnames)


def check_alpn(alpn: Sequence[str]) -> tuple[str, ...]:
    """The protocols ALPN may select, in the server's order of preference: a non-empty list of
    `h2` and `http/1.1` without repeats, as the config file's `alpn`; else a 400 naming each bad
    entry (a value that can never be served, like a malformed body, not a management rule)."""
    errors: list[FieldError] = []
    if not alpn:
        errors.append(FieldError("invalid-alpn", "alpn must name at least one protocol", "/alpn"))
    for i, protocol in enumerate(alpn):
        if protocol not in ALPN_PROTOCOLS:
            detail = f"alpn[{i}] must be one of {', '.join(ALPN_PROTOCOLS)}"
            errors.append(FieldError("invalid-alpn", detail, f"/alpn/{i}"))
        elif protocol in alpn[:i]:
            errors.append(FieldError("invalid-alpn", f"alpn[{i}] is listed twice", f"/alpn/{i}"))
    if errors:
        raise BadRequest("invalid-alpn", errors[0].detail, tuple(errors))
    return tuple(alpn)


def check_origin(origin: str) -> None:
    problem = url_problem(origin, *ORIGIN_SCHEMES)
    if problem is not None:
        raise ValidationError(
            "invalid-origin",
            f"origin {problem}",
            (FieldError("invalid-origin", problem, "/origin"),),
        )


def coverage_warnings(dns_names: Sequence[str], hostnames: Sequence[str]) -> list[FieldError]:
    """A warning per host name the leaf's DNS subjectAltNames do not cover: clients would refuse
    the certificate for it."""
    return [
        FieldError(
            "hostname-not-covered",
            f"hostnames[{i}] {host!r} is not covered by the certificate's subjectAltNames "
            f"({', '.join(dns_names) or 'none'}); clients will refuse it for that name",
            f"/hostnames/{i}",
        )
        for i, host in enumerate(hostnames)
        if not any(covered_by(host, san) for san in dns_names)
    ]


def validate_server_chain(
    chain_pem: str, key_pem: str, hostnames: Sequence[str], *, now: datetime
) -> ChainReport:
    """Check a server chain (leaf first) and its private key: parse, order, key match, strength,
    validity dates; SAN coverage of the host names is a warning."""
    found = _Found()
    certs = _chain(chain_pem, found)
    key = _private_key(key_pem, found)
    leaf: LeafInfo | None = None
    if certs:
        _check_order(certs, found)
        for i, cert in enumerate(certs):
            _check_dates(cert, i, now, found)
        _check_strength(certs[0], found)
        leaf = _leaf_info(certs)
        found.warnings.extend(coverage_warnings(leaf.dns_names, hostnames))
        if key is not None and _spki(key.public_key()) != _spki(certs[0].public_key()):
            found.error(
                "key-mismatch",
                "the private key does not belong to the leaf certificate (the first one)",
                KEY,
            )
    encoded = b""
    if key is not None:
        encoded = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)
    return ChainReport(leaf, pem, encoded, tuple(found.errors), tuple(found.warnings))


def leaf_of(chain_pem: str) -> LeafInfo:
    """The leaf details of a stored (already validated) chain."""
    certs = [x509.load_pem_x509_certificate(b.encode()) for b in _pem_certificates(chain_pem)]
    return _leaf_info(certs)


def _pem_certificates(chain_pem: str) -> list[str]:
    end = "-----END CERTIFICATE-----"
    return [part + end for part in chain_pem.split(end) if "-----BEGIN" in part]


def _chain(text: str, found: _Found) -> list[x509.Certificate]:
    certs: list[x509.Certificate] = []
    for block in certificate_blocks(text):
        if isinstance(block, BlockError):
            found.error(block.type, f"certificateChainPem: {block.detail}", CHAIN)
            continue
        index, der = block
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError:
            found.error("malformed-certificate", f"block {index} is not a certificate", CHAIN)
    if len(certs) > MAX_CHAIN_CERTIFICATES:
        found.error(
            "chain-too-long", f"at most {MAX_CHAIN_CERTIFICATES} certificates in a chain", CHAIN
        )
    return certs if not found.errors else []


_PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
)


def _private_key(text: str, found: _Found) -> _PrivateKey | None:
    blocks = split_pem_blocks(text)
    if len(blocks) != 1 or not blocks[0].is_private_key or blocks[0].der is None:
        found.error(
            "malformed-private-key",
            "privateKeyPem must hold exactly one unencrypted PEM private key block",
            KEY,
        )
        return None
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # TypeError: an encrypted key (it would need a password). Nothing of it is echoed.
        found.error(
            "malformed-private-key",
            "privateKeyPem is not a readable unencrypted private key",
            KEY,
        )
        return None
    if not isinstance(key, _PrivateKey):
        found.error("unsupported-key", "the private key is not RSA, EC, Ed25519 or Ed448", KEY)
        return None
    return key


def _check_order(certs: Sequence[x509.Certificate], found: _Found) -> None:
    for i in range(len(certs) - 1):
        try:
            certs[i].verify_directly_issued_by(certs[i + 1])
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            found.error(
                "chain-order",
                f"certificate {i} is not issued by certificate {i + 1}: the chain must be the "
                "leaf first, each certificate followed by its issuer",
                CHAIN,
            )


def _check_dates(cert: x509.Certificate, index: int, now: datetime, found: _Found) -> None:
    where = "the leaf certificate" if index == 0 else f"chain certificate {index}"
    end = cert.not_valid_after_utc
    if end <= now:
        found.error("certificate-expired", f"{where} expired on {end.isoformat()}", CHAIN)
    elif cert.not_valid_before_utc > now:
        start = cert.not_valid_before_utc.isoformat()
        found.error("certificate-not-yet-valid", f"{where} is valid only from {start}", CHAIN)
    elif end <= now + EXPIRY_WARNING:
        found.warn(
            "certificate-expiring",
            f"{where} expires on {end.isoformat()}, within {EXPIRY_WARNING.days} days",
            CHAIN,
        )


def _check_strength(leaf: x509.Certificate, found: _Found) -> None:
    try:
        public = leaf.public_key()
    except (UnsupportedAlgorithm, ValueError):
        found.error("unsupported-key", "the leaf's key algorithm is not supported", CHAIN)
        return
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < MIN_RSA_BITS:
        found.error(
            "weak-key",
            f"RSA key of {public.key_size} bits; at least {MIN_RSA_BITS} required",
            KEY,
        )
    elif isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name not in ALLOWED_CURVES:
        found.error("unsupported-key", f"EC curve {public.curve.name} is not accepted", KEY)


def _spki(public: object) -> bytes:
    assert hasattr(public, "public_bytes")
    return bytes(
        public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _key_type(cert: x509.Certificate) -> str:
    public = cert.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        return f"RSA-{public.key_size}"
    if isinstance(public, ec.EllipticCurvePublicKey):
        return f"EC-{public.curve.name}"
    return type(public).__name__.removesuffix("PublicKey").upper()


def _leaf_info(certs: Sequence[x509.Certificate]) -> LeafInfo:
    leaf = certs[0]
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        dns = ()
    return LeafInfo(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        start_date=leaf.not_valid_before_utc,
        end_date=leaf.not_valid_after_utc,
        fingerprint=leaf.fingerprint(hashes.SHA256()).hex(),
        serial_number=format(leaf.serial_number, "x"),
        dns_names=dns,
        key_type=_key_type(leaf),
        chain_length=len(certs),
    )


_MODES = ("require", "request")
_FAILURE_ACTIONS = ("deny", "forward")
_HEADERS = ("xfcc", "rfc9440")
_OCSP_MODES = ("soft", "hard")
MAX_VERIFY_DEPTH = 10


def check_mutual_auth(auth: MutualAuth) -> None:
    """The binding's settings, by the rules the config file applies to its own (a 422 naming
    every field at fault)."""
    errors: list[FieldError] = []

    def bad(pointer: str, detail: str) -> None:
        errors.append(FieldError("invalid-binding", detail, pointer))

    if auth.mode not in _MODES:
        bad("/mode", "mode must be require or request")
    if auth.on_failure not in _FAILURE_ACTIONS:
        bad("/onFailure", "onFailure must be deny or forward")
    elif auth.on_failure == "forward" and auth.mode == "require":
        bad("/onFailure", 'onFailure "forward" needs mode "request" (require ends the handshake)')
    for i, header in enumerate(auth.identity_headers):
        if header not in _HEADERS:
            bad(f"/identityHeaders/{i}", "identityHeaders take xfcc and rfc9440")
    if len(set(auth.identity_headers)) != len(auth.identity_headers):
        bad("/identityHeaders", "identityHeaders lists a format twice")
    if not 1 <= auth.verify_depth <= MAX_VERIFY_DEPTH:
        bad("/verifyDepth", f"verifyDepth must be from 1 to {MAX_VERIFY_DEPTH}")
    if auth.ocsp.failure_mode not in _OCSP_MODES:
        bad("/ocsp/failureMode", "ocsp.failureMode must be soft or hard")
    if auth.ocsp.responder is not None:
        problem = url_problem(auth.ocsp.responder, "http", "https")
        if problem is not None:
            bad("/ocsp/responder", f"ocsp.responder {problem}")
    if errors:
        raise ValidationError("invalid-binding", errors[0].detail, tuple(errors))
