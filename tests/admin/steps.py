"""Shared test steps: tokens, a movable clock, reported edge nodes, and setup shortcuts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from edgeproxy.admin import routes
from edgeproxy.admin.safety_routes import safety_routes
from edgeproxy.domain.model import Binding, Network, Node, Role
from edgeproxy.service.truststore import Truststore
from support.admin import BASE, Api

# role → (token name recorded as the actor, bearer token)
TOKENS = {
    "viewer": ("ci-viewer", "viewer-secret-7f3a"),
    "editor": ("ci-editor", "editor-secret-91bc"),
    "admin": ("ops-admin", "admin-secret-5d20"),
}


@dataclass
class Clock:
    """Wall time plus an offset the test can move forward (certificates age, nodes go stale)."""

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass
class Fleet:
    """Edge nodes as they would report themselves, and the reconciler."""

    truststore: Truststore
    clock: Clock

    async def report(
        self,
        name: str = "edge-1",
        *,
        network: Network = Network.STAGING,
        binds: tuple[str, ...] = (),
        applied_revision: int = 0,
        errors: dict[str, str] | None = None,
        seen_ago: timedelta = timedelta(0),
    ) -> Node:
        now = self.clock()
        node = Node(
            name=name,
            network=network,
            roles=("edge",),
            started_at=now - timedelta(minutes=5),
            last_seen=now - seen_ago,
            bindings=tuple(
                Binding(f"{ca_set}-cert", (f"{ca_set}.example.com",), ca_set) for ca_set in binds
            ),
            applied_revision=applied_revision,
            apply_errors=errors or {},
            applied_at=now if applied_revision else None,
        )
        await self.truststore.fleet.report_node(node)
        return node

    async def reconcile(self) -> None:
        await self.truststore.reconciler.reconcile()

    async def apply_all(self, name: str = "edge-1", **kw: Any) -> Node:
        """Report the node caught up with the store's current revision, then reconcile."""
        revision = await self.truststore.fleet.store.revision()
        node = await self.report(name, applied_revision=revision, **kw)
        await self.reconcile()
        return node


# -- shortcuts for the setup steps tests share --------------------------------------------------


def version_body(*pems: str, **options: Any) -> dict[str, Any]:
    return {"certificates": [{"certificatePem": p} for p in pems], **options}


async def new_set(api: Api, name: str = "partners") -> int:
    reply = await api.post("/ca-sets", {"caSetName": name}, as_="editor")
    assert reply.status == 201, reply.body
    return int(reply.body["caSetId"])


async def new_version(api: Api, set_id: int, *pems: str, **options: Any) -> int:
    reply = await api.post(f"/ca-sets/{set_id}/versions", version_body(*pems, **options))
    assert reply.status == 201, reply.body
    return int(reply.body["version"])


async def activity_types(api: Api, set_id: int) -> list[str]:
    reply = await api.get(f"/ca-sets/{set_id}/activities", as_="viewer")
    return [a["type"] for a in reply.body["activities"]]


async def activate(api: Api, set_id: int, version: int, network: str = "STAGING") -> dict:
    reply = await api.post(f"/ca-sets/{set_id}/versions/{version}/activate", {"network": network})
    assert reply.status == 202, reply.body
    return dict(reply.body)


def every_route() -> list[tuple[str, str, Role]]:
    """(method, path under the base with ids 1, role it needs) of every admin route."""
    cases = []
    for route in [*routes.routes, *safety_routes]:
        path = route.path.removeprefix(BASE)
        for name in ("caSetId", "version", "activationId", "crlId"):
            path = path.replace(f"{{{name}}}", "1")
        path = path.replace("{nodeName}", "edge-1")
        cases.append((route.method, path, routes.REQUIRED_ROLE[route.handler]))
    return cases
