"""Queries of the certificates blocked per CA set."""

from __future__ import annotations

from datetime import datetime

from edgeproxy.domain.blocks import BlockRequest
from edgeproxy.domain.model import BlockedCertificate
from edgeproxy.store import codec
from edgeproxy.store.tx_base import TxBase


class BlockQueries(TxBase):
    async def insert_block(
        self, set_id: int, block: BlockRequest, by: str, at: datetime
    ) -> BlockedCertificate:
        block_id = await self._db.fetchval(
            "INSERT INTO blocked_certificates (ca_set_id, fingerprint, issuer, serial_number, "
            "reason, expires_at, created_by, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            set_id,
            block.fingerprint,
            block.issuer,
            block.serial_number,
            block.reason,
            block.expires_at,
            by,
            at,
        )
        found = await self.get_block(set_id, int(block_id))
        assert found is not None
        return found

    async def list_blocks(self, set_id: int) -> list[BlockedCertificate]:
        rows = await self._db.fetch(
            "SELECT * FROM blocked_certificates WHERE ca_set_id = $1 ORDER BY id", set_id
        )
        return [codec.block_from_row(r) for r in rows]

    async def get_block(self, set_id: int, block_id: int) -> BlockedCertificate | None:
        row = await self._db.fetchrow(
            "SELECT * FROM blocked_certificates WHERE ca_set_id = $1 AND id = $2",
            set_id,
            block_id,
        )
        return codec.block_from_row(row) if row else None

    async def delete_block(self, set_id: int, block_id: int) -> None:
        """A hard delete: the UNBLOCK_CERTIFICATE activity is the record that it existed."""
        await self._db.execute(
            "DELETE FROM blocked_certificates WHERE ca_set_id = $1 AND id = $2", set_id, block_id
        )
