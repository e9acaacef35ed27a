"""Queries of the client records the edge nodes flush (docs/management.md "Safe trust changes").

Telemetry, like node reports: none of them moves the store revision.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from edgeproxy.domain.clients import ClientObservation, chain_from_text, chain_to_text
from edgeproxy.domain.model import Network
from edgeproxy.store import codec
from edgeproxy.store.tx_base import TxBase


def _record(row: codec.Row) -> ClientObservation:
    return ClientObservation(
        network=Network(row["network"]),
        edge_certificate=row["edge_certificate"],
        ca_set=row["ca_set"],
        node=row["node"],
        fingerprint=row["fingerprint"],
        subject=row["subject"],
        issuer=row["issuer"],
        sans=tuple(json.loads(row["sans"])),
        chain_der=chain_from_text(row["chain"]),
        first_seen=codec.required_ts(row["first_seen"]),
        last_seen=codec.required_ts(row["last_seen"]),
        handshakes=int(row["handshakes"]),
        requests=int(row["requests"]),
        last_outcome=row["last_outcome"],
    )


class ClientQueries(TxBase):
    # -- client records ------------------------------------------------------------------------

    async def add_client_records(self, records: Sequence[ClientObservation]) -> None:
        """Add a batch: counts add up, first_seen stays the first, the rest is the newest."""
        for r in records:
            await self._db.execute(
                "INSERT INTO client_records (network, edge_certificate, fingerprint, node, "
                "ca_set, subject, issuer, sans, chain, first_seen, last_seen, handshakes, "
                "requests, last_outcome) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
                "ON CONFLICT (network, edge_certificate, fingerprint, node) DO UPDATE SET "
                "ca_set = excluded.ca_set, chain = excluded.chain, "
                "last_seen = excluded.last_seen, last_outcome = excluded.last_outcome, "
                "handshakes = client_records.handshakes + excluded.handshakes, "
                "requests = client_records.requests + excluded.requests",
                r.network.value,
                r.edge_certificate,
                r.fingerprint,
                r.node,
                r.ca_set,
                r.subject,
                r.issuer,
                codec.dumps(list(r.sans)),
                chain_to_text(r.chain_der),
                r.first_seen,
                r.last_seen,
                r.handshakes,
                r.requests,
                r.last_outcome,
            )

    async def trim_client_records(self, node: str, edge_certificate: str, keep: int) -> None:
        """Keep a node's `keep` most recently seen clients of one edge certificate."""
        await self._db.execute(
            "DELETE FROM client_records WHERE node = $1 AND edge_certificate = $2 "
            "AND fingerprint NOT IN (SELECT fingerprint FROM client_records "
            "WHERE node = $1 AND edge_certificate = $2 "
            "ORDER BY last_seen DESC, fingerprint LIMIT $3)",
            node,
            edge_certificate,
            keep,
        )

    async def expire_client_records(self, before: datetime) -> None:
        await self._db.execute("DELETE FROM client_records WHERE last_seen < $1", before)

    async def delete_client_records(self, node: str) -> None:
        await self._db.execute("DELETE FROM client_records WHERE node = $1", node)

    async def list_client_records(self, network: Network, ca_set: str) -> list[ClientObservation]:
        """Every node's records of the clients seen on the network's bindings of a CA set."""
        rows = await self._db.fetch(
            "SELECT * FROM client_records WHERE network = $1 AND ca_set = $2 "
            "ORDER BY last_seen DESC, fingerprint, node",
            network.value,
            ca_set,
        )
        return [_record(r) for r in rows]
