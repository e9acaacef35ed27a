"""Value types of store-managed edge certificates and their mutual-authentication bindings
(docs/management.md "Edge certificates"). Immutable; the store and the API map them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from edgeproxy.domain.errors import FieldError
from edgeproxy.domain.model import ActivationStatus, Network, Rollout
from edgeproxy.domain.secrets import Sealed

# The key of an edge certificate's entry in a node's apply errors (CA-set names hold no ':').
EDGE_ERROR_PREFIX = "edge-certificate:"


# ALPN protocol names (RFC 7301) an edge certificate may speak, and its default: both, HTTP/2
# preferred. HTTP/2 only ever over TLS (no h2c from clients).
ALPN_PROTOCOLS: tuple[str, ...] = ("h2", "http/1.1")


def edge_error_key(name: str) -> str:
    return f"{EDGE_ERROR_PREFIX}{name}"


class Source(StrEnum):
    STORE = "store"  # managed through the admin API
    CONFIG = "config"  # declared in a node's TOML file: read-only in the API


@dataclass(frozen=True)
class OcspSettings:
    enabled: bool = False
    failure_mode: str = "soft"  # soft | hard
    responder: str | None = None  # overrides the leaf's AIA
    check_intermediates: bool = False


@dataclass(frozen=True)
class MutualAuth:
    """How one edge certificate authenticates clients on one network."""

    ca_set: str
    mode: str = "require"  # require | request
    on_failure: str = "deny"  # deny | forward (forward needs request)
    send_ca_list_to_client: bool = False
    identity_headers: tuple[str, ...] = ("xfcc",)
    verify_depth: int = 5
    ocsp: OcspSettings = OcspSettings()
    # Who may call what (authz/): the canonical JSON text of the `authorization` object, checked
    # and normalised by authz/parse.py on the way in; None: no rules.
    authorization: str | None = None


@dataclass(frozen=True)
class LeafInfo:
    """What the API shows of a server certificate chain's leaf."""

    subject: str
    issuer: str
    start_date: datetime
    end_date: datetime
    fingerprint: str  # SHA-256 of the DER, lower-case hex
    serial_number: str
    dns_names: tuple[str, ...]
    key_type: str
    chain_length: int


@dataclass(frozen=True)
class EdgeCertificate:
    """A store-managed edge certificate. The private key is only ever held sealed here."""

    name: str
    hostnames: tuple[str, ...]
    origin: str
    default: bool
    chain_pem: str  # re-encoded PEM, leaf first
    sealed_key: Sealed
    # Bumped by every rotation: what the edge's SSL contexts are keyed by (the sealed key changes
    # with a KEK rotation too, which must not rebuild anything).
    generation: int
    warnings: tuple[FieldError, ...]
    created_by: str
    created_at: datetime
    modified_by: str | None = None
    modified_at: datetime | None = None
    rotated_at: datetime | None = None
    alpn: tuple[str, ...] = ALPN_PROTOCOLS  # in the server's order of preference


@dataclass(frozen=True)
class EdgeMaterial:
    """What an edge node needs to serve a store-managed edge certificate: the chain and the
    still-sealed key (opened only in the build thread, right before an SSL context loads it)."""

    chain_pem: str
    sealed_key: Sealed
    generation: int


@dataclass(frozen=True)
class EdgeBinding:
    """The mutual authentication of one edge certificate on one network."""

    edge_certificate: str
    network: Network
    auth: MutualAuth
    modified_by: str
    modified_at: datetime


class ChangeType(StrEnum):
    BIND = "BIND"
    UNBIND = "UNBIND"


@dataclass(frozen=True)
class BindingChange:
    """A binding change converging on the edge nodes of its network, like an activation: its
    `rollout` (domain/rollout.py, kind "binding", watching `edge_error_key`) holds the nodes it
    expects and what each did. COMPLETE once each applied it or was declared lost; FAILED when
    one reported it could not apply the edge certificate, and the binding goes back to
    `previous`. Status, completion and failure are copied from the rollout as it moves."""

    id: int
    edge_certificate: str
    network: Network
    type: ChangeType
    ca_set: str | None  # the set bound (BIND), or unbound (UNBIND)
    previous: MutualAuth | None
    status: ActivationStatus
    revision: int
    created_by: str
    created_at: datetime
    completed_at: datetime | None = None
    failure_reason: str | None = None
    rollout: Rollout | None = None
