"""Every query the truststore runs, written once for both back ends (`$1` parameters)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from edgeproxy.domain.errors import FieldError
from edgeproxy.domain.model import (
    CaSet,
    CaSetStatus,
    Certificate,
    Network,
    Version,
)
from edgeproxy.store import codec
from edgeproxy.store.activation_queries import ActivationQueries
from edgeproxy.store.block_queries import BlockQueries
from edgeproxy.store.client_queries import ClientQueries
from edgeproxy.store.crl_queries import CrlQueries
from edgeproxy.store.edge_queries import EdgeQueries
from edgeproxy.store.node_queries import NodeQueries
from edgeproxy.store.rollout_queries import RolloutQueries

# A constant column list, interpolated into SELECTs; values always go through parameters.
_CA_SET_COLUMNS = """s.id, s.name, s.description, s.status, s.created_by, s.created_at,
    s.staging_version, s.production_version, s.deleted_by, s.delete_requested_at,
    s.deleted_at, s.delete_failure,
    (SELECT max(v.version) FROM versions v WHERE v.ca_set_id = s.id) AS latest_version"""


@dataclass(frozen=True)
class VersionRecord:
    """A version's stored content, as the service hands it to the store."""

    description: str | None
    allow_insecure_sha1: bool
    require_root_certificate: bool
    certificates: tuple[Certificate, ...]
    warnings: tuple[FieldError, ...]

    @property
    def fingerprints(self) -> str:
        return ",".join(sorted(c.fingerprint for c in self.certificates))


def _ca_set(row: codec.Row) -> CaSet:
    return codec.ca_set_from_row(row, row["latest_version"])


class Tx(
    ActivationQueries,
    RolloutQueries,
    NodeQueries,
    CrlQueries,
    BlockQueries,
    EdgeQueries,
    ClientQueries,
):
    """One transaction's view of the store: every query, grouped by concern into mixins."""

    # -- revision ------------------------------------------------------------------------------

    async def revision(self) -> int:
        return int(await self._db.fetchval("SELECT revision FROM meta WHERE id = 1"))

    async def bump_revision(self) -> int:
        """Every truststore mutation moves the revision; nodes watch it to reload."""
        revision = int(
            await self._db.fetchval(
                "UPDATE meta SET revision = revision + 1 WHERE id = 1 RETURNING revision"
            )
        )
        await self._db.notify(revision)
        return revision

    # -- CA sets -------------------------------------------------------------------------------

    async def insert_ca_set(
        self, name: str, description: str | None, by: str, at: datetime
    ) -> CaSet:
        set_id = await self._db.fetchval(
            "INSERT INTO ca_sets (name, description, status, created_by, created_at) "
            "VALUES ($1, $2, $3, $4, $5) RETURNING id",
            name,
            description,
            CaSetStatus.NOT_DELETED.value,
            by,
            at,
        )
        ca_set = await self.get_ca_set(int(set_id))
        assert ca_set is not None
        return ca_set

    async def get_ca_set(self, set_id: int) -> CaSet | None:
        row = await self._db.fetchrow(
            f"SELECT {_CA_SET_COLUMNS} FROM ca_sets s WHERE s.id = $1", set_id
        )
        return _ca_set(row) if row else None

    async def find_live_ca_set(self, name: str) -> CaSet | None:
        """The set of that name that is not deleted (names are unique among those)."""
        row = await self._db.fetchrow(
            f"SELECT {_CA_SET_COLUMNS} FROM ca_sets s WHERE s.name = $1 AND s.status <> $2",
            name,
            CaSetStatus.DELETED.value,
        )
        return _ca_set(row) if row else None

    async def list_ca_sets(self, *, include_deleted: bool = False) -> list[CaSet]:
        rows = await self._db.fetch(
            f"SELECT {_CA_SET_COLUMNS} FROM ca_sets s WHERE s.status <> $1 OR $2 ORDER BY s.id",
            CaSetStatus.DELETED.value,
            include_deleted,
        )
        return [_ca_set(r) for r in rows]

    async def count_live_ca_sets(self) -> int:
        return int(
            await self._db.fetchval(
                "SELECT count(*) FROM ca_sets WHERE status <> $1", CaSetStatus.DELETED.value
            )
        )

    async def set_active_version(self, set_id: int, network: Network, version: int | None) -> None:
        column = "staging_version" if network is Network.STAGING else "production_version"
        await self._db.execute(f"UPDATE ca_sets SET {column} = $1 WHERE id = $2", version, set_id)

    async def request_delete(self, set_id: int, by: str, at: datetime) -> None:
        await self._db.execute(
            "UPDATE ca_sets SET status = $1, deleted_by = $2, delete_requested_at = $3, "
            "deleted_at = NULL, delete_failure = NULL WHERE id = $4",
            CaSetStatus.DELETING.value,
            by,
            at,
            set_id,
        )

    async def finish_delete(self, set_id: int, at: datetime, failure: str | None) -> None:
        """Complete a pending deletion, or roll the set back to live with the reason."""
        status = CaSetStatus.NOT_DELETED if failure else CaSetStatus.DELETED
        await self._db.execute(
            "UPDATE ca_sets SET status = $1, deleted_at = $2, delete_failure = $3 WHERE id = $4",
            status.value,
            at,
            failure,
            set_id,
        )

    # -- versions ------------------------------------------------------------------------------

    async def next_version_number(self, set_id: int) -> int:
        """Version numbers are never reused, even after a version is deleted."""
        return int(
            await self._db.fetchval(
                "UPDATE ca_sets SET last_version = last_version + 1 WHERE id = $1 "
                "RETURNING last_version",
                set_id,
            )
        )

    async def insert_version(
        self, set_id: int, number: int, record: VersionRecord, by: str, at: datetime
    ) -> Version:
        await self._db.execute(
            "INSERT INTO versions (ca_set_id, version, description, allow_insecure_sha1, "
            "require_root_certificate, certificates, fingerprints, warnings, created_by, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            set_id,
            number,
            record.description,
            record.allow_insecure_sha1,
            record.require_root_certificate,
            codec.dumps([codec.certificate_to_json(c) for c in record.certificates]),
            record.fingerprints,
            codec.field_errors_to_json(record.warnings),
            by,
            at,
        )
        version = await self.get_version(set_id, number)
        assert version is not None
        return version

    async def update_version(
        self, set_id: int, number: int, record: VersionRecord, by: str, at: datetime
    ) -> Version:
        await self._db.execute(
            "UPDATE versions SET description = $1, allow_insecure_sha1 = $2, "
            "require_root_certificate = $3, certificates = $4, fingerprints = $5, warnings = $6, "
            "modified_by = $7, modified_at = $8 WHERE ca_set_id = $9 AND version = $10",
            record.description,
            record.allow_insecure_sha1,
            record.require_root_certificate,
            codec.dumps([codec.certificate_to_json(c) for c in record.certificates]),
            record.fingerprints,
            codec.field_errors_to_json(record.warnings),
            by,
            at,
            set_id,
            number,
        )
        version = await self.get_version(set_id, number)
        assert version is not None
        return version

    async def get_version(self, set_id: int, number: int) -> Version | None:
        row = await self._db.fetchrow(
            "SELECT * FROM versions WHERE ca_set_id = $1 AND version = $2", set_id, number
        )
        return codec.version_from_row(row) if row else None

    async def list_versions(self, set_id: int) -> list[Version]:
        rows = await self._db.fetch(
            "SELECT * FROM versions WHERE ca_set_id = $1 ORDER BY version", set_id
        )
        return [codec.version_from_row(r) for r in rows]

    async def count_versions(self, set_id: int) -> int:
        return int(
            await self._db.fetchval("SELECT count(*) FROM versions WHERE ca_set_id = $1", set_id)
        )

    async def find_version_with_fingerprints(
        self, set_id: int, record: VersionRecord, *, excluding: int | None
    ) -> int | None:
        """The number of another version of the set holding exactly these certificates."""
        value = await self._db.fetchval(
            "SELECT min(version) FROM versions WHERE ca_set_id = $1 AND fingerprints = $2 "
            "AND version <> $3",
            set_id,
            record.fingerprints,
            excluding if excluding is not None else -1,
        )
        return int(value) if value is not None else None

    async def delete_version(self, set_id: int, number: int) -> None:
        await self._db.execute(
            "DELETE FROM versions WHERE ca_set_id = $1 AND version = $2", set_id, number
        )

    async def lock_version(self, set_id: int, number: int, at: datetime) -> None:
        """Freeze a version at its first activation; later activations keep the first time."""
        await self._db.execute(
            "UPDATE versions SET first_activated_at = $1 "
            "WHERE ca_set_id = $2 AND version = $3 AND first_activated_at IS NULL",
            at,
            set_id,
            number,
        )
