"""What the worker supervisor and a worker process agree on: the spec, the node row, limits."""

from __future__ import annotations

from dataclasses import dataclass, replace

from edgeproxy.config.model import Config, NodeConfig

REPORT_INTERVAL = 0.5  # seconds between a worker's reports
REPORT_LIMIT = 1 << 16  # bytes: one report line; also the backlog a worker lets build up
SPEC_LIMIT = 1 << 24  # bytes: the pickled spec


def worker_node(node: NodeConfig, index: int, count: int) -> NodeConfig:
    """The node as worker `index` of `count` registers it in the fleet."""
    if count == 1:
        return node
    return replace(node, name=f"{node.name}/w{index}", roles=("edge",))


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process runs: the parent's config in force, with the edge port bound."""

    index: int
    count: int
    config: Config
