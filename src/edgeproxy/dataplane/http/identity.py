"""The client identity headers the edge asserts to the origin (docs/dataplane.md), encoded once per
connection.

* `xfcc`: Envoy's X-Forwarded-Client-Cert element, `Hash=..;Cert="..";Subject="..";URI=..;DNS=..`
  (values that contain `,` `;` `=` or `"` are quoted, `"` and `\\` escaped inside quotes).
* `rfc9440`: `Client-Cert` and `Client-Cert-Chain` as RFC 8941 byte sequences (`:base64:`). The
  chain field is the chain *used to validate* the client certificate (RFC 9440 §2.3), as OpenSSL
  built it: every issuer after the leaf up to the trust anchor from the CA set, included so the
  origin learns which of the set's CAs vouched. Never what the client sent: a fake issuer or junk
  certificates after its leaf reach nobody. Omitted when empty (the leaf is itself an anchor) or
  unknown (a resumed session whose chain is no longer remembered, tls/contexts.py `ChainBook`).
* always `X-Client-Cert-Verify: SUCCESS | FAILED:<reason> | NONE`.

Certificate details are asserted only for a certificate that verified: under `on_failure =
"forward"` an unverified certificate says nothing about who the client is, so the origin gets the
verify status alone (fail closed).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from edgeproxy.authz.peer import Peer, peer_from_leaf
from edgeproxy.tls.session import TlsSession, VerifyResult

_NEEDS_QUOTES = re.compile(r'[,;="\s]')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """What the access log and the origin learn about a connection's client certificate."""

    subject: str | None  # RFC 4514
    serial: str | None  # lower-case hex
    fingerprint_sha256: str | None  # lower-case hex of the leaf DER
    header_block: bytes  # ready-made "Name: value\r\n" lines for the origin request head
    # What the authorization matchers read (authz/peer.py): only for a certificate that
    # verified, on a binding with authorization rules.
    peer: Peer | None = None


def _clean(value: str) -> str:
    """No control character reaches a header line (a CR/LF in a DN must not split the head)."""
    return _CONTROL.sub(lambda m: f"\\{ord(m.group()):02x}", value)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _xfcc_value(value: str) -> str:
    value = _clean(value)
    return _quoted(value) if _NEEDS_QUOTES.search(value) else value


def xfcc_element(leaf: x509.Certificate, leaf_der: bytes) -> str:
    """One X-Forwarded-Client-Cert element in Envoy's format."""
    pem = leaf.public_bytes(Encoding.PEM).decode("ascii")
    parts = [
        "Hash=" + hashlib.sha256(leaf_der).hexdigest(),
        "Cert=" + _quoted(quote(pem, safe="")),
        "Subject=" + _quoted(_clean(leaf.subject.rfc4514_string())),
    ]
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        parts += [
            "URI=" + _xfcc_value(u) for u in san.get_values_for_type(x509.UniformResourceIdentifier)
        ]
        parts += ["DNS=" + _xfcc_value(d) for d in san.get_values_for_type(x509.DNSName)]
    return ";".join(parts)


def _byte_sequence(der: bytes) -> str:
    return ":" + base64.b64encode(der).decode("ascii") + ":"


def rfc9440_fields(leaf_der: bytes, verified_der: tuple[bytes, ...]) -> list[tuple[str, str]]:
    """Client-Cert (the leaf) and, from the verified chain (leaf first), Client-Cert-Chain."""
    fields = [("Client-Cert", _byte_sequence(leaf_der))]
    if len(verified_der) > 1:
        chain = ", ".join(_byte_sequence(d) for d in verified_der[1:])
        fields.append(("Client-Cert-Chain", chain))
    return fields


def encode_identity(session: TlsSession) -> ClientIdentity:
    chain = session.peer_chain_der
    fields: list[tuple[str, str]] = []
    subject = serial = fingerprint = None
    peer: Peer | None = None
    if chain:
        fingerprint = hashlib.sha256(chain[0]).hexdigest()
        try:
            leaf = x509.load_der_x509_certificate(chain[0])
        except ValueError:
            leaf = None
        if leaf is not None:
            subject = _clean(leaf.subject.rfc4514_string())
            serial = format(leaf.serial_number, "x")
            if session.verify_result is VerifyResult.SUCCESS:
                if session.edge.mutual_authentication.authorization is not None:
                    peer = peer_from_leaf(leaf, chain[0])
                formats = session.edge.mutual_authentication.identity_headers
                if "xfcc" in formats:
                    fields.append(("X-Forwarded-Client-Cert", xfcc_element(leaf, chain[0])))
                if "rfc9440" in formats:
                    fields += rfc9440_fields(chain[0], session.verified_chain_der)
    fields.append(("X-Client-Cert-Verify", session.verify_header_value))
    block = "".join(f"{name}: {value}\r\n" for name, value in fields).encode()
    return ClientIdentity(subject, serial, fingerprint, block, peer)


class IdentityCache:
    """Bounded LRU of encoded identities, shared by a listener's connections.

    Keyed by everything the encoding reads, so one client reconnecting (or many connections of
    one service) costs one X.509 parse, not one per connection.
    """

    __slots__ = ("_entries", "_size")

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[object, ...], ClientIdentity] = OrderedDict()

    def get(self, session: TlsSession) -> ClientIdentity:
        # The leaf and the verified chain: what the client sent after its leaf changes nothing.
        key = (
            session.peer_chain_der[:1],
            session.verified_chain_der,
            session.verify_result,
            session.verify_reason,
            session.edge.mutual_authentication.identity_headers,
            session.edge.mutual_authentication.authorization is not None,
        )
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry
        entry = encode_identity(session)
        self._entries[key] = entry
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return entry
