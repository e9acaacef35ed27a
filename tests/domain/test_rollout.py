"""The rollout state machine of domain/rollout.py: which nodes a change expects, and when it is
COMPLETE (every expected node applied it or was declared lost) or FAILED."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edgeproxy.domain.model import ActivationStatus, Network, Node, NodeProgress, Rollout
from edgeproxy.domain.rollout import RolloutView, advance, forget, start_rollout
from edgeproxy.domain.rules import Liveness

NOW = datetime(2026, 1, 1, tzinfo=UTC)
RULES = Liveness(timedelta(seconds=15), timedelta(seconds=300))
REVISION = 10


def node(
    name: str,
    *,
    seen_ago: float = 0,
    revision: int = REVISION - 1,
    errors: dict[str, str] | None = None,
    network: Network = Network.STAGING,
    roles: tuple[str, ...] = ("edge",),
) -> Node:
    return Node(
        name=name,
        network=network,
        roles=roles,
        started_at=NOW - timedelta(hours=1),
        last_seen=NOW - timedelta(seconds=seen_ago),
        applied_revision=revision,
        apply_errors=errors or {},
    )


def start(*nodes: Node) -> Rollout:
    return start_rollout(
        kind="activation",
        network=Network.STAGING,
        revision=REVISION,
        watch="partners",
        nodes=nodes,
        now=NOW,
        liveness=RULES,
    )


def step(rollout: Rollout, *nodes: Node, later: float = 1) -> Rollout:
    return advance(rollout, {n.name: n for n in nodes}, NOW + timedelta(seconds=later), RULES)


def test_it_expects_the_edge_nodes_of_its_network_that_are_not_lost() -> None:
    rollout = start(
        node("edge-1"),
        node("quiet", seen_ago=100),  # not live any more, but not lost: it may still serve
        node("lost", seen_ago=301),
        node("prod", network=Network.PRODUCTION),
        node("admin", roles=("admin",)),
    )
    assert rollout.expected == ("edge-1", "quiet")
    assert rollout.named(NodeProgress.PENDING) == ("edge-1", "quiet")
    assert (rollout.status, rollout.percent_complete, rollout.warnings()) == (
        ActivationStatus.IN_PROGRESS,
        0,
        (),
    )


def test_with_no_node_to_wait_for_it_completes_at_once_and_warns() -> None:
    rollout = start(node("lost", seen_ago=301))
    assert (rollout.status, rollout.completed_at, rollout.percent_complete) == (
        ActivationStatus.COMPLETE,
        NOW,
        100,
    )
    assert [w.type for w in rollout.warnings()] == ["no-edge-nodes"]
    assert "STAGING" in rollout.warnings()[0].detail


def test_complete_once_every_expected_node_applied_it() -> None:
    rollout = start(node("a"), node("b"))
    half = step(rollout, node("a", revision=REVISION), node("b"))
    assert (half.status, half.percent_complete) == (ActivationStatus.IN_PROGRESS, 50)
    assert (half.named(NodeProgress.APPLIED), half.named(NodeProgress.PENDING)) == (("a",), ("b",))
    # A node that joined after the start is not waited for, whatever it reports.
    done = step(half, node("a"), node("b", revision=REVISION + 3), node("late"), later=2)
    assert (done.status, done.completed_at, done.warnings()) == (
        ActivationStatus.COMPLETE,
        NOW + timedelta(seconds=2),
        (),
    )
    assert done.expected == ("a", "b")
    # Finished is final.
    assert step(done, node("a", errors={"partners": "late error"}), later=3) == done


def test_a_silent_node_holds_it_until_lost_after_then_it_completes_with_a_warning() -> None:
    rollout = start(node("a"), node("stopped"))
    silent = node("stopped", seen_ago=0)
    held = step(rollout, node("a", revision=REVISION), silent, later=299)
    assert (held.status, held.named(NodeProgress.PENDING)) == (
        ActivationStatus.IN_PROGRESS,
        ("stopped",),
    )
    done = step(held, node("a", revision=REVISION), silent, later=301)
    assert done.status is ActivationStatus.COMPLETE
    assert RolloutView.of(done) == RolloutView(
        expected=("a", "stopped"),
        applied=("a",),
        lost=("stopped",),
        warnings=done.warnings(),
    )
    assert [w.type for w in done.warnings()] == ["nodes-lost"]
    assert "stopped (silent since 2026-01-01T00:00:00+00:00)" in done.warnings()[0].detail


def test_a_lost_node_that_comes_back_before_the_end_is_waited_for_again() -> None:
    rollout = start(node("a"), node("b"))
    # At +301 s: a still reports (not applied yet), b silent since the start: lost.
    lost = step(rollout, node("a", seen_ago=-301), node("b"), later=301)
    assert (lost.status, lost.named(NodeProgress.LOST)) == (ActivationStatus.IN_PROGRESS, ("b",))
    back = step(lost, node("a", seen_ago=-302), node("b", seen_ago=-302), later=302)
    assert back.named(NodeProgress.PENDING) == ("a", "b")


def test_a_node_that_left_the_fleet_is_lost() -> None:
    rollout = start(node("a"), node("b"))
    done = step(rollout, node("a", revision=REVISION))  # b deregistered (clean stop, restart)
    assert (done.status, done.named(NodeProgress.LOST)) == (ActivationStatus.COMPLETE, ("b",))
    assert "b (left the fleet)" in done.warnings()[0].detail


def test_one_failure_fails_it_with_the_node_and_its_reason() -> None:
    rollout = start(node("a"), node("b"), node("c"))
    failed = step(
        rollout,
        node("a", revision=REVISION, errors={"partners": "context build failed"}),
        node("b", revision=REVISION, errors={"other-set": "not ours"}),
        node("c", revision=REVISION - 1, errors={"partners": "an older revision's error"}),
    )
    assert failed.status is ActivationStatus.FAILED
    assert failed.named(NodeProgress.FAILED) == ("a",)
    assert failed.named(NodeProgress.APPLIED) == ("b",)
    assert failed.failure_reason == "a: context build failed"


def test_forget_stops_waiting_for_named_pending_nodes_only() -> None:
    rollout = step(start(node("a"), node("b")), node("a", revision=REVISION), node("b"))
    forgotten = forget(rollout, {"a", "b"}, "ops")
    assert forgotten.nodes is not None
    assert forgotten.nodes["a"].state is NodeProgress.APPLIED  # applied stays applied
    assert (forgotten.nodes["b"].state, forgotten.nodes["b"].detail) == (
        NodeProgress.LOST,
        "forgotten by ops",
    )
    # Forgotten is final: the node registering again does not put it back to pending.
    done = step(forgotten, node("a"), node("b"))
    assert (done.status, done.named(NodeProgress.LOST)) == (ActivationStatus.COMPLETE, ("b",))
    assert "b (forgotten by ops)" in done.warnings()[0].detail


def test_a_rollout_recorded_before_rollouts_existed_captures_its_nodes_at_the_first_step() -> None:
    legacy = Rollout("activation", Network.STAGING, REVISION, "partners", NOW, None)
    assert RolloutView.of(legacy) == RolloutView()
    captured = step(legacy, node("a"), node("gone", seen_ago=400))
    assert (captured.status, captured.expected) == (ActivationStatus.IN_PROGRESS, ("a",))
