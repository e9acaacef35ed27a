"""Node configuration (docs/configuration.md): one TOML file parsed once into frozen, typed objects.

The dataclasses below are the contract other modules import; `config.parse.load_config` builds
them. Every rejection is a `ConfigError` whose message
starts with the dotted key at fault, e.g. `edge.certificates[0].mutual_authentication.mode: ...`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edgeproxy.authz.policy import Policy
from edgeproxy.domain.edge_model import ALPN_PROTOCOLS, EdgeMaterial
from edgeproxy.domain.model import Network, Role
from edgeproxy.domain.rules import NODE_LOST_AFTER

EnforcementMode = Literal["require", "request"]
FailureAction = Literal["deny", "forward"]
IdentityHeaderFormat = Literal["xfcc", "rfc9440"]
OcspFailureMode = Literal["soft", "hard"]


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class NodeConfig:
    name: str
    network: Network
    roles: tuple[str, ...]  # subset of ("admin", "edge")
    snapshot: Path  # last-known-good trust state of this node (static stability)


@dataclass(frozen=True)
class StoreConfig:
    url: str  # sqlite:////abs/path.db (relative paths already resolved) or postgresql://...
    poll_interval: float = 0.05  # seconds between revision polls (SQLite; PostgreSQL safety net)
    # A hung database must surface as "unavailable" within seconds, not hang every caller: the
    # longest wait for a new connection (and for a free pooled one), and for one statement.
    connect_timeout: float = 5.0
    statement_timeout: float = 5.0
    # The key-encryption key of the private keys the store holds (docs/security.md); when None,
    # the environment variable EDGEPROXY_KEY_ENCRYPTION_KEY (config/kek.py).
    key_encryption_key_file: Path | None = None


@dataclass(frozen=True)
class FleetConfig:
    """How the admin role judges the edge nodes a change waits for (docs/management.md)."""

    # Seconds an edge node may stay silent before changes stop waiting for it (declared lost).
    node_lost_after: float = NODE_LOST_AFTER.total_seconds()


@dataclass(frozen=True)
class TokenConfig:
    name: str
    role: Role
    token_sha256: str  # lower-case hex; token_env values are hashed at load and never kept


@dataclass(frozen=True)
class AdminConfig:
    listen: HostPort
    tokens: tuple[TokenConfig, ...]
    tls_certificate: Path | None = None  # required for a non-loopback listen
    tls_private_key: Path | None = None
    max_body_bytes: int = 1024 * 1024
    console_idle_timeout: float = 900.0  # seconds a console session lives unused


@dataclass(frozen=True)
class StatusConfig:
    listen: HostPort


@dataclass(frozen=True)
class OcspConfig:
    enabled: bool = False
    failure_mode: OcspFailureMode = "soft"
    responder: str | None = None  # overrides the leaf's AIA
    timeout: float = 2.0
    cache_size: int = 10_000
    check_intermediates: bool = False  # also each intermediate the client sent, not only the leaf


@dataclass(frozen=True)
class MutualAuthConfig:
    ca_set: str
    send_ca_list_to_client: bool = False
    mode: EnforcementMode = "require"
    on_failure: FailureAction = "deny"
    identity_headers: tuple[IdentityHeaderFormat, ...] = ("xfcc",)
    ocsp: OcspConfig = field(default_factory=OcspConfig)
    verify_depth: int = 5
    # Who may call what (authz/): per request, after the certificate's verdict. None: any client
    # the binding accepts may call anything. Not an input of the SSL context (trust.context_key).
    authorization: Policy | None = None

    @property
    def forwards_failures(self) -> bool:
        """`request` mode with `on_failure = "forward"`: a client whose certificate did not
        verify is forwarded to the origin, flagged, instead of answered 403."""
        return self.mode == "request" and self.on_failure == "forward"


@dataclass(frozen=True)
class EdgeCertificateConfig:
    name: str
    hostnames: tuple[str, ...]
    certificate: Path  # PEM chain, leaf first
    private_key: Path
    origin: str  # http://host:port (HTTP/1.1) or h2c://host:port (HTTP/2 with prior knowledge)
    mutual_authentication: MutualAuthConfig
    default: bool = False
    alpn: tuple[str, ...] = ALPN_PROTOCOLS  # in the server's order of preference
    # A store-managed edge certificate (dataplane/store_edges.py): its chain and sealed key come
    # from the store, not from `certificate`/`private_key` (then empty paths).
    material: EdgeMaterial | None = None
    # A store-managed edge certificate with no binding on this node's network: served, but every
    # handshake is refused (reason no_binding).
    unbound: bool = False

    @property
    def source(self) -> str:
        return "config" if self.material is None else "store"


@dataclass(frozen=True)
class EdgeLimits:
    client_hello_timeout: float = 10.0
    handshake_timeout: float = 10.0
    header_timeout: float = 15.0
    idle_timeout: float = 60.0
    origin_connect_timeout: float = 5.0
    origin_read_timeout: float = 60.0
    max_header_bytes: int = 16 * 1024
    max_body_bytes: int = 100 * 1024 * 1024
    drain_timeout: float = 30.0
    # Seconds a client connection may live; then it is closed after its in-flight response. A
    # second line behind the re-check of open connections on trust changes (nginx keepalive_time).
    max_connection_age: float = 3600.0
    # After this many requests a connection's response says Connection: close and it closes
    # (nginx's keepalive_requests): a bound on what one TLS session may do, whatever happens to
    # its trust meanwhile.
    max_requests_per_connection: int = 1000
    # HTTP/2: streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    max_concurrent_streams: int = 100
    # Request bodies up to this size are read whole before an origin connection is taken (nginx's
    # proxy_request_buffering): a slow client then holds no origin connection. Larger bodies, and
    # chunked ones once they grow past it, stream.
    request_buffer_bytes: int = 64 * 1024
    # A request body must be complete within body_timeout seconds of its head, and keep up an
    # average of body_min_rate bytes/s once its first header_timeout seconds are over: then 408.
    body_timeout: float = 60.0
    body_min_rate: int = 1024
    # A client that reads none of its response for this long is cut off (and its origin
    # connection with it).
    send_timeout: float = 60.0


@dataclass(frozen=True)
class ClientRecordsConfig:
    """What a node remembers of the client certificate chains it sees (docs/configuration.md): per
    binding, bounded, flushed to the store in batches, kept `window_days` days. Off: nothing is
    recorded, and nothing this node saw is kept in the store."""

    enabled: bool = True
    window_days: int = 7
    max_per_binding: int = 10_000  # per edge certificate, per node (in memory and in the store)
    flush_interval: float = 10.0  # seconds between batches written to the store


@dataclass(frozen=True)
class EdgeConfig:
    listen: HostPort
    certificates: tuple[EdgeCertificateConfig, ...]
    workers: int = 1
    limits: EdgeLimits = field(default_factory=EdgeLimits)
    client_records: ClientRecordsConfig = field(default_factory=ClientRecordsConfig)


@dataclass(frozen=True)
class DemoConfig:
    """The embedded demo of `make run`: a dev PKI made on first start, a demo origin and CA set."""

    enabled: bool = False
    pki_dir: Path = Path("var/demo-pki")
    origin_listen: HostPort = field(default_factory=lambda: HostPort("127.0.0.1", 8080))
    ca_set: str = "demo-clients"


@dataclass(frozen=True)
class LogConfig:
    """`[log]` (docs/configuration.md): where the process's lines go, and in which shape."""

    level: str = "info"  # debug | info | warning | error: every logger but the access log
    format: str = "json"  # json: one object per line | text: for people
    file: Path | None = None  # None: stderr; reopened on SIGUSR1 (logrotate)
    access: bool = True  # request lines; refused handshakes are always logged (sampled)
    access_file: Path | None = None  # access lines there instead of with the others


@dataclass(frozen=True)
class Config:
    path: Path
    node: NodeConfig
    store: StoreConfig
    status: StatusConfig
    admin: AdminConfig | None = None
    edge: EdgeConfig | None = None
    demo: DemoConfig = field(default_factory=DemoConfig)
    log: LogConfig = field(default_factory=LogConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)


class ConfigError(Exception):
    """An unusable config file. `key` is the dotted key at fault (None for file-level problems)."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key
