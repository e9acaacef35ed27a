"""Envelope encryption of the secrets the store holds (the private keys of edge certificates).

AES-256-GCM with the key-encryption key (KEK) of the node's config: a random 96-bit nonce per
record, the KEK's id stored with the record (so the KEK can rotate: records name the key that
sealed them), and the record's name as associated data (a sealed key copied onto another record
does not open there). Pure: bytes in, bytes out; no text here ever holds a plaintext secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEK_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits: the GCM nonce size NIST SP 800-38D recommends
_PURPOSE = b"edgeproxy edge-certificate private key\0"


class SecretError(Exception):
    """A sealed record that cannot be opened: unknown key id, wrong key, or altered data.
    Its message names the key id and the record, never any secret."""


def parse_kek(text: str) -> bytes:
    """A KEK from its text form: base64 of exactly 32 bytes (surrounding whitespace ignored)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not base64 (expected 32 random bytes, base64-encoded)") from None
    if len(raw) != KEK_BYTES:
        raise ValueError(f"decodes to {len(raw)} bytes; a key-encryption key is {KEK_BYTES}")
    return raw


def generate_kek() -> str:
    """A new random KEK in its text form (base64, with a final newline for files)."""
    return base64.b64encode(os.urandom(KEK_BYTES)).decode() + "\n"


def kek_id(key: bytes) -> str:
    """A KEK's public id: 16 hex digits of a hash of it (not enough to find the key, enough to
    tell keys apart)."""
    return hashlib.sha256(b"edgeproxy kek id\0" + key).hexdigest()[:16]


@dataclass(frozen=True)
class Sealed:
    """One encrypted secret as stored: which KEK sealed it, the nonce and the ciphertext+tag."""

    key_id: str
    nonce: bytes
    ciphertext: bytes = field(repr=False)

    def to_text(self) -> tuple[str, str, str]:
        return (
            self.key_id,
            base64.b64encode(self.nonce).decode(),
            base64.b64encode(self.ciphertext).decode(),
        )

    @classmethod
    def from_text(cls, key_id: str, nonce: str, ciphertext: str) -> Sealed:
        return cls(key_id, base64.b64decode(nonce), base64.b64decode(ciphertext))


def _associated_data(name: str) -> bytes:
    return _PURPOSE + name.encode()


class KeyRing:
    """The KEK that seals (`current`) and every KEK that may open (`current` and `readable`)."""

    __slots__ = ("_keys", "current_id")

    def __init__(self, current: bytes, readable: tuple[bytes, ...] = ()) -> None:
        for key in (current, *readable):
            if len(key) != KEK_BYTES:
                raise ValueError(f"a key-encryption key is {KEK_BYTES} bytes")
        self.current_id = kek_id(current)
        self._keys = {kek_id(k): k for k in (*readable, current)}

    def __repr__(self) -> str:
        return f"KeyRing(current_id={self.current_id!r}, ids={sorted(self._keys)!r})"

    def seal(self, name: str, plaintext: bytes) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        aead = AESGCM(self._keys[self.current_id])
        return Sealed(
            self.current_id, nonce, aead.encrypt(nonce, plaintext, _associated_data(name))
        )

    def open(self, name: str, sealed: Sealed) -> bytes:
        key = self._keys.get(sealed.key_id)
        if key is None:
            raise SecretError(
                f"the private key of {name!r} was sealed with key-encryption key "
                f"{sealed.key_id}, which this node does not hold (it holds "
                f"{', '.join(sorted(self._keys))})"
            )
        try:
            return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, _associated_data(name))
        except InvalidTag:
            raise SecretError(
                f"the private key of {name!r} does not decrypt under key {sealed.key_id}: "
                "wrong key or altered record"
            ) from None

    def readable_also(self, old: bytes) -> KeyRing:
        """This ring, able to open records sealed under `old` too (KEK rotation)."""
        ring = KeyRing.__new__(KeyRing)
        ring.current_id = self.current_id
        ring._keys = {kek_id(old): old, **self._keys}
        return ring

    def reseal(self, name: str, sealed: Sealed) -> Sealed:
        """The same secret sealed under the current KEK (KEK rotation)."""
        return self.seal(name, self.open(name, sealed))
