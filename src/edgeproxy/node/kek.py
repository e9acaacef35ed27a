"""`edgeproxy rotate-kek`: every private key the store holds sealed anew under the key-encryption
key the config names, read with the previous one (docs/security.md "Rotating the
key-encryption key"). One write transaction: all records move, or none."""

from __future__ import annotations

import os

from edgeproxy.cli.client import CliError
from edgeproxy.config.kek import load_key_ring
from edgeproxy.config.model import Config
from edgeproxy.domain.secrets import SecretError
from edgeproxy.store import open_store


async def reseal_all(config: Config, old: bytes) -> tuple[int, int]:
    """(records sealed anew, records already under the new key)."""
    current = load_key_ring(config.store, os.environ)
    if current is None:
        raise CliError(
            "the config names no key-encryption key ([store] key_encryption_key_file or "
            "EDGEPROXY_KEY_ENCRYPTION_KEY): that is the new key to seal under",
            exit_code=2,
        )
    ring = current.readable_also(old)
    store = open_store(
        config.store.url,
        connect_timeout=config.store.connect_timeout,
        statement_timeout=config.store.statement_timeout,
    )
    await store.open()
    resealed = kept = 0
    try:
        async with store.transaction(write=True) as tx:
            for cert in await tx.list_edge_certificates():
                if cert.sealed_key.key_id == ring.current_id:
                    kept += 1
                    continue
                try:
                    sealed = ring.reseal(cert.name, cert.sealed_key)
                except SecretError as error:
                    raise CliError(f"{error}; nothing was changed") from None
                await tx.reseal_edge_key(cert.name, sealed)
                resealed += 1
            if resealed:
                # Nodes read the new records (and their snapshots keep them); the contexts stay,
                # since a re-seal changes no certificate.
                await tx.bump_revision()
    finally:
        await store.close()
    return resealed, kept
