"""Queries of store-managed edge certificates, their bindings and the binding changes."""

from __future__ import annotations

from datetime import datetime

from edgeproxy.domain.edge_model import (
    BindingChange,
    ChangeType,
    EdgeBinding,
    EdgeCertificate,
    MutualAuth,
)
from edgeproxy.domain.errors import FieldError
from edgeproxy.domain.model import ActivationStatus, Network, Rollout
from edgeproxy.domain.secrets import Sealed
from edgeproxy.store import codec, edge_codec
from edgeproxy.store.rollout_queries import ROLLOUT_COLUMNS
from edgeproxy.store.tx_base import TxBase

# Every binding change read joins its rollout.
_CHANGES = (
    f"SELECT c.*, {ROLLOUT_COLUMNS} FROM binding_changes c "
    "LEFT JOIN rollouts r ON r.id = c.rollout_id"
)


class EdgeQueries(TxBase):
    # -- edge certificates ---------------------------------------------------------------------

    async def insert_edge_certificate(self, cert: EdgeCertificate) -> None:
        key_id, nonce, ciphertext = cert.sealed_key.to_text()
        await self._db.execute(
            "INSERT INTO edge_certificates (name, hostnames, origin, is_default, chain_pem, "
            "key_id, key_nonce, key_ciphertext, generation, warnings, created_by, created_at, "
            "alpn) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            cert.name,
            codec.dumps(list(cert.hostnames)),
            cert.origin,
            cert.default,
            cert.chain_pem,
            key_id,
            nonce,
            ciphertext,
            cert.generation,
            codec.field_errors_to_json(cert.warnings),
            cert.created_by,
            cert.created_at,
            codec.dumps(list(cert.alpn)),
        )

    async def get_edge_certificate(self, name: str) -> EdgeCertificate | None:
        row = await self._db.fetchrow("SELECT * FROM edge_certificates WHERE name = $1", name)
        return edge_codec.edge_certificate_from_row(row) if row else None

    async def list_edge_certificates(self) -> list[EdgeCertificate]:
        rows = await self._db.fetch("SELECT * FROM edge_certificates ORDER BY name")
        return [edge_codec.edge_certificate_from_row(r) for r in rows]

    async def update_edge_certificate(
        self,
        name: str,
        *,
        hostnames: tuple[str, ...],
        origin: str,
        default: bool,
        alpn: tuple[str, ...],
        warnings: tuple[FieldError, ...],
        by: str,
        at: datetime,
    ) -> None:
        await self._db.execute(
            "UPDATE edge_certificates SET hostnames = $1, origin = $2, is_default = $3, "
            "alpn = $4, warnings = $5, modified_by = $6, modified_at = $7 WHERE name = $8",
            codec.dumps(list(hostnames)),
            origin,
            default,
            codec.dumps(list(alpn)),
            codec.field_errors_to_json(warnings),
            by,
            at,
            name,
        )

    async def rotate_edge_certificate(
        self,
        name: str,
        *,
        chain_pem: str,
        sealed_key: Sealed,
        warnings: tuple[FieldError, ...],
        by: str,
        at: datetime,
    ) -> None:
        key_id, nonce, ciphertext = sealed_key.to_text()
        await self._db.execute(
            "UPDATE edge_certificates SET chain_pem = $1, key_id = $2, key_nonce = $3, "
            "key_ciphertext = $4, generation = generation + 1, warnings = $5, modified_by = $6, "
            "modified_at = $7, rotated_at = $7 WHERE name = $8",
            chain_pem,
            key_id,
            nonce,
            ciphertext,
            codec.field_errors_to_json(warnings),
            by,
            at,
            name,
        )

    async def reseal_edge_key(self, name: str, sealed_key: Sealed) -> None:
        """KEK rotation: the same key sealed anew; the generation stays (nothing to rebuild)."""
        key_id, nonce, ciphertext = sealed_key.to_text()
        await self._db.execute(
            "UPDATE edge_certificates SET key_id = $1, key_nonce = $2, key_ciphertext = $3 "
            "WHERE name = $4",
            key_id,
            nonce,
            ciphertext,
            name,
        )

    async def delete_edge_certificate(self, name: str) -> None:
        await self._db.execute("DELETE FROM edge_certificates WHERE name = $1", name)

    # -- bindings ------------------------------------------------------------------------------

    async def put_binding(
        self, name: str, network: Network, auth: MutualAuth, by: str, at: datetime
    ) -> None:
        await self._db.execute(
            "INSERT INTO edge_bindings (edge_certificate, network, ca_set_name, settings, "
            "modified_by, modified_at) VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (edge_certificate, network) DO UPDATE SET "
            "ca_set_name = excluded.ca_set_name, settings = excluded.settings, "
            "modified_by = excluded.modified_by, modified_at = excluded.modified_at",
            name,
            network.value,
            auth.ca_set,
            edge_codec.auth_to_json(auth),
            by,
            at,
        )

    async def get_binding(self, name: str, network: Network) -> EdgeBinding | None:
        row = await self._db.fetchrow(
            "SELECT * FROM edge_bindings WHERE edge_certificate = $1 AND network = $2",
            name,
            network.value,
        )
        return edge_codec.binding_from_row(row) if row else None

    async def list_bindings(
        self, *, network: Network | None = None, ca_set: str | None = None
    ) -> list[EdgeBinding]:
        rows = await self._db.fetch(
            "SELECT * FROM edge_bindings WHERE (network = $1 OR $2) AND (ca_set_name = $3 OR $4) "
            "ORDER BY edge_certificate, network",
            network.value if network else "",
            network is None,
            ca_set or "",
            ca_set is None,
        )
        return [edge_codec.binding_from_row(r) for r in rows]

    async def delete_binding(self, name: str, network: Network) -> None:
        await self._db.execute(
            "DELETE FROM edge_bindings WHERE edge_certificate = $1 AND network = $2",
            name,
            network.value,
        )

    # -- binding changes -----------------------------------------------------------------------

    async def insert_binding_change(
        self,
        *,
        name: str,
        network: Network,
        type: ChangeType,
        ca_set: str | None,
        previous: MutualAuth | None,
        rollout: Rollout,
        by: str,
        at: datetime,
    ) -> BindingChange:
        change_id = await self._db.fetchval(
            "INSERT INTO binding_changes (edge_certificate, network, type, ca_set_name, previous, "
            "status, revision, created_by, created_at, completed_at, rollout_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            name,
            network.value,
            type.value,
            ca_set,
            edge_codec.previous_to_json(previous),
            rollout.status.value,
            rollout.revision,
            by,
            at,
            rollout.completed_at,
            rollout.id,
        )
        change = await self.get_binding_change(int(change_id))
        assert change is not None
        return change

    async def get_binding_change(self, change_id: int) -> BindingChange | None:
        row = await self._db.fetchrow(f"{_CHANGES} WHERE c.id = $1", change_id)
        return edge_codec.change_from_row(row) if row else None

    async def binding_change_of_rollout(self, rollout_id: int) -> BindingChange | None:
        row = await self._db.fetchrow(f"{_CHANGES} WHERE c.rollout_id = $1", rollout_id)
        return edge_codec.change_from_row(row) if row else None

    async def latest_binding_change(self, name: str, network: Network) -> BindingChange | None:
        row = await self._db.fetchrow(
            f"{_CHANGES} WHERE c.edge_certificate = $1 AND c.network = $2 "
            "ORDER BY c.id DESC LIMIT 1",
            name,
            network.value,
        )
        return edge_codec.change_from_row(row) if row else None

    async def update_binding_change(
        self,
        change_id: int,
        *,
        status: ActivationStatus,
        at: datetime | None,
        failure_reason: str | None,
    ) -> None:
        await self._db.execute(
            "UPDATE binding_changes SET status = $1, completed_at = $2, failure_reason = $3 "
            "WHERE id = $4",
            status.value,
            at,
            failure_reason,
            change_id,
        )
