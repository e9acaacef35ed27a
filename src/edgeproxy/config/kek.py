"""The key-encryption key (docs/security.md "Keys at rest"): read from the file
`[store] key_encryption_key_file` names or, without that key, from the environment variable
EDGEPROXY_KEY_ENCRYPTION_KEY; 32 random bytes, base64. Errors name the key or the variable,
never the value."""

from __future__ import annotations

import stat
from collections.abc import Mapping
from pathlib import Path

from edgeproxy.config.model import ConfigError, StoreConfig
from edgeproxy.domain.secrets import KeyRing, parse_kek

KEK_ENV = "EDGEPROXY_KEY_ENCRYPTION_KEY"
KEK_FILE_KEY = "key_encryption_key_file"


def read_kek_file(path: Path, key: str) -> bytes:
    """A KEK file: it must be readable by its owner alone (mode 0600 or stricter)."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not ASCII text"
        raise ConfigError(f"{key}: cannot read {path}: {reason}", key=key) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{key}: {path} is readable by group or others; chmod 600 it", key=key)
    try:
        return parse_kek(text)
    except ValueError as error:
        raise ConfigError(f"{key}: {path} {error}", key=key) from None


def load_key_ring(store: StoreConfig, environ: Mapping[str, str]) -> KeyRing | None:
    """The node's key ring, or None when neither the file nor the variable gives a key (the
    node then cannot seal or open store-managed private keys; it serves its file's
    certificates only)."""
    if store.key_encryption_key_file is not None:
        return KeyRing(read_kek_file(store.key_encryption_key_file, f"store.{KEK_FILE_KEY}"))
    text = environ.get(KEK_ENV)
    if not text:
        return None
    try:
        return KeyRing(parse_kek(text))
    except ValueError as error:
        raise ConfigError(f"environment variable {KEK_ENV} {error}", key=KEK_ENV) from None
