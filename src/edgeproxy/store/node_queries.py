"""Queries of the fleet's node registrations."""

from __future__ import annotations

from edgeproxy.domain.model import Node
from edgeproxy.store import codec
from edgeproxy.store.tx_base import TxBase


class NodeQueries(TxBase):
    # -- nodes ---------------------------------------------------------------------------------

    async def upsert_node(self, node: Node) -> None:
        await self._db.execute(
            "INSERT INTO nodes (name, network, roles, started_at, last_seen, bindings, "
            "applied_revision, applied_versions, apply_errors, applied_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
            "ON CONFLICT (name) DO UPDATE SET network = excluded.network, "
            "roles = excluded.roles, started_at = excluded.started_at, "
            "last_seen = excluded.last_seen, bindings = excluded.bindings, "
            "applied_revision = excluded.applied_revision, "
            "applied_versions = excluded.applied_versions, "
            "apply_errors = excluded.apply_errors, applied_at = excluded.applied_at",
            node.name,
            node.network.value,
            codec.dumps(list(node.roles)),
            node.started_at,
            node.last_seen,
            codec.bindings_to_json(node.bindings),
            node.applied_revision,
            codec.dumps(node.applied_versions),
            codec.dumps(node.apply_errors),
            node.applied_at,
        )

    async def list_nodes(self) -> list[Node]:
        rows = await self._db.fetch("SELECT * FROM nodes ORDER BY name")
        return [codec.node_from_row(r) for r in rows]

    async def delete_node(self, name: str) -> None:
        await self._db.execute("DELETE FROM nodes WHERE name = $1", name)
