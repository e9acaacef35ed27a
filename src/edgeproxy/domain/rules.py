"""Management rules of docs/management.md that need no store: names, limits, lifecycle checks."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from edgeproxy.domain.errors import BadRequest, Conflict, FieldError, ValidationError
from edgeproxy.domain.model import Activation, Node, Version

MAX_CA_SETS = 200
MAX_VERSIONS_PER_SET = 100
MAX_DESCRIPTION = 255
# A TLS CertificateRequest carries the CA list in a 16-bit length field (RFC 8446 §4.2.4).
MAX_CA_LIST_BYTES = 65_535

_NAME = re.compile(r"[A-Za-z0-9_.%-]{3,64}")


def check_ca_set_name(name: str) -> None:
    if not _NAME.fullmatch(name) or "..." in name:
        raise BadRequest(
            "ca-set-name-validation-failure",
            "caSetName must be 3-64 characters of A-Z a-z 0-9 _ . % - and must not contain '...'",
            (FieldError("ca-set-name-validation-failure", "invalid name", "/caSetName"),),
        )


def check_description(description: str | None, pointer: str = "/description") -> None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise ValidationError(
            "description-too-long",
            f"description must be at most {MAX_DESCRIPTION} characters",
            (FieldError("description-too-long", "too long", pointer),),
        )


def check_editable(version: Version) -> None:
    """A version activated on any network, ever, is frozen (clone it to change it)."""
    if version.locked:
        raise ValidationError(
            "ca-set-version-was-previously-active",
            f"version {version.version} was activated before and can no longer be changed; "
            "clone it to make an editable copy",
        )


def check_version_room(versions: int) -> None:
    """A set with `versions` versions takes one more only while under the limit."""
    if versions >= MAX_VERSIONS_PER_SET:
        raise ValidationError(
            "version-limit-reached",
            f"a CA set holds at most {MAX_VERSIONS_PER_SET} versions",
        )


def check_no_activation_in_flight(in_flight: list[Activation]) -> None:
    if in_flight:
        current = in_flight[0]
        raise Conflict(
            "activation-in-progress",
            f"activation {current.id} ({current.type} of version {current.version} on "
            f"{current.network}) is still in progress for this CA set",
            extra={"activationId": current.id},
        )


# How long a node stays live after its last heartbeat; nodes heartbeat well inside it.
NODE_TTL = timedelta(seconds=15)
# How long an edge node may stay silent before a change stops waiting for it
# (`fleet.node_lost_after`): minutes, not seconds, as a silent node may still serve the old state.
NODE_LOST_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class Liveness:
    """Which nodes count as live, and which as lost: the one home of those rules.

    A node is live while its last heartbeat is at most `ttl` old. Only live edge nodes block a
    deletion or appear as associations of a CA set. A node is lost once its last heartbeat is more
    than `lost_after` old: until then a change waits for it (domain/rollout.py), since a node that
    stopped reporting may still enforce the old state.
    """

    ttl: timedelta = NODE_TTL
    lost_after: timedelta = NODE_LOST_AFTER

    def is_live(self, node: Node, now: datetime) -> bool:
        return node.last_seen >= now - self.ttl

    def is_lost(self, node: Node, now: datetime) -> bool:
        return node.last_seen < now - self.lost_after

    def live_edge_nodes(self, nodes: Iterable[Node], now: datetime) -> list[Node]:
        return [n for n in nodes if "edge" in n.roles and self.is_live(n, now)]

    def tracked_edge_nodes(self, nodes: Iterable[Node], now: datetime) -> list[Node]:
        """The edge nodes a change started now must wait for: every one not lost."""
        return [n for n in nodes if "edge" in n.roles and not self.is_lost(n, now)]
