"""docs/configuration.md: the config file parses into frozen objects; every rule accepts its good
twin and rejects the
bad one with a message that starts with the dotted key at fault."""

from __future__ import annotations

import copy
import hashlib
import tomllib
from pathlib import Path
from typing import Any

import pytest

from edgeproxy.config.model import (
    ClientRecordsConfig,
    Config,
    ConfigError,
    EdgeLimits,
    HostPort,
    MutualAuthConfig,
    OcspConfig,
)
from edgeproxy.config.parse import load_config, parse_config
from edgeproxy.domain.model import Network, Role

REPO = Path(__file__).resolve().parents[2]
OPS_SHA = hashlib.sha256(b"ops-token").hexdigest()
DELETE = object()

BASE_TOML = f"""
[node]
name = "test-node"
network = "STAGING"

[store]
url = "sqlite:///var/test.db"

[admin]
tokens = [{{ name = "ops", role = "admin", token_sha256 = "{OPS_SHA}" }}]

[edge]

[[edge.certificates]]
name = "api"
hostnames = ["api.example.com", "*.api.example.com"]
certificate = "certs/api-chain.pem"
private_key = "certs/api.key"
origin = "http://127.0.0.1:8080"

[edge.certificates.mutual_authentication]
ca_set = "partners"

[[edge.certificates]]
name = "www"
hostnames = ["www.example.com"]
certificate = "certs/www-chain.pem"
private_key = "certs/www.key"
origin = "http://127.0.0.1:8081"
mutual_authentication = {{ ca_set = "partners" }}
"""


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    """A config directory holding the (placeholder) files the base config names."""
    (tmp_path / "certs").mkdir()
    for name in ("api-chain.pem", "api.key", "www-chain.pem", "www.key", "admin.pem", "admin.key"):
        (tmp_path / "certs" / name).write_text("placeholder\n")
    return tmp_path


def base() -> dict[str, Any]:
    return tomllib.loads(BASE_TOML)


def edit(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """Copy of `data` with `dotted` (array indexes as numbers: "edge.certificates.1.name") set."""
    out = copy.deepcopy(data)
    *parents, last = dotted.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(last)] = value
    elif value is DELETE:
        del node[last]
    else:
        node[last] = value
    return out


def parse(conf_dir: Path, data: dict[str, Any], environ: dict[str, str] | None = None) -> Config:
    return parse_config(data, path=conf_dir / "edgeproxy.toml", environ=environ or {})


def reject(conf_dir: Path, data: dict[str, Any], key: str, fragment: str = "", **kw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse(conf_dir, data, **kw)
    message = str(info.value)
    assert message.startswith(f"{key}: "), message
    assert info.value.key == key
    assert fragment in message
    return message


MA = "edge.certificates.0.mutual_authentication"
MA_KEY = "edge.certificates[0].mutual_authentication"
C0, C1 = "edge.certificates.0", "edge.certificates.1"
K0, K1 = "edge.certificates[0]", "edge.certificates[1]"
TOKEN = "admin.tokens.0"

REJECTS = [
    # unknown keys at every level, with a hint for near misses
    ("nodes", {}, "nodes", "unknown key"),
    ("node.nmae", "x", "node.nmae", "did you mean 'name'?"),
    (f"{MA}.mod", "require", f"{MA_KEY}.mod", "did you mean 'mode'?"),
    (f"{MA}.ocsp", {"enable": True}, f"{MA_KEY}.ocsp.enable", "unknown key"),
    ("edge.limits.idle", 3, "edge.limits.idle", "unknown key"),
    (f"{TOKEN}.token", "x", "admin.tokens[0].token", "unknown key"),
    ("demo.origin", "x", "demo.origin", "unknown key"),
    # wrong types
    ("node", "x", "node", "must be a table"),
    ("node.name", 5, "node.name", "must be a string"),
    ("edge.workers", True, "edge.workers", "must be an integer, not a boolean"),
    ("edge.workers", 2.0, "edge.workers", "must be an integer, not a float"),
    (f"{C0}.default", "yes", f"{K0}.default", "must be a boolean"),
    ("edge.limits.idle_timeout", "60", "edge.limits.idle_timeout", "must be a number"),
    ("edge.limits.idle_timeout", True, "edge.limits.idle_timeout", "must be a number"),
    ("edge.limits.idle_timeout", float("nan"), "edge.limits.idle_timeout", "finite"),
    (f"{C0}.hostnames", "api.example.com", f"{K0}.hostnames", "must be an array"),
    ("edge.certificates", {}, "edge.certificates", "must be an array"),
    ("admin.tokens", [5], "admin.tokens[0]", "must be a table"),
    ("demo.enabled", "yes", "demo.enabled", "must be a boolean"),
    # required
    ("node.network", DELETE, "node.network", "is required"),
    ("store", DELETE, "store", "is required"),
    ("store.url", DELETE, "store.url", "is required"),
    (f"{C0}.mutual_authentication", DELETE, f"{K0}.mutual_authentication", "is required"),
    (f"{MA}.ca_set", DELETE, f"{MA_KEY}.ca_set", "is required"),
    # enumerations and ranges
    ("node.network", "staging", "node.network", "STAGING, PRODUCTION"),
    ("node.roles", ["admin", "proxy"], "node.roles[1]", "one of admin, edge"),
    ("node.roles", ["edge", "edge"], "node.roles[1]", "duplicate"),
    ("node.roles", [], "node.roles", "must not be empty"),
    (f"{MA}.mode", "optional", f"{MA_KEY}.mode", "must be one of require, request"),
    (f"{MA}.on_failure", "allow", f"{MA_KEY}.on_failure", "deny, forward"),
    (f"{MA}.identity_headers", ["xfcc", "spiffe"], f"{MA_KEY}.identity_headers[1]", "xfcc"),
    (f"{MA}.identity_headers", ["xfcc", "xfcc"], f"{MA_KEY}.identity_headers[1]", "duplicate"),
    (f"{MA}.verify_depth", 0, f"{MA_KEY}.verify_depth", "1..10"),
    (f"{MA}.verify_depth", 11, f"{MA_KEY}.verify_depth", "1..10"),
    (f"{MA}.ocsp", {"failure_mode": "lax"}, f"{MA_KEY}.ocsp.failure_mode", "soft, hard"),
    (f"{MA}.ocsp", {"timeout": 0}, f"{MA_KEY}.ocsp.timeout", "positive"),
    (f"{MA}.ocsp", {"cache_size": 0}, f"{MA_KEY}.ocsp.cache_size", "at least 1"),
    (f"{MA}.ocsp", {"responder": "ftp://ocsp.example"}, f"{MA_KEY}.ocsp.responder", "https"),
    (f"{MA}.ocsp", {"check_intermediates": "yes"}, f"{MA_KEY}.ocsp.check_intermediates", "bool"),
    (f"{MA}.ca_set", "ab", f"{MA_KEY}.ca_set", "3-64"),
    (f"{MA}.ca_set", "a...b", f"{MA_KEY}.ca_set", "'...'"),
    ("edge.workers", 0, "edge.workers", "at least 1"),
    ("edge.limits.max_header_bytes", 0, "edge.limits.max_header_bytes", "at least 1"),
    ("edge.limits.idle_timeout", -1, "edge.limits.idle_timeout", "positive"),
    ("edge.limits.max_connection_age", 0, "edge.limits.max_connection_age", "positive"),
    ("edge.limits.max_connection_age", "1h", "edge.limits.max_connection_age", "must be a number"),
    ("edge.limits.max_conection_age", 9, "edge.limits.max_conection_age", "did you mean"),
    ("edge.limits.request_buffer_bytes", 0, "edge.limits.request_buffer_bytes", "at least 1"),
    ("edge.limits.body_timeout", 0, "edge.limits.body_timeout", "positive"),
    ("edge.limits.body_min_rate", 0, "edge.limits.body_min_rate", "at least 1"),
    ("edge.limits.body_min_rate", 1.5, "edge.limits.body_min_rate", "not a float"),
    ("edge.limits.send_timeout", -5, "edge.limits.send_timeout", "positive"),
    ("edge.limits.send_timout", 5, "edge.limits.send_timout", "did you mean 'send_timeout'?"),
    (
        "edge.limits.max_requests_per_connection",
        0,
        "edge.limits.max_requests_per_connection",
        "at least 1",
    ),
    (
        "edge.limits.max_requests_per_connection",
        1.5,
        "edge.limits.max_requests_per_connection",
        "not a float",
    ),
    ("admin.max_body_bytes", 0, "admin.max_body_bytes", "at least 1"),
    ("admin.console_idle_timeout", 0, "admin.console_idle_timeout", "positive"),
    ("store.poll_interval", 0, "store.poll_interval", "positive"),
    ("fleet.node_lost_after", 14, "fleet.node_lost_after", "must be 15..604800"),
    ("fleet.node_lost_after", 604801, "fleet.node_lost_after", "must be 15..604800"),
    ("fleet.node_lost_after", "5m", "fleet.node_lost_after", "must be a number"),
    ("fleet.node_ttl", 5, "fleet.node_ttl", ""),
    ("store.connect_timeout", 0, "store.connect_timeout", "positive"),
    ("store.connect_timeout", "5s", "store.connect_timeout", "must be a number"),
    ("store.statement_timeout", -1, "store.statement_timeout", "positive"),
    ("store.statement_timeout", float("inf"), "store.statement_timeout", "finite"),
    ("store.statment_timeout", 5, "store.statment_timeout", "unknown key"),
    # contradictions
    (f"{C1}.name", "api", f"{K1}.name", "duplicate name 'api'"),
    (
        f"{C1}.hostnames",
        ["API.example.com"],
        f"{K1}.hostnames[0]",
        "claimed by edge.certificates[0]",
    ),
    (f"{C0}.hostnames", ["a.example.com", "A.example.com"], f"{K0}.hostnames[1]", "duplicate"),
    (f"{MA}.on_failure", "forward", f"{MA_KEY}.on_failure", 'needs mode = "request"'),
    ("edge", DELETE, "edge", 'node.roles contains "edge"'),
    ("admin", DELETE, "admin", 'node.roles contains "admin"'),
    ("admin.listen", "0.0.0.0:9000", "admin.listen", "non-loopback"),
    ("admin.listen", "[::]:9000", "admin.listen", "non-loopback"),
    ("admin.listen", "admin.example.com:9000", "admin.listen", "non-loopback"),
    ("admin.tls_certificate", "certs/admin.pem", "admin.tls_private_key", "is required when"),
    ("admin.tls_private_key", "certs/admin.key", "admin.tls_certificate", "is required when"),
    ("status.listen", "127.0.0.1:9000", "admin.listen", "also status.listen"),
    ("edge.listen", "127.0.0.1:9100", "edge.listen", "also status.listen"),
    # tokens
    (f"{TOKEN}.token_env", "X", "admin.tokens[0]", "exactly one of token_sha256 and token_env"),
    (f"{TOKEN}.token_sha256", DELETE, "admin.tokens[0]", "exactly one of"),
    (f"{TOKEN}.token_sha256", OPS_SHA.upper(), "admin.tokens[0].token_sha256", "lower-case hex"),
    (f"{TOKEN}.token_sha256", OPS_SHA[:-1], "admin.tokens[0].token_sha256", "64"),
    (f"{TOKEN}.role", "root", "admin.tokens[0].role", "viewer, editor, admin"),
    (f"{TOKEN}.name", "", "admin.tokens[0].name", "1-64"),
    # listen addresses
    ("edge.listen", "localhost", "edge.listen", "host:port"),
    ("edge.listen", "::1:8443", "edge.listen", "[::1]:9000"),
    ("edge.listen", "[::1]8443", "edge.listen", "host:port"),
    ("edge.listen", ":8443", "edge.listen", "host:port"),
    ("edge.listen", "127.0.0.1:65536", "edge.listen", "0..65535"),
    ("edge.listen", "127.0.0.1:-1", "edge.listen", "host:port"),
    ("edge.listen", "[not-v6]:8443", "edge.listen", "not an IPv6 address"),
    ("edge.listen", "bad_host:8443", "edge.listen", "not a valid host name"),
    ("edge.listen", "999.1.1.1:8443", "edge.listen", "not an IP address"),
    ("demo.origin_listen", "8080", "demo.origin_listen", "host:port"),
    # host names
    (f"{C0}.hostnames", ["*.com"], f"{K0}.hostnames[0]", "two labels after"),
    (f"{C0}.hostnames", ["a.*.example.com"], f"{K0}.hostnames[0]", "not a valid host name"),
    (f"{C0}.hostnames", ["**.example.com"], f"{K0}.hostnames[0]", "not a valid host name"),
    (f"{C0}.hostnames", ["foo_bar.example.com"], f"{K0}.hostnames[0]", "not a valid"),
    (f"{C0}.hostnames", ["-a.example.com"], f"{K0}.hostnames[0]", "not a valid"),
    (f"{C0}.hostnames", ["example.com."], f"{K0}.hostnames[0]", "not a valid"),
    (f"{C0}.hostnames", ["a" * 64 + ".com"], f"{K0}.hostnames[0]", "not a valid"),
    (f"{C0}.hostnames", ["192.0.2.1"], f"{K0}.hostnames[0]", "not an IP address"),
    (f"{C0}.hostnames", ["b\u00fccher.example"], f"{K0}.hostnames[0]", "xn--"),
    (f"{C0}.hostnames", ["\u212aey.example"], f"{K0}.hostnames[0]", "ASCII"),  # Kelvin sign
    (f"{C0}.hostnames", [], f"{K0}.hostnames", "must not be empty"),
    # origins
    (f"{C0}.origin", "https://127.0.0.1:8443", f"{K0}.origin", "http://host:port"),
    (f"{C0}.origin", "127.0.0.1:8080", f"{K0}.origin", "http://host:port"),
    (f"{C0}.origin", "http://127.0.0.1:8080/api", f"{K0}.origin", "no path"),
    (f"{C0}.origin", "http://u:secret@127.0.0.1:8080", f"{K0}.origin", "no credentials"),
    (f"{C0}.origin", "http://127.0.0.1:99999", f"{K0}.origin", "http://host:port"),
    # store
    ("store.url", "mysql://db.example/edge", "store.url", "sqlite:///relative/path"),
    ("store.url", "sqlite://host/edge.db", "store.url", "sqlite:///relative/path"),
    ("store.url", "sqlite:///", "store.url", "database file"),
    ("store.url", "sqlite:///var/", "store.url", "database file"),
    ("store.url", "sqlite:///var/x.db?mode=ro", "store.url", "query"),
    ("store.url", "postgresql://", "store.url", "names no server"),
    # files
    (f"{C0}.certificate", "certs/missing.pem", f"{K0}.certificate", "no such file"),
    (f"{C1}.private_key", "certs/missing.key", f"{K1}.private_key", "no such file"),
    (f"{C0}.certificate", "certs", f"{K0}.certificate", "no such file"),  # a directory
    (f"{C0}.certificate", "", f"{K0}.certificate", "must not be empty"),
    # [log]
    ("log.level", "verbose", "log.level", "debug, info, warning, error"),
    ("log.format", "xml", "log.format", "json, text"),
    ("log.access", "no", "log.access", ""),
    ("log.file", "nowhere/edge.log", "log.file", "does not exist"),
    ("log.access_file", "nowhere/access.log", "log.access_file", "does not exist"),
    ("log.rotate", True, "log.rotate", ""),
]


@pytest.mark.parametrize(("dotted", "value", "key", "fragment"), REJECTS)
def test_rejects(conf_dir: Path, dotted: str, value: Any, key: str, fragment: str) -> None:
    reject(conf_dir, edit(base(), dotted, value), key, fragment)


def test_an_h2c_origin_is_accepted(conf_dir: Path) -> None:
    config = parse(conf_dir, edit(base(), f"{C0}.origin", "h2c://127.0.0.1:50051"))
    assert config.edge is not None
    assert config.edge.certificates[0].origin == "h2c://127.0.0.1:50051"


def test_log_defaults_are_stderr_json_and_the_access_log_on(conf_dir: Path) -> None:
    log = parse(conf_dir, base()).log
    assert (log.level, log.format, log.file, log.access, log.access_file) == (
        "info",
        "json",
        None,
        True,
        None,
    )


def test_base_config_parses(conf_dir: Path) -> None:
    config = parse(conf_dir, base())
    assert config.path == conf_dir / "edgeproxy.toml"
    assert config.node.name == "test-node"
    assert config.node.network is Network.STAGING
    assert config.node.roles == ("admin", "edge")
    assert config.node.snapshot == conf_dir / "var" / "test-node.snapshot.json"
    assert config.status.listen == HostPort("127.0.0.1", 9100)
    assert config.fleet.node_lost_after == 300.0  # minutes, not seconds
    assert config.admin is not None
    assert config.admin.listen == HostPort("127.0.0.1", 9000)
    assert config.admin.tokens[0].role is Role.ADMIN
    assert config.edge is not None
    assert config.edge.listen == HostPort("127.0.0.1", 8443)
    assert config.edge.workers == 1
    assert config.edge.limits == EdgeLimits()
    api = config.edge.certificates[0]
    assert api.hostnames == ("api.example.com", "*.api.example.com")
    assert api.mutual_authentication.mode == "require"
    assert api.mutual_authentication.on_failure == "deny"
    assert api.mutual_authentication.identity_headers == ("xfcc",)
    assert api.mutual_authentication.verify_depth == 5
    assert not api.default
    assert not config.demo.enabled
    assert config.demo.pki_dir == conf_dir / "var" / "demo-pki"


def ma(config: Config) -> MutualAuthConfig:
    assert config.edge is not None
    return config.edge.certificates[0].mutual_authentication


ACCEPTS = [
    ("edge.workers", 4, lambda c: c.edge.workers, 4),
    ("edge.limits.idle_timeout", 30, lambda c: c.edge.limits.idle_timeout, 30.0),  # int as float
    ("edge.limits.idle_timeout", 0.5, lambda c: c.edge.limits.idle_timeout, 0.5),
    ("edge.limits.max_header_bytes", 8192, lambda c: c.edge.limits.max_header_bytes, 8192),
    ("edge.limits.max_connection_age", 600, lambda c: c.edge.limits.max_connection_age, 600.0),
    ("edge.limits.request_buffer_bytes", 1, lambda c: c.edge.limits.request_buffer_bytes, 1),
    ("edge.limits.body_timeout", 5, lambda c: c.edge.limits.body_timeout, 5.0),
    ("edge.limits.body_min_rate", 64, lambda c: c.edge.limits.body_min_rate, 64),
    ("edge.limits.send_timeout", 0.5, lambda c: c.edge.limits.send_timeout, 0.5),
    (
        "edge.limits.max_requests_per_connection",
        100,
        lambda c: c.edge.limits.max_requests_per_connection,
        100,
    ),
    ("admin.max_body_bytes", 4096, lambda c: c.admin.max_body_bytes, 4096),
    ("admin.console_idle_timeout", 120.5, lambda c: c.admin.console_idle_timeout, 120.5),
    ("store.poll_interval", 1, lambda c: c.store.poll_interval, 1.0),
    ("fleet.node_lost_after", 60, lambda c: c.fleet.node_lost_after, 60.0),
    ("store.connect_timeout", 2, lambda c: c.store.connect_timeout, 2.0),
    ("store.statement_timeout", 0.5, lambda c: c.store.statement_timeout, 0.5),
    (f"{C0}.default", True, lambda c: [x.default for x in c.edge.certificates], [True, False]),
    (f"{C1}.name", "API", lambda c: c.edge.certificates[1].name, "API"),  # names are exact
    (
        f"{C1}.hostnames",
        ["*.WWW.Example.com"],
        lambda c: c.edge.certificates[1].hostnames,
        ("*.www.example.com",),
    ),
    (
        f"{C1}.hostnames",
        ["x.api.example.com"],
        lambda c: c.edge.certificates[1].hostnames,
        ("x.api.example.com",),
    ),  # exact name beside the other certificate's wildcard
    (
        f"{C0}.hostnames",
        ["a.example.com", "localhost"],
        lambda c: c.edge.certificates[0].hostnames,
        ("a.example.com", "localhost"),
    ),
    (
        f"{MA}.mode",
        "request",
        lambda c: ma(c).mode,
        "request",
    ),
    (
        MA,
        {"ca_set": "p%1.x_y-z", "mode": "request", "on_failure": "forward"},
        lambda c: ma(c).on_failure,
        "forward",
    ),
    (
        f"{MA}.identity_headers",
        ["rfc9440", "xfcc"],
        lambda c: ma(c).identity_headers,
        ("rfc9440", "xfcc"),
    ),
    (
        f"{MA}.identity_headers",
        [],
        lambda c: ma(c).identity_headers,
        (),
    ),
    (
        f"{MA}.verify_depth",
        1,
        lambda c: ma(c).verify_depth,
        1,
    ),
    (
        f"{MA}.verify_depth",
        10,
        lambda c: ma(c).verify_depth,
        10,
    ),
    (
        f"{MA}.ocsp",
        {
            "enabled": True,
            "failure_mode": "hard",
            "responder": "https://o.example",
            "timeout": 1,
            "cache_size": 5,
            "check_intermediates": True,
        },
        lambda c: ma(c).ocsp,
        OcspConfig(
            enabled=True,
            failure_mode="hard",
            responder="https://o.example",
            timeout=1.0,
            cache_size=5,
            check_intermediates=True,
        ),
    ),
    ("node.network", "PRODUCTION", lambda c: c.node.network, Network.PRODUCTION),
    ("node.roles", ["edge"], lambda c: c.node.roles, ("edge",)),
    ("node.name", "edge-2.fra", lambda c: c.node.snapshot.name, "edge-2.fra.snapshot.json"),
    ("edge.listen", "[::1]:8443", lambda c: c.edge.listen, HostPort("::1", 8443)),
    ("edge.listen", "0.0.0.0:65535", lambda c: str(c.edge.listen), "0.0.0.0:65535"),
    ("edge.listen", "LocalHost:0", lambda c: c.edge.listen, HostPort("localhost", 0)),
    ("admin.listen", "localhost:9001", lambda c: c.admin.listen, HostPort("localhost", 9001)),
    ("admin.listen", "[::1]:9000", lambda c: str(c.admin.listen), "[::1]:9000"),
    ("admin.listen", "127.0.0.2:9000", lambda c: c.admin.listen.host, "127.0.0.2"),
    ("status.listen", "127.0.0.1:0", lambda c: c.status.listen.port, 0),
    (
        "demo.origin_listen",
        "127.0.0.1:18080",
        lambda c: c.demo.origin_listen,
        HostPort("127.0.0.1", 18080),
    ),
    ("demo.ca_set", "lab-clients", lambda c: c.demo.ca_set, "lab-clients"),
    (
        f"{C0}.origin",
        "http://[::1]:8080/",
        lambda c: c.edge.certificates[0].origin,
        "http://[::1]:8080/",
    ),
    (
        f"{C0}.origin",
        "http://origin.internal",
        lambda c: c.edge.certificates[0].origin,
        "http://origin.internal",
    ),
    ("admin.tokens", [], lambda c: c.admin.tokens, ()),
    (f"{TOKEN}.role", "editor", lambda c: c.admin.tokens[0].role, Role.EDITOR),
    (f"{TOKEN}.name", "ci@build.example", lambda c: c.admin.tokens[0].name, "ci@build.example"),
    ("log.level", "debug", lambda c: c.log.level, "debug"),
    ("log.format", "text", lambda c: c.log.format, "text"),
    ("log.access", False, lambda c: c.log.access, False),
    ("log.file", "certs/edge.log", lambda c: c.log.file.name, "edge.log"),
]


@pytest.mark.parametrize(("dotted", "value", "get", "expected"), ACCEPTS)
def test_accepts(conf_dir: Path, dotted: str, value: Any, get: Any, expected: Any) -> None:
    assert get(parse(conf_dir, edit(base(), dotted, value))) == expected


def test_one_default_among_many_is_fine_two_are_not(conf_dir: Path) -> None:
    one = edit(base(), f"{C1}.default", True)
    assert parse(conf_dir, one).edge.certificates[1].default  # type: ignore[union-attr]
    two = edit(one, f"{C0}.default", True)
    reject(conf_dir, two, f"{K1}.default", f"only one certificate may be the default ({K0} is)")


def test_roles_without_their_table(conf_dir: Path) -> None:
    edge_only = edit(edit(base(), "node.roles", ["edge"]), "admin", DELETE)
    config = parse(conf_dir, edge_only)
    assert config.admin is None
    assert config.edge is not None
    admin_only = edit(edit(base(), "node.roles", ["admin"]), "edge", DELETE)
    assert parse(conf_dir, admin_only).edge is None
    reject(conf_dir, edit(edge_only, "node.roles", ["edge", "admin"]), "admin", "[admin] table")


def test_non_loopback_admin_needs_tls(conf_dir: Path) -> None:
    data = edit(base(), "admin.listen", "0.0.0.0:9000")
    reject(conf_dir, data, "admin.listen", "tls_certificate and tls_private_key")
    data = edit(data, "admin.tls_certificate", "certs/admin.pem")
    reject(conf_dir, data, "admin.tls_private_key", "is required when admin.tls_certificate")
    data = edit(data, "admin.tls_private_key", "certs/admin.key")
    admin = parse(conf_dir, data).admin
    assert admin is not None
    assert admin.tls_certificate == conf_dir / "certs" / "admin.pem"
    assert admin.tls_private_key == conf_dir / "certs" / "admin.key"
    reject(
        conf_dir,
        edit(data, "admin.tls_private_key", "nope.key"),
        "admin.tls_private_key",
        "no such file",
    )


def test_listeners_on_port_zero_never_collide(conf_dir: Path) -> None:
    data = base()
    for table in ("admin", "status", "edge"):
        data = edit(data, f"{table}.listen", "127.0.0.1:0")
    assert parse(conf_dir, data).status.listen.port == 0


def test_duplicate_token_names_and_hashes(conf_dir: Path) -> None:
    data = base()
    data["admin"]["tokens"].append({"name": "ops", "role": "viewer", "token_sha256": "0" * 64})
    reject(
        conf_dir, data, "admin.tokens[1].name", "duplicate token name 'ops' (also admin.tokens[0])"
    )
    data["admin"]["tokens"][1] = {"name": "ci", "role": "viewer", "token_sha256": OPS_SHA}
    reject(conf_dir, data, "admin.tokens[1].token_sha256", "same token as admin.tokens[0]")
    # the same secret through the environment is the same token
    data["admin"]["tokens"][1] = {"name": "ci", "role": "viewer", "token_env": "CI_TOKEN"}
    reject(
        conf_dir,
        data,
        "admin.tokens[1].token_env",
        "same token as admin.tokens[0]",
        environ={"CI_TOKEN": "ops-token"},
    )
    admin = parse(conf_dir, data, environ={"CI_TOKEN": "another-token"}).admin
    assert admin is not None
    assert [t.name for t in admin.tokens] == ["ops", "ci"]


def test_token_env_is_hashed_and_never_kept(conf_dir: Path) -> None:
    secret = "s3cr3t-\u00e9-token"
    data = edit(base(), "admin.tokens", [{"name": "ci", "role": "viewer", "token_env": "CI_TOKEN"}])
    config = parse(conf_dir, data, environ={"CI_TOKEN": secret})
    assert config.admin is not None
    assert config.admin.tokens[0].token_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(config)
    assert "CI_TOKEN" not in repr(config)


@pytest.mark.parametrize("environ", [{}, {"CI_TOKEN": ""}, {"OTHER": "x"}])
def test_token_env_unset_or_empty(conf_dir: Path, environ: dict[str, str]) -> None:
    data = edit(base(), "admin.tokens", [{"name": "ci", "role": "viewer", "token_env": "CI_TOKEN"}])
    reject(
        conf_dir, data, "admin.tokens[0].token_env", "CI_TOKEN is unset or empty", environ=environ
    )


def test_token_env_must_name_a_variable(conf_dir: Path) -> None:
    data = edit(base(), "admin.tokens", [{"name": "ci", "role": "viewer", "token_env": "1 BAD"}])
    reject(conf_dir, data, "admin.tokens[0].token_env", "environment variable name")


def test_node_name_defaults_to_the_host_name(
    conf_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "host-a")
    config = parse(conf_dir, edit(base(), "node.name", DELETE))
    assert config.node.name == "host-a"
    assert config.node.snapshot == conf_dir / "var" / "host-a.snapshot.json"
    monkeypatch.setattr("socket.gethostname", lambda: "bad host")
    reject(conf_dir, edit(base(), "node.name", DELETE), "node.name", "set node.name")


def test_missing_files_are_fine_when_the_demo_makes_them(conf_dir: Path) -> None:
    data = edit(base(), f"{C0}.certificate", "pki/server-chain.pem")
    data = edit(data, f"{C0}.private_key", "pki/server.key")
    reject(conf_dir, data, f"{K0}.certificate", "no such file")
    reject(conf_dir, edit(data, "demo.enabled", False), f"{K0}.certificate", "no such file")
    config = parse(conf_dir, edit(data, "demo.enabled", True))
    assert config.demo.enabled
    assert config.edge is not None
    assert config.edge.certificates[0].certificate == conf_dir / "pki" / "server-chain.pem"


def test_relative_paths_follow_the_config_file(conf_dir: Path) -> None:
    (conf_dir / "etc").mkdir()
    absolute = conf_dir / "certs" / "www.key"
    text = BASE_TOML.replace('"certs/', '"../certs/').replace('"../certs/www.key"', f'"{absolute}"')
    text = text.replace("[node]", '[demo]\npki_dir = "pki"\n\n[node]\nsnapshot = "../state/n.json"')
    (conf_dir / "etc" / "edgeproxy.toml").write_text(text)
    config = load_config(conf_dir / "etc" / ".." / "etc" / "edgeproxy.toml")
    assert config.path == conf_dir / "etc" / "edgeproxy.toml"
    assert config.edge is not None
    assert config.edge.certificates[0].certificate == conf_dir / "certs" / "api-chain.pem"
    assert config.edge.certificates[1].private_key == absolute
    assert config.node.snapshot == conf_dir / "state" / "n.json"
    assert config.demo.pki_dir == conf_dir / "etc" / "pki"
    assert config.store.url == f"sqlite:///{conf_dir}/etc/var/test.db"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///var/edgeproxy.db", "sqlite:///{d}/var/edgeproxy.db"),
        ("sqlite:///edgeproxy.db", "sqlite:///{d}/edgeproxy.db"),
        ("sqlite:///../var/edgeproxy.db", "sqlite:///{p}/var/edgeproxy.db"),
        ("sqlite:///./a/../b.db", "sqlite:///{d}/b.db"),
        ("sqlite:////srv/edgeproxy/db.sqlite", "sqlite:////srv/edgeproxy/db.sqlite"),
        ("sqlite://///srv/db.sqlite", "sqlite:////srv/db.sqlite"),
        ("postgresql://edge:pw@db.example:5432/edge", "postgresql://edge:pw@db.example:5432/edge"),
        (
            "postgres://db.example/edge?sslmode=require",
            "postgres://db.example/edge?sslmode=require",
        ),
    ],
)
def test_store_url_normalisation(conf_dir: Path, url: str, expected: str) -> None:
    config = parse(conf_dir, edit(base(), "store.url", url))
    assert config.store.url == expected.format(d=conf_dir, p=conf_dir.parent)
    if url.startswith("sqlite"):
        assert config.store.url.startswith("sqlite:////")


def test_store_url_errors_never_echo_the_url(conf_dir: Path) -> None:
    message = reject(conf_dir, edit(base(), "store.url", "mysql://u:hunter2@db/x"), "store.url")
    assert "hunter2" not in message


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[node]\nname = "x"\nnetwork = \n')
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line 3") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_unreadable_or_non_utf8_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[node]\nname = "\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_load_config_reads_os_environ_by_default(
    conf_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = BASE_TOML.replace(f'token_sha256 = "{OPS_SHA}"', 'token_env = "EDGEPROXY_TEST_TOKEN"')
    (conf_dir / "edgeproxy.toml").write_text(text)
    monkeypatch.setenv("EDGEPROXY_TEST_TOKEN", "ops-token")
    config = load_config(conf_dir / "edgeproxy.toml")
    assert config.admin is not None
    assert config.admin.tokens[0].token_sha256 == OPS_SHA
    config = load_config(conf_dir / "edgeproxy.toml", environ={"EDGEPROXY_TEST_TOKEN": "other"})
    assert config.admin is not None
    assert config.admin.tokens[0].token_sha256 != OPS_SHA


def test_config_objects_are_frozen(conf_dir: Path) -> None:
    config = parse(conf_dir, base())
    with pytest.raises(AttributeError):
        config.node = config.node  # type: ignore[misc]


def test_the_shipped_default_config_parses() -> None:
    config = load_config(REPO / "config" / "edgeproxy.toml", environ={})
    var = REPO / "var"
    assert config.node.name == "edge-1"
    assert config.node.network is Network.STAGING
    assert config.node.roles == ("admin", "edge")
    assert config.node.snapshot == var / "edge-1.snapshot.json"
    assert config.store.url == f"sqlite:///{var}/edgeproxy.db"
    assert config.status.listen == HostPort("127.0.0.1", 9100)
    assert config.admin is not None
    assert config.admin.listen == HostPort("127.0.0.1", 9000)
    tokens = {t.name: (t.role, t.token_sha256) for t in config.admin.tokens}
    assert tokens == {
        "ops": (Role.ADMIN, hashlib.sha256(b"dev-admin-token").hexdigest()),
        "viewer": (Role.VIEWER, hashlib.sha256(b"dev-viewer-token").hexdigest()),
    }
    assert config.edge is not None
    assert config.edge.listen == HostPort("127.0.0.1", 8443)
    assert config.edge.workers == 1
    (demo,) = config.edge.certificates
    assert demo.name == "demo"
    assert demo.hostnames == ("localhost",)
    assert demo.certificate == var / "demo-pki" / "server-chain.pem"
    assert demo.private_key == var / "demo-pki" / "server.key"
    assert demo.origin == "http://127.0.0.1:8080"
    assert demo.default
    binding = demo.mutual_authentication
    assert binding.ca_set == "demo-clients"
    assert binding.send_ca_list_to_client
    assert binding.mode == "require"
    assert binding.identity_headers == ("xfcc",)
    assert not binding.ocsp.enabled
    assert config.demo.enabled
    assert config.demo.pki_dir == var / "demo-pki"
    assert config.demo.origin_listen == HostPort("127.0.0.1", 8080)
    assert config.demo.ca_set == "demo-clients"


AUTHORIZATION_TOML = """
mode = "report"
default = "deny"

[[rules]]
name = "partners"
path_prefix = "/api/"
methods = ["GET"]
allow = [{ san_uri = "spiffe://example.org/ns/*" }, { subject = { CN = "partner-*" } }]

[[rules]]
path_prefix = "/private/"
require_certificate = true
"""


def test_a_binding_takes_authorization_rules(conf_dir: Path) -> None:
    rules = tomllib.loads(AUTHORIZATION_TOML)
    policy = ma(parse(conf_dir, edit(base(), f"{MA}.authorization", rules))).authorization
    assert policy is not None
    assert (policy.mode, policy.default) == ("report", "deny")
    assert [(r.label, r.prefix, r.require_certificate) for r in policy.rules] == [
        ("partners", b"/api/", False),
        ("1", b"/private/", True),
    ]
    assert ma(parse(conf_dir, base())).authorization is None


def test_authorization_errors_name_the_dotted_key(conf_dir: Path) -> None:
    rules = tomllib.loads(AUTHORIZATION_TOML)
    rules["rules"][0]["allow"][1] = {"subject": {"cn": "x"}}
    reject(
        conf_dir,
        edit(base(), f"{MA}.authorization", rules),
        f"{MA_KEY}.authorization.rules[0].allow[1].subject.cn",
        "unknown attribute",
    )
    reject(
        conf_dir,
        edit(base(), f"{MA}.authorization", {"rules": [{"pathPrefix": "/"}]}),
        f"{MA_KEY}.authorization.rules[0].pathPrefix",
        "unknown key",
    )


def test_an_edge_node_needs_no_edge_certificates_of_its_own(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(
        '[node]\nnetwork = "STAGING"\nname = "e1"\nroles = ["edge"]\n'
        '[store]\nurl = "sqlite:///store.db"\n[edge]\nlisten = "127.0.0.1:0"\n'
    )
    loaded = load_config(config, environ={})
    assert loaded.edge is not None
    assert loaded.edge.certificates == ()


def test_client_records_defaults_and_keys(conf_dir: Path) -> None:
    records = parse(conf_dir, base()).edge
    assert records is not None
    assert records.client_records == ClientRecordsConfig()  # on, 7 days, 10,000, 10 s
    data = edit(base(), "edge.client_records", {"enabled": False, "window_days": 30})
    edge = parse(conf_dir, data).edge
    assert edge is not None
    assert (edge.client_records.enabled, edge.client_records.window_days) == (False, 30)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("enabled", "no", "must be a boolean"),
        ("window_days", 0, ""),
        ("window_days", 367, ""),
        ("max_per_binding", 0, ""),
        ("flush_interval", 0, ""),
        ("keep", 1, "unknown key"),
    ],
)
def test_client_records_bad_values_name_the_key(
    conf_dir: Path, key: str, value: Any, fragment: str
) -> None:
    data = edit(base(), f"edge.client_records.{key}", value)
    reject(conf_dir, data, f"edge.client_records.{key}", fragment)
