"""Value types of the truststore (docs/management.md). Immutable; the store and the API map them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from edgeproxy.domain.errors import FieldError


class Network(StrEnum):
    STAGING = "STAGING"
    PRODUCTION = "PRODUCTION"


class Role(StrEnum):
    """Admin API roles; each includes the rights of the ones before it."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class CaSetStatus(StrEnum):
    NOT_DELETED = "NOT_DELETED"
    DELETING = "DELETING"
    DELETED = "DELETED"


class ActivationType(StrEnum):
    ACTIVATE = "ACTIVATE"
    DEACTIVATE = "DEACTIVATE"


class ActivationStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"


class CertificateStatus(StrEnum):
    """The filters of a version's certificate listing (docs/api.md)."""

    EXPIRING = "EXPIRING"  # still valid, but not past the expiry threshold
    EXPIRED = "EXPIRED"

    def holds(self, certificate: Certificate, now: datetime, threshold: timedelta) -> bool:
        if self is CertificateStatus.EXPIRED:
            return certificate.end_date <= now
        return now < certificate.end_date <= now + threshold


class ActivityType(StrEnum):
    CREATE_CA_SET = "CREATE_CA_SET"
    CREATE_CA_SET_VERSION = "CREATE_CA_SET_VERSION"
    UPDATE_CA_SET_VERSION = "UPDATE_CA_SET_VERSION"
    CLONE_CA_SET_VERSION = "CLONE_CA_SET_VERSION"
    ACTIVATE_CA_SET_VERSION = "ACTIVATE_CA_SET_VERSION"
    DEACTIVATE_CA_SET_VERSION = "DEACTIVATE_CA_SET_VERSION"
    DELETE_CA_SET = "DELETE_CA_SET"
    ADD_CRL = "ADD_CRL"
    DELETE_CRL = "DELETE_CRL"
    BLOCK_CERTIFICATE = "BLOCK_CERTIFICATE"
    UNBLOCK_CERTIFICATE = "UNBLOCK_CERTIFICATE"
    BIND_EDGE_CERTIFICATE = "BIND_EDGE_CERTIFICATE"
    UNBIND_EDGE_CERTIFICATE = "UNBIND_EDGE_CERTIFICATE"


@dataclass(frozen=True)
class Certificate:
    """A validated CA certificate as stored in a version (re-encoded PEM, never the upload text)."""

    subject: str
    issuer: str
    start_date: datetime
    end_date: datetime
    fingerprint: str  # SHA-256 of the DER, lower-case hex
    serial_number: str  # lower-case hex
    signature_algorithm: str
    certificate_pem: str
    description: str | None = None


@dataclass(frozen=True)
class CaSet:
    id: int
    name: str
    description: str | None
    status: CaSetStatus
    created_by: str
    created_at: datetime
    latest_version: int | None = None
    staging_version: int | None = None
    production_version: int | None = None
    deleted_by: str | None = None
    delete_requested_at: datetime | None = None
    deleted_at: datetime | None = None
    delete_failure: str | None = None

    def active_version(self, network: Network) -> int | None:
        return self.staging_version if network is Network.STAGING else self.production_version


@dataclass(frozen=True)
class Version:
    ca_set_id: int
    version: int
    description: str | None
    allow_insecure_sha1: bool
    require_root_certificate: bool
    certificates: tuple[Certificate, ...]
    created_by: str
    created_at: datetime
    modified_by: str | None = None
    modified_at: datetime | None = None
    # Set by the first activation on any network; the version is frozen from then on
    # (docs/management.md).
    first_activated_at: datetime | None = None
    warnings: tuple[FieldError, ...] = ()

    @property
    def locked(self) -> bool:
        return self.first_activated_at is not None

    @property
    def fingerprints(self) -> tuple[str, ...]:
        return tuple(sorted(c.fingerprint for c in self.certificates))


@dataclass(frozen=True)
class Activation:
    id: int
    ca_set_id: int
    version: int
    network: Network
    type: ActivationType
    status: ActivationStatus
    created_by: str
    created_at: datetime
    # The store revision that made this activation visible to nodes: a node whose applied
    # revision is at least this one has applied it.
    revision: int
    previous_version: int | None
    completed_at: datetime | None = None
    failure_reason: str | None = None
    percent_complete: int = 0
    warnings: tuple[FieldError, ...] = ()
    # The nodes it waits for and what each did (None: recorded before rollouts existed).
    rollout: Rollout | None = None


# -- rollouts: a change on its way to the edge nodes (domain/rollout.py) -----------------------


class NodeProgress(StrEnum):
    PENDING = "PENDING"  # expected, has not applied the change yet
    APPLIED = "APPLIED"  # reported a revision at or past the change's
    FAILED = "FAILED"  # reported it could not apply it
    LOST = "LOST"  # silent past fleet.node_lost_after, left the fleet, or forgotten


# Why a node was declared lost; `FORGOTTEN` is final, the others hold while the node stays away.
SILENT = "silent"
LEFT = "left"
FORGOTTEN = "forgotten"


@dataclass(frozen=True)
class NodeOutcome:
    """What one expected node did with the change, and why (the error, or why it is lost)."""

    state: NodeProgress
    detail: str | None = None
    lost: str | None = None  # SILENT, LEFT or FORGOTTEN when state is LOST


PENDING = NodeOutcome(NodeProgress.PENDING)


@dataclass(frozen=True)
class Rollout:
    """One change on its way to the edge nodes of one network.

    `revision`: the store revision that made the change visible; a node whose applied revision
    reached it has applied it. `watch`: the key under which a node reports that it could not
    apply the change (`Node.apply_errors`; for an activation, the CA set's name). `nodes`: every
    expected node, by name; None only for a change recorded before rollouts existed, whose
    expected nodes are captured at its first `advance`.
    """

    kind: str
    network: Network
    revision: int
    watch: str
    started_at: datetime
    nodes: Mapping[str, NodeOutcome] | None
    status: ActivationStatus = ActivationStatus.IN_PROGRESS
    completed_at: datetime | None = None
    id: int = 0

    def named(self, state: NodeProgress) -> tuple[str, ...]:
        return tuple(sorted(n for n, o in (self.nodes or {}).items() if o.state is state))

    @property
    def expected(self) -> tuple[str, ...]:
        return tuple(sorted(self.nodes or {}))

    @property
    def percent_complete(self) -> int:
        """Share of the expected nodes that applied it or were declared lost."""
        if self.status is ActivationStatus.COMPLETE or not self.nodes:
            return 100 if self.status is ActivationStatus.COMPLETE else 0
        settled = len(self.named(NodeProgress.APPLIED)) + len(self.named(NodeProgress.LOST))
        return settled * 100 // len(self.nodes)

    @property
    def failure_reason(self) -> str | None:
        failed = self.named(NodeProgress.FAILED)
        if not failed:
            return None
        assert self.nodes is not None
        return "; ".join(f"{n}: {self.nodes[n].detail}" for n in failed)

    def warnings(self) -> tuple[FieldError, ...]:
        """What the operator must know about how it completed: nobody to wait for, or nodes
        declared lost (they were not waited for, and may still hold the old state)."""
        if self.nodes is not None and not self.nodes:
            return (
                FieldError(
                    "no-edge-nodes",
                    f"no edge node of {self.network} had reported within fleet.node_lost_after "
                    "when the change started: nothing was waited for, and nothing confirms it "
                    "is enforced",
                ),
            )
        lost = self.named(NodeProgress.LOST)
        if not lost:
            return ()
        assert self.nodes is not None
        reasons = ", ".join(f"{n} ({self.nodes[n].detail})" for n in lost)
        return (
            FieldError(
                "nodes-lost",
                f"not waited for, declared lost: {reasons}; a lost node that still runs may "
                "enforce the previous state",
            ),
        )


@dataclass(frozen=True)
class Activity:
    ca_set_id: int
    type: ActivityType
    at: datetime
    by: str
    network: Network | None = None
    version: int | None = None
    edge_certificate: str | None = None  # the binding a BIND/UNBIND activity changed
    # An activation acknowledged to refuse clients seen on the network: how many.
    acknowledged_refusals: int | None = None


@dataclass(frozen=True)
class Binding:
    """What a node reports of one edge certificate's mutual-authentication binding."""

    edge_certificate: str
    hostnames: tuple[str, ...]
    ca_set: str
    send_ca_list_to_client: bool = False
    # "config": declared in the node's file; "store": managed through the admin API.
    source: str = "config"
    origin: str | None = None


@dataclass(frozen=True)
class Node:
    """An edge or admin process group as it registered and last reported itself."""

    name: str
    network: Network
    roles: tuple[str, ...]
    started_at: datetime
    last_seen: datetime
    bindings: tuple[Binding, ...] = ()
    applied_revision: int = 0
    # ca_set name -> active version applied there (None: the set has no active version).
    applied_versions: dict[str, int | None] = field(default_factory=dict)
    # ca_set name -> why the node could not apply that set's state at applied_revision.
    apply_errors: dict[str, str] = field(default_factory=dict)
    applied_at: datetime | None = None


@dataclass(frozen=True)
class Crl:
    """A certificate revocation list uploaded to a CA set (docs/management.md "CRLs"): not
    versioned; it applies
    to every version of the set while it is the newest one of its issuer."""

    id: int
    ca_set_id: int
    issuer: str  # RFC 4514
    issuer_fingerprint: str  # SHA-256 of the issuing CA certificate found in the set
    this_update: datetime
    next_update: datetime | None
    crl_number: int | None  # up to 20 octets (RFC 5280 §5.2.3): wider than any SQL integer
    revoked_count: int
    fingerprint: str  # SHA-256 of the DER, lower-case hex
    crl_pem: str  # re-encoded from DER: never the upload text
    description: str | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class BlockedCertificate:
    """One client certificate a CA set refuses (docs/management.md "Blocked certificates"), named
    by `fingerprint`, or by `issuer` and `serial_number`; not versioned, like a CRL."""

    id: int
    ca_set_id: int
    fingerprint: str | None  # SHA-256 of the DER, lower-case hex
    issuer: str | None  # RFC 4514, as cryptography writes it
    serial_number: str | None  # lower-case hex, no leading zeros
    reason: str
    expires_at: datetime | None  # None: until unblocked
    created_by: str
    created_at: datetime
