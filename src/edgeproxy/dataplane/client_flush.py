"""Client records leave the worker in batches, off the hot path (docs/dataplane.md "Client
records"): every `flush_interval` seconds a background task drains the recorder, describes new
leaves in a thread, and adds the batch to the store, where every node's records add up.

A batch the store refused stays pending and goes with the next one (bounded: the oldest pending
records go first when it overflows), so a store outage loses counts only past that bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from edgeproxy.config.model import ClientRecordsConfig
from edgeproxy.dataplane.clients import Batch, ClientRecorder, LostClient
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.domain.clients import ClientObservation, describe
from edgeproxy.domain.model import Network
from edgeproxy.service.fleet import FleetService

log = logging.getLogger(__name__)
MAX_BATCH: Final = 2000  # records per store transaction
MAX_PENDING: Final = 50_000  # records kept while the store refuses batches


def observations(batches: Sequence[Batch], network: Network, node: str) -> list[ClientObservation]:
    """The store's records of a drained batch; parses each leaf once in its life (a thread)."""
    out = []
    for b in batches:
        seen = b.seen
        if seen.described is None:
            seen.described = describe(seen.chain[0])
        subject, issuer, sans = seen.described
        out.append(
            ClientObservation(
                network=network,
                edge_certificate=b.edge_certificate,
                ca_set=seen.ca_set,
                node=node,
                fingerprint=b.fingerprint,
                subject=subject,
                issuer=issuer,
                sans=sans,
                chain_der=seen.chain,
                first_seen=datetime.fromtimestamp(b.first_seen, UTC),
                last_seen=datetime.fromtimestamp(b.last_seen, UTC),
                handshakes=b.handshakes,
                requests=b.requests,
                last_outcome=b.outcome,
            )
        )
    return out


class ClientFlusher:
    """Writes one worker's client records to the store (run by `every` in the edge role)."""

    def __init__(
        self,
        recorder: ClientRecorder,
        fleet: FleetService,
        node: str,
        network: Network,
        config: ClientRecordsConfig,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.recorder = recorder
        self.fleet = fleet
        self.node = node
        self.network = network
        self.window = timedelta(days=config.window_days)
        self.keep = config.max_per_binding
        self.clock = clock
        self.pending: list[ClientObservation] = []

    async def flush(self) -> None:
        now = self.clock()
        self.recorder.forget((now - self.window).timestamp())
        batches = self.recorder.drain()
        if batches:
            made = await asyncio.to_thread(observations, batches, self.network, self.node)
            self.pending.extend(made)
            if len(self.pending) > MAX_PENDING:
                del self.pending[: len(self.pending) - MAX_PENDING]
        while self.pending:
            batch = self.pending[:MAX_BATCH]
            await self.fleet.record_clients(
                self.node, batch, now=now, window=self.window, keep=self.keep
            )
            del self.pending[: len(batch)]


def lost_client_reporter(metrics: Metrics) -> Callable[[LostClient], None]:
    """What the recorder calls when a client accepted before is refused: a metric, a log line."""

    def report(lost: LostClient) -> None:
        metrics.lost_client(lost.edge_certificate, lost.reason)
        log.warning(
            "client refused after a trust change",
            extra={
                "edge_certificate": lost.edge_certificate,
                "client_fingerprint_sha256": lost.fingerprint,
                "verify_reason": lost.reason.value,
                "accepted_version": lost.accepted_version,
                "ca_set_version": lost.version,
            },
        )

    return report
