"""`edgeproxy rotate-kek`: every stored private key sealed anew under the configured key."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edgeproxy.domain.edge_model import EdgeCertificate
from edgeproxy.domain.secrets import KeyRing, generate_kek, kek_id, parse_kek
from edgeproxy.node.main import main
from edgeproxy.store import open_store


def _key_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def _config(tmp_path: Path, kek: Path) -> Path:
    config = tmp_path / "node.toml"
    config.write_text(
        '[node]\nname = "n1"\nnetwork = "STAGING"\nroles = ["admin"]\n'
        f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n'
        f'key_encryption_key_file = "{kek}"\n'
        "[admin]\ntokens = []\n"
    )
    return config


async def _records(url: str) -> list[EdgeCertificate]:
    store = open_store(url)
    await store.open()
    try:
        async with store.transaction(write=False) as tx:
            return list(await tx.list_edge_certificates())
    finally:
        await store.close()


def test_rotation_reseals_every_record_under_the_new_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_text, new_text = generate_kek(), generate_kek()
    old, new = parse_kek(old_text), parse_kek(new_text)
    old_file = _key_file(tmp_path / "old.b64", old_text)
    config = _config(tmp_path, _key_file(tmp_path / "new.b64", new_text))
    url = f"sqlite:///{tmp_path / 'store.db'}"

    async def seed() -> None:
        store = open_store(url)
        await store.open()
        cert = EdgeCertificate(
            name="shop",
            hostnames=("shop.example.com",),
            origin="http://127.0.0.1:8080",
            default=False,
            chain_pem="",
            sealed_key=KeyRing(old).seal("shop", b"the private key"),
            generation=1,
            warnings=(),
            created_by="alice",
            created_at=datetime.now(UTC),
        )
        async with store.transaction(write=True) as tx:
            await tx.insert_edge_certificate(cert)
        await store.close()

    asyncio.run(seed())
    assert main(["rotate-kek", "-c", str(config), "--old-key-file", str(old_file)]) == 0
    assert "1 private key(s) sealed anew" in capsys.readouterr().out
    (record,) = asyncio.run(_records(url))
    assert record.sealed_key.key_id == kek_id(new)
    assert KeyRing(new).open("shop", record.sealed_key) == b"the private key"
    # Again: nothing left to do.
    assert main(["rotate-kek", "-c", str(config), "--old-key-file", str(old_file)]) == 0
    assert (
        "0 private key(s) sealed anew under the configured key; 1 already were"
        in capsys.readouterr().out
    )


def test_a_world_readable_key_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loose = _key_file(tmp_path / "loose.b64", generate_kek(), 0o644)
    config = _config(tmp_path, _key_file(tmp_path / "new.b64", generate_kek()))
    assert main(["rotate-kek", "-c", str(config), "--old-key-file", str(loose)]) == 2
    assert "chmod 600" in capsys.readouterr().err
