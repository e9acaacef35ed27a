"""Convergence of one change across the edge nodes of a network (docs/management.md
"Convergence"): the nodes a change expects, captured when it starts, and what each did with it.

Pure: the reconciler feeds `advance` the node reports and the time. An activation is one kind of
change; another kind (a binding change, say) starts a rollout of its own kind and is settled the
same way. A rollout is `COMPLETE` only when every expected node has applied it or was declared
lost; `FAILED` as soon as one reports it could not apply it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from edgeproxy.domain.errors import FieldError
from edgeproxy.domain.model import (
    FORGOTTEN,
    LEFT,
    PENDING,
    SILENT,
    ActivationStatus,
    Network,
    Node,
    NodeOutcome,
    NodeProgress,
    Rollout,
)
from edgeproxy.domain.rules import Liveness

_APPLIED = NodeOutcome(NodeProgress.APPLIED)


def start_rollout(
    *,
    kind: str,
    network: Network,
    revision: int,
    watch: str,
    nodes: Iterable[Node],
    now: datetime,
    liveness: Liveness,
) -> Rollout:
    """A change starting now expects every edge node of the network that is not lost."""
    expected = {
        n.name: PENDING for n in liveness.tracked_edge_nodes(nodes, now) if n.network is network
    }
    rollout = Rollout(kind, network, revision, watch, now, expected)
    return _settle(rollout, now)


def advance(
    rollout: Rollout, reports: Mapping[str, Node], now: datetime, liveness: Liveness
) -> Rollout:
    """The rollout after looking at the latest node reports. A finished rollout never moves."""
    if rollout.status is not ActivationStatus.IN_PROGRESS:
        return rollout
    if rollout.nodes is None:
        # Recorded before rollouts existed: expect the nodes of the network not lost now.
        fresh = start_rollout(
            kind=rollout.kind,
            network=rollout.network,
            revision=rollout.revision,
            watch=rollout.watch,
            nodes=reports.values(),
            now=now,
            liveness=liveness,
        )
        rollout = replace(rollout, nodes=fresh.nodes)
    assert rollout.nodes is not None
    nodes = {
        name: _outcome(rollout, outcome, reports.get(name), now, liveness)
        for name, outcome in rollout.nodes.items()
    }
    return _settle(replace(rollout, nodes=nodes), now)


def forget(rollout: Rollout, names: Iterable[str], actor: str) -> Rollout:
    """Stop waiting for `names`: an operator said they are gone (`edgeproxy nodes forget`)."""
    if rollout.status is not ActivationStatus.IN_PROGRESS or rollout.nodes is None:
        return rollout
    gone = NodeOutcome(NodeProgress.LOST, f"forgotten by {actor}", FORGOTTEN)
    nodes = {
        name: gone if name in names and outcome.state is NodeProgress.PENDING else outcome
        for name, outcome in rollout.nodes.items()
    }
    return replace(rollout, nodes=nodes)


def _outcome(
    rollout: Rollout,
    outcome: NodeOutcome,
    report: Node | None,
    now: datetime,
    liveness: Liveness,
) -> NodeOutcome:
    if outcome.state in (NodeProgress.APPLIED, NodeProgress.FAILED) or outcome.lost == FORGOTTEN:
        return outcome
    if report is None:
        return NodeOutcome(NodeProgress.LOST, "left the fleet", LEFT)
    if report.applied_revision >= rollout.revision:
        error = report.apply_errors.get(rollout.watch)
        return NodeOutcome(NodeProgress.FAILED, error) if error is not None else _APPLIED
    if liveness.is_lost(report, now):
        return NodeOutcome(
            NodeProgress.LOST,
            f"silent since {report.last_seen.isoformat(timespec='seconds')}",
            SILENT,
        )
    return PENDING


def _settle(rollout: Rollout, now: datetime) -> Rollout:
    assert rollout.nodes is not None
    states = {o.state for o in rollout.nodes.values()}
    if NodeProgress.FAILED in states:
        return replace(rollout, status=ActivationStatus.FAILED, completed_at=now)
    if NodeProgress.PENDING in states:
        return rollout
    return replace(rollout, status=ActivationStatus.COMPLETE, completed_at=now)


@dataclass(frozen=True)
class RolloutView:
    """A rollout's node lists, as the API shows them (empty for a change with none recorded)."""

    expected: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    warnings: tuple[FieldError, ...] = ()

    @classmethod
    def of(cls, rollout: Rollout | None) -> RolloutView:
        if rollout is None:
            return cls()
        return cls(
            expected=rollout.expected,
            pending=rollout.named(NodeProgress.PENDING),
            applied=rollout.named(NodeProgress.APPLIED),
            failed=rollout.named(NodeProgress.FAILED),
            lost=rollout.named(NodeProgress.LOST),
            warnings=rollout.warnings(),
        )
