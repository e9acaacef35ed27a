"""The admin role's metrics (docs/operations.md "Convergence"): how far the fleet is from what the
store says. A collector on the node's /metrics (the status listener) that shows the report last
read by `refresh`, which the admin role runs on a timer: a scrape never waits for the store."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from edgeproxy.service.convergence import ConvergenceReport
from edgeproxy.service.truststore import Truststore


class ConvergenceMetrics(Collector):
    def __init__(self, service: Truststore) -> None:
        self._service = service
        self._report: ConvergenceReport | None = None

    async def refresh(self) -> None:
        self._report = await self._service.convergence.report()

    def collect(self) -> Iterator[Metric]:
        report = self._report
        if report is None:  # not read yet: publish nothing rather than zeros
            return
        yield CounterMetricFamily(
            "edgeproxy_nodes_forgotten",
            "Node registrations forgotten through this admin node (`edgeproxy nodes forget`).",
            value=self._service.reconciler.forgotten_total,
        )
        desired = GaugeMetricFamily(
            "edgeproxy_ca_set_desired_version",
            "Active version of each CA set per network in the store (0: none active).",
            labels=["ca_set", "network"],
        )
        applied = GaugeMetricFamily(
            "edgeproxy_ca_set_applied_version",
            "Version the edge nodes of the network enforce: the desired one once every edge node "
            "not lost applied it, else the one a node behind still enforces (absent: no such "
            "node binds the set).",
            labels=["ca_set", "network"],
        )
        behind = GaugeMetricFamily(
            "edgeproxy_ca_set_nodes_behind",
            "Edge nodes not lost that bind the set and do not enforce its desired version yet.",
            labels=["ca_set", "network"],
        )
        for s in report.sets:
            labels = [s.ca_set, s.network.value]
            desired.add_metric(labels, s.desired)
            behind.add_metric(labels, s.behind)
            if s.applied is not None:
                applied.add_metric(labels, s.applied)
        in_flight = GaugeMetricFamily(
            "edgeproxy_rollouts_in_flight",
            "Changes (kind=activation: activations and deactivations) still converging.",
            labels=["kind"],
        )
        oldest = GaugeMetricFamily(
            "edgeproxy_rollout_oldest_in_flight_seconds",
            "Age of the oldest change still converging, by kind (0: none in flight).",
            labels=["kind"],
        )
        for kind, (count, age) in report.in_flight.items():
            in_flight.add_metric([kind], count)
            oldest.add_metric([kind], age)
        lost = GaugeMetricFamily(
            "edgeproxy_edge_nodes_lost",
            "Registered edge nodes silent past fleet.node_lost_after (`edgeproxy nodes forget` "
            "removes one for good).",
            labels=["network"],
        )
        for network, count in report.lost_nodes.items():
            lost.add_metric([network.value], count)
        yield from (desired, applied, behind, in_flight, oldest, lost)
