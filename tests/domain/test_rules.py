"""The rules written once in domain/rules.py: node liveness and the version limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edgeproxy.domain import rules
from edgeproxy.domain.errors import ValidationError
from edgeproxy.domain.model import Network, Node

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def node(name: str, *, roles: tuple[str, ...] = ("edge",), seen_ago: timedelta) -> Node:
    return Node(
        name=name,
        network=Network.STAGING,
        roles=roles,
        started_at=NOW - timedelta(hours=1),
        last_seen=NOW - seen_ago,
        bindings=(),
        applied_revision=0,
        apply_errors={},
    )


def test_a_node_is_live_up_to_its_ttl_and_not_after() -> None:
    liveness = rules.Liveness(timedelta(seconds=15))
    assert liveness.is_live(node("a", seen_ago=timedelta(seconds=15)), NOW)
    assert not liveness.is_live(node("b", seen_ago=timedelta(seconds=16)), NOW)


def test_only_live_nodes_with_the_edge_role_are_live_edge_nodes() -> None:
    liveness = rules.Liveness(timedelta(seconds=15))
    nodes = [
        node("edge-fresh", seen_ago=timedelta(0)),
        node("edge-stale", seen_ago=timedelta(minutes=1)),
        node("admin-fresh", roles=("admin",), seen_ago=timedelta(0)),
        node("both", roles=("admin", "edge"), seen_ago=timedelta(seconds=5)),
    ]
    assert [n.name for n in liveness.live_edge_nodes(nodes, NOW)] == ["edge-fresh", "both"]


def test_the_version_limit_admits_the_last_slot_and_refuses_past_it() -> None:
    rules.check_version_room(rules.MAX_VERSIONS_PER_SET - 1)
    with pytest.raises(ValidationError) as refused:
        rules.check_version_room(rules.MAX_VERSIONS_PER_SET)
    assert refused.value.type == "version-limit-reached"
