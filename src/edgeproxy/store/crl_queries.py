"""Queries of the CRLs uploaded per CA set."""

from __future__ import annotations

from datetime import datetime

from edgeproxy.domain.crls import CrlRecord
from edgeproxy.domain.model import Crl
from edgeproxy.store import codec
from edgeproxy.store.tx_base import TxBase


class CrlQueries(TxBase):
    # -- CRLs ----------------------------------------------------------------------------------

    async def insert_crl(self, set_id: int, record: CrlRecord, by: str, at: datetime) -> Crl:
        crl_id = await self._db.fetchval(
            "INSERT INTO crls (ca_set_id, issuer, issuer_fingerprint, this_update, next_update, "
            "crl_number, revoked_count, fingerprint, crl_pem, description, created_by, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            set_id,
            record.issuer,
            record.issuer_fingerprint,
            record.this_update,
            record.next_update,
            str(record.crl_number) if record.crl_number is not None else None,
            record.revoked_count,
            record.fingerprint,
            record.crl_pem,
            record.description,
            by,
            at,
        )
        crl = await self.get_crl(set_id, int(crl_id))
        assert crl is not None
        return crl

    async def list_crls(self, set_id: int) -> list[Crl]:
        rows = await self._db.fetch("SELECT * FROM crls WHERE ca_set_id = $1 ORDER BY id", set_id)
        return [codec.crl_from_row(r) for r in rows]

    async def get_crl(self, set_id: int, crl_id: int) -> Crl | None:
        row = await self._db.fetchrow(
            "SELECT * FROM crls WHERE ca_set_id = $1 AND id = $2", set_id, crl_id
        )
        return codec.crl_from_row(row) if row else None

    async def find_crl(self, set_id: int, fingerprint: str) -> Crl | None:
        """The set's CRL with this SHA-256 fingerprint, if it was uploaded already."""
        row = await self._db.fetchrow(
            "SELECT * FROM crls WHERE ca_set_id = $1 AND fingerprint = $2", set_id, fingerprint
        )
        return codec.crl_from_row(row) if row else None

    async def delete_crl(self, set_id: int, crl_id: int) -> None:
        """A hard delete: the DELETE_CRL activity is the record that it existed."""
        await self._db.execute("DELETE FROM crls WHERE ca_set_id = $1 AND id = $2", set_id, crl_id)
