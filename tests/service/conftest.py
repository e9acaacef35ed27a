"""Service fixtures: a SQLite store in tmp_path, a clock the test moves, and real CA certificates
made by trustme at test time."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import trustme

from edgeproxy.domain.certificates import CertificateInput
from edgeproxy.domain.model import Binding, Network, Node
from edgeproxy.service.fleet import FleetService
from edgeproxy.service.shared import Actor
from edgeproxy.service.truststore import Truststore
from edgeproxy.service.versions import VersionDraft
from edgeproxy.store import Store

NODE_TTL = timedelta(seconds=15)
ADMIN = Actor("alice")


@dataclass
class FakeClock:
    """The services read `now` through this; tests move it to age node heartbeats."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(store: Store, clock: FakeClock) -> Truststore:
    return Truststore.build(store, clock=clock, node_ttl=NODE_TTL)


@pytest.fixture
def fleet(service: Truststore) -> FleetService:
    return service.fleet


@pytest.fixture(scope="session")
def cas() -> tuple[trustme.CA, ...]:
    """A few independent roots; a version made of one of them is a distinct version."""
    return tuple(trustme.CA() for _ in range(3))


def draft(*cas: trustme.CA) -> VersionDraft:
    return VersionDraft(
        allow_insecure_sha1=False,
        require_root_certificate=False,
        description=None,
        certificates=tuple(CertificateInput(ca.cert_pem.bytes().decode()) for ca in cas),
    )


def edge_node(
    clock: FakeClock,
    name: str,
    network: Network = Network.STAGING,
    *,
    applied_revision: int = 0,
    binds: tuple[str, ...] = (),
    apply_errors: dict[str, str] | None = None,
    roles: tuple[str, ...] = ("edge",),
    last_seen: datetime | None = None,
) -> Node:
    """A node as it reports itself: heartbeat now (unless told), binding `binds` by name."""
    return Node(
        name=name,
        network=network,
        roles=roles,
        started_at=clock.now - timedelta(minutes=5),
        last_seen=last_seen or clock.now,
        bindings=tuple(
            Binding(f"{ca_set}-cert", (f"{ca_set}.example.com",), ca_set) for ca_set in binds
        ),
        applied_revision=applied_revision,
        apply_errors=apply_errors or {},
    )
