"""Reading the node's TOML file: decoded tables → the frozen dataclasses of `config.model`.

Nothing here binds, connects or reads a certificate; it only checks that files exist.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from edgeproxy.authz.parse import PolicyError, parse_policy
from edgeproxy.authz.policy import Policy
from edgeproxy.config.kek import KEK_FILE_KEY, load_key_ring
from edgeproxy.config.model import (
    AdminConfig,
    ClientRecordsConfig,
    Config,
    ConfigError,
    DemoConfig,
    EdgeCertificateConfig,
    EdgeConfig,
    EdgeLimits,
    EnforcementMode,
    FailureAction,
    FleetConfig,
    HostPort,
    IdentityHeaderFormat,
    LogConfig,
    MutualAuthConfig,
    NodeConfig,
    OcspConfig,
    StatusConfig,
    StoreConfig,
    TokenConfig,
)
from edgeproxy.config.values import (
    ENV_NAME,
    NAME,
    SHA256_HEX,
    TOKEN_NAME,
    Converter,
    Table,
    as_bool,
    ca_set_name,
    existing_file,
    fail,
    float_range,
    hostname,
    http_url,
    int_range,
    is_loopback,
    listen,
    matching,
    name_str,
    one_of,
    path_in,
    positive_float,
    store_url,
    str_list,
)
from edgeproxy.domain.edge_model import ALPN_PROTOCOLS
from edgeproxy.domain.hostnames import ORIGIN_SCHEMES
from edgeproxy.domain.model import Network, Role
from edgeproxy.domain.rules import NODE_TTL

# fleet.node_lost_after: at least the liveness TTL (a lost node is one long past not live), at
# most a week.
_NODE_LOST_AFTER = float_range(NODE_TTL.total_seconds(), 7 * 24 * 3600.0)


def parse_config(data: Mapping[str, Any], *, path: Path, environ: Mapping[str, str]) -> Config:
    path = Path(os.path.abspath(path))
    base = path.parent
    root = Table(
        dict(data), "", ("node", "store", "admin", "status", "edge", "demo", "log", "fleet")
    )
    demo = _demo(root.table("demo", ("enabled", "pki_dir", "origin_listen", "ca_set")), base)
    node = _node(root.table("node", ("name", "network", "roles", "snapshot")), base)
    if "store" not in root:
        fail("store", "is required (a [store] table with url)")
    store_table = root.table(
        "store",
        ("url", "poll_interval", "connect_timeout", "statement_timeout", KEK_FILE_KEY),
    )
    store = StoreConfig(
        url=store_table.req("url", store_url(base)),
        key_encryption_key_file=store_table.opt(KEK_FILE_KEY, path_in(base), None),
        **store_table.fields(
            {
                "poll_interval": positive_float,
                "connect_timeout": positive_float,
                "statement_timeout": positive_float,
            }
        ),
    )
    status = StatusConfig(root.table("status", ("listen",)).opt("listen", listen, _hp(9100)))
    for role in ("admin", "edge"):
        if role in node.roles and role not in root:
            fail(role, f'a [{role}] table is required when node.roles contains "{role}"')
    admin = _admin(root, base, environ) if "admin" in root else None
    edge = _edge(root, base, must_exist=not demo.enabled) if "edge" in root else None
    _check_listeners(node, status, admin, edge, demo)
    kek_file = store.key_encryption_key_file
    if not (demo.enabled and kek_file is not None and not kek_file.exists()):
        load_key_ring(store, environ)  # the demo makes its dev key on first start
    log = _log(root.table("log", ("level", "format", "file", "access", "access_file")), base)
    fleet = FleetConfig(
        **root.table("fleet", ("node_lost_after",)).fields({"node_lost_after": _NODE_LOST_AFTER})
    )
    return Config(path, node, store, status, admin, edge, demo, log, fleet)


def _log(t: Table, base: Path) -> LogConfig:
    files = {name: t.opt(name, path_in(base), None) for name in ("file", "access_file")}
    for name, file in files.items():
        if file is not None and not file.parent.is_dir():
            fail(t.at(name), f"the directory {file.parent} does not exist")
    return LogConfig(
        file=files["file"],
        access_file=files["access_file"],
        **t.fields(
            {
                "level": one_of("debug", "info", "warning", "error"),
                "format": one_of("json", "text"),
                "access": as_bool,
            }
        ),
    )


def _hp(port: int) -> HostPort:
    return HostPort("127.0.0.1", port)


def _demo(t: Table, base: Path) -> DemoConfig:
    return DemoConfig(
        pki_dir=t.opt("pki_dir", path_in(base), base / "var" / "demo-pki"),
        **t.fields({"enabled": as_bool, "origin_listen": listen, "ca_set": ca_set_name}),
    )


def _node(t: Table, base: Path) -> NodeConfig:
    name = t.opt("name", name_str, None)
    if name is None:
        name = socket.gethostname()
        if not NAME.fullmatch(name):
            fail(t.at("name"), f"the host name {name!r} is not a valid node name; set node.name")
    roles = t.opt("roles", str_list(one_of("admin", "edge"), non_empty=True), ("admin", "edge"))
    return NodeConfig(
        name=name,
        network=Network(t.req("network", one_of(*Network))),
        roles=roles,
        snapshot=t.opt("snapshot", path_in(base), base / "var" / f"{name}.snapshot.json"),
    )


def _admin(root: Table, base: Path, environ: Mapping[str, str]) -> AdminConfig:
    keys = (
        "listen",
        "tokens",
        "tls_certificate",
        "tls_private_key",
        "max_body_bytes",
        "console_idle_timeout",
    )
    t = root.table("admin", keys)
    address = t.opt("listen", listen, _hp(9000))
    cert = t.opt("tls_certificate", path_in(base), None)
    key = t.opt("tls_private_key", path_in(base), None)
    if (cert is None) != (key is None):
        missing, given = ("tls_private_key", "tls_certificate")[:: 1 if key is None else -1]
        fail(t.at(missing), f"is required when {t.at(given)} is set")
    if cert is None and not is_loopback(address.host):
        fail(t.at("listen"), "a non-loopback listen needs tls_certificate and tls_private_key")
    for name, file in (("tls_certificate", cert), ("tls_private_key", key)):
        if file is not None:
            existing_file(file, t.at(name))
    tokens = _tokens(t.tables("tokens", ("name", "role", "token_sha256", "token_env")), environ)
    return AdminConfig(
        address,
        tokens,
        cert,
        key,
        **t.fields({"max_body_bytes": int_range(1), "console_idle_timeout": positive_float}),
    )


def _tokens(tables: list[Table], environ: Mapping[str, str]) -> tuple[TokenConfig, ...]:
    by_name: dict[str, str] = {}
    by_hash: dict[str, str] = {}
    out: list[TokenConfig] = []
    for t in tables:
        name = t.req("name", matching(TOKEN_NAME, "1-64 characters of A-Z a-z 0-9 _ . @ -"))
        role = Role(t.req("role", one_of(*Role)))
        if ("token_sha256" in t) == ("token_env" in t):
            fail(t.key, "needs exactly one of token_sha256 and token_env")
        if "token_sha256" in t:
            source = "token_sha256"
            digest = t.req(source, matching(SHA256_HEX, "64 lower-case hex digits (SHA-256)"))
        else:
            source = "token_env"
            var = t.req(source, matching(ENV_NAME, "an environment variable name"))
            if not environ.get(var):
                fail(t.at(source), f"environment variable {var} is unset or empty")
            # Only the digest is kept; surrogateescape gives back the bytes os.environ decoded.
            digest = hashlib.sha256(environ[var].encode("utf-8", "surrogateescape")).hexdigest()
        if name in by_name:
            fail(t.at("name"), f"duplicate token name {name!r} (also {by_name[name]})")
        if digest in by_hash:
            fail(t.at(source), f"same token as {by_hash[digest]}")
        by_name[name] = by_hash[digest] = t.key
        out.append(TokenConfig(name, role, digest))
    return tuple(out)


def _edge(root: Table, base: Path, *, must_exist: bool) -> EdgeConfig:
    t = root.table("edge", ("listen", "workers", "certificates", "limits", "client_records"))
    limit_spec: dict[str, Converter[Any]] = {
        f.name: int_range(1) if f.type == "int" else positive_float
        for f in dataclasses.fields(EdgeLimits)
    }
    limits = EdgeLimits(**t.table("limits", limit_spec).fields(limit_spec))
    keys = ("name", "hostnames", "certificate", "private_key", "origin", "default", "alpn")
    # None is fine: the node then serves the store-managed edge certificates only.
    tables = t.tables("certificates", (*keys, "mutual_authentication"))
    certificates = tuple(_certificate(c, base, must_exist=must_exist) for c in tables)
    names: dict[str, str] = {}
    hosts: dict[str, str] = {}
    default: str | None = None
    for c, cert in zip(tables, certificates, strict=True):
        if cert.name in names:
            fail(c.at("name"), f"duplicate name {cert.name!r} (also {names[cert.name]})")
        names[cert.name] = c.key
        if cert.default and default is not None:
            fail(c.at("default"), f"only one certificate may be the default ({default} is)")
        default = c.key if cert.default else default
        for i, host in enumerate(cert.hostnames):
            if host in hosts:
                fail(f"{c.at('hostnames')}[{i}]", f"{host!r} is already claimed by {hosts[host]}")
            hosts[host] = c.key
    return EdgeConfig(
        listen=t.opt("listen", listen, _hp(8443)),
        certificates=certificates,
        workers=t.opt("workers", int_range(1), 1),
        limits=limits,
        client_records=ClientRecordsConfig(**t.table("client_records", _RECORDS).fields(_RECORDS)),
    )


_RECORDS: dict[str, Converter[Any]] = {
    "enabled": as_bool,
    "window_days": int_range(1, 366),
    "max_per_binding": int_range(1, 1_000_000),
    "flush_interval": positive_float,
}


def _certificate(t: Table, base: Path, *, must_exist: bool) -> EdgeCertificateConfig:
    certificate = t.req("certificate", path_in(base))
    private_key = t.req("private_key", path_in(base))
    if must_exist:  # the demo makes its PKI on first start
        existing_file(certificate, t.at("certificate"))
        existing_file(private_key, t.at("private_key"))
    if "mutual_authentication" not in t:
        fail(t.at("mutual_authentication"), "is required")
    return EdgeCertificateConfig(
        name=t.req("name", name_str),
        hostnames=t.req("hostnames", str_list(hostname, non_empty=True)),
        certificate=certificate,
        private_key=private_key,
        origin=t.req("origin", http_url(*ORIGIN_SCHEMES)),
        mutual_authentication=_mutual(t),
        default=t.opt("default", as_bool, False),
        alpn=t.opt("alpn", str_list(one_of(*ALPN_PROTOCOLS), non_empty=True), ALPN_PROTOCOLS),
    )


def _mutual(parent: Table) -> MutualAuthConfig:
    keys = ("ca_set", "send_ca_list_to_client", "mode", "on_failure", "identity_headers")
    t = parent.table("mutual_authentication", (*keys, "ocsp", "verify_depth", "authorization"))
    mode = t.opt("mode", one_of("require", "request"), "require")
    on_failure = t.opt("on_failure", one_of("deny", "forward"), "deny")
    if mode == "require" and on_failure == "forward":
        fail(t.at("on_failure"), '"forward" needs mode = "request" (require ends the handshake)')
    ocsp_spec: dict[str, Converter[Any]] = {
        "enabled": as_bool,
        "failure_mode": one_of("soft", "hard"),
        "responder": http_url("http", "https"),
        "timeout": positive_float,
        "cache_size": int_range(1),
        "check_intermediates": as_bool,
    }
    ocsp = t.table("ocsp", ocsp_spec).fields(ocsp_spec)
    headers = t.opt("identity_headers", str_list(one_of("xfcc", "rfc9440")), ("xfcc",))
    return MutualAuthConfig(
        ca_set=t.req("ca_set", ca_set_name),
        send_ca_list_to_client=t.opt("send_ca_list_to_client", as_bool, False),
        mode=cast(EnforcementMode, mode),
        on_failure=cast(FailureAction, on_failure),
        identity_headers=cast(tuple[IdentityHeaderFormat, ...], headers),
        ocsp=OcspConfig(**ocsp),
        verify_depth=t.opt("verify_depth", int_range(1, 10), 5),
        authorization=t.opt("authorization", _authorization, None),
    )


def _authorization(value: Any, key: str) -> Policy:
    """The binding's `authorization` table: the API's object in snake_case keys (authz/parse.py)."""
    try:
        return parse_policy(value, path=key, style="toml")
    except PolicyError as exc:
        raise ConfigError(str(exc), key=exc.path) from None


def _check_listeners(
    node: NodeConfig,
    status: StatusConfig,
    admin: AdminConfig | None,
    edge: EdgeConfig | None,
    demo: DemoConfig,
) -> None:
    """Two listeners of this node on one fixed address could never both bind."""
    bound: list[tuple[str, HostPort]] = [("status.listen", status.listen)]
    if admin is not None and "admin" in node.roles:
        bound.append(("admin.listen", admin.listen))
    if edge is not None and "edge" in node.roles:
        bound.append(("edge.listen", edge.listen))
    if demo.enabled:
        bound.append(("demo.origin_listen", demo.origin_listen))
    seen: dict[HostPort, str] = {}
    for key, address in bound:
        if address.port != 0 and address in seen:
            fail(key, f"{address} is also {seen[address]}")
        seen[address] = key


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and parse the TOML file at `path`; `environ` (default `os.environ`) feeds token_env."""
    path = Path(os.path.abspath(path))
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 (byte offset {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message carries "(at line N, column M)"
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_config(data, path=path, environ=os.environ if environ is None else environ)
