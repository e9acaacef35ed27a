"""Running a node for the end-to-end tests: its config file, in-process or as a subprocess, and a
client for its status listener; `admin_client` points `support.admin.Admin` at a node.

In-process nodes run the real `edgeproxy.node.run.serve` in the test's event loop; the role classes
it constructs are wrapped (never replaced) so the test learns the ports bound for `:0`.
Subprocess nodes (`python -m edgeproxy serve -c FILE`) are for what needs real signals; they bind
ports picked free just before.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edgeproxy.admin.openapi import openapi_document
from edgeproxy.admin.server import AdminRole
from edgeproxy.config.model import Config
from edgeproxy.config.parse import load_config
from edgeproxy.dataplane.edge import EdgeRole
from edgeproxy.node import run as node_module
from edgeproxy.node import signals as signals_module
from edgeproxy.node.status import StatusRole
from support.admin import CA_SET, Admin, Api, OpenApiChecker

ADMIN_TOKEN = "e2e-admin-token"  # a test token; the config holds its SHA-256
POLL = 0.05  # seconds between polls of anything
WAIT = 15.0  # seconds: the longest any poll may take before the test fails


@dataclass(frozen=True)
class EdgeSpec:
    """One `[[edge.certificates]]` table."""

    name: str
    hostnames: tuple[str, ...]
    mode: str = "require"
    on_failure: str = "deny"
    identity_headers: tuple[str, ...] = ("xfcc",)
    send_ca_list: bool = False
    ca_set: str = CA_SET
    origin: str | None = None  # default: the recording origin
    # The binding's `authorization` table, in TOML spelling (snake_case keys); None: no rules.
    authorization: dict[str, Any] | None = None
    default: bool = False  # served when the client sends no SNI
    ocsp: dict[str, Any] | None = None  # the binding's `ocsp` table; None: OCSP off


def default_edges() -> list[EdgeSpec]:
    """The three bindings the tests use (the server certificate covers all their names)."""
    return [
        EdgeSpec(
            "api",
            ("api.test", "*.api.test"),
            identity_headers=("xfcc", "rfc9440"),
            send_ca_list=True,
        ),
        EdgeSpec("other", ("other.test",), mode="request", on_failure="deny"),
        EdgeSpec(
            "forward",
            ("forward.test",),
            mode="request",
            on_failure="forward",
            identity_headers=("xfcc", "rfc9440"),
        ),
    ]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # a JSON string is a valid TOML basic string
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table; keys quoted (a dotted OID is no bare key)
        return "{ " + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


@dataclass
class NodeFiles:
    """Everything a node's config names, in one directory of its own."""

    directory: Path
    origin_url: str
    server_chain: Path
    server_key: Path
    name: str = "e2e-edge"
    network: str = "STAGING"
    roles: tuple[str, ...] = ("admin", "edge")
    store_url: str | None = None  # default: an SQLite file in `directory`
    edges: list[EdgeSpec] = field(default_factory=default_edges)
    limits: dict[str, float] = field(
        default_factory=lambda: {"client_hello_timeout": 1.0, "drain_timeout": 10.0}
    )
    # Batches often, so a test sees what a node recorded within a poll.
    client_records: dict[str, object] = field(default_factory=lambda: {"flush_interval": 0.2})
    admin_port: int = 0
    status_port: int = 0
    edge_port: int = 0
    snapshot_at: Path | None = None  # default: var/<name>.snapshot.json
    log: dict[str, Any] = field(default_factory=dict)  # the [log] table, when not empty
    fleet: dict[str, float] = field(default_factory=dict)  # the [fleet] table, when given
    # (name, role, token) of each admin token; the config holds their SHA-256.
    tokens: tuple[tuple[str, str, str], ...] = (("ops", "admin", ADMIN_TOKEN),)
    kek_file: Path | None = None  # [store] key_encryption_key_file
    workers: int = 1  # [edge] workers: edge processes sharing the port (written when not 1)

    @property
    def path(self) -> Path:
        return self.directory / "node.toml"

    @property
    def snapshot(self) -> Path:
        return self.snapshot_at or self.directory / "var" / f"{self.name}.snapshot.json"

    @property
    def database(self) -> Path:
        return self.directory / "var" / "edgeproxy.db"

    def text(self) -> str:
        tokens = ", ".join(
            f'{{ name = "{name}", role = "{role}", '
            f'token_sha256 = "{hashlib.sha256(token.encode()).hexdigest()}" }}'
            for name, role, token in self.tokens
        )
        lines = [
            "[node]",
            f"name = {_toml(self.name)}",
            f"network = {_toml(self.network)}",
            f"roles = {_toml(self.roles)}",
            f"snapshot = {_toml(self.snapshot)}",
            "",
            "[store]",
            f"url = {_toml(self.store_url or 'sqlite:///' + str(self.database))}",
            "poll_interval = 0.02",
            *([f"key_encryption_key_file = {_toml(self.kek_file)}"] if self.kek_file else []),
            "",
            *(
                ["[fleet]", *(f"{k} = {_toml(v)}" for k, v in self.fleet.items()), ""]
                if self.fleet
                else []
            ),
            "[admin]",
            f'listen = "127.0.0.1:{self.admin_port}"',
            f"tokens = [{tokens}]",
            "",
            "[status]",
            f'listen = "127.0.0.1:{self.status_port}"',
            "",
            "[edge]",
            f'listen = "127.0.0.1:{self.edge_port}"',
            *([f"workers = {self.workers}"] if self.workers != 1 else []),
            "",
            "[edge.limits]",
            *(f"{k} = {_toml(v)}" for k, v in self.limits.items()),
            "",
            "[edge.client_records]",
            *(f"{k} = {_toml(v)}" for k, v in self.client_records.items()),
        ]
        if self.log:
            lines += ["", "[log]", *(f"{k} = {_toml(v)}" for k, v in self.log.items())]
        for edge in self.edges:
            lines += [
                "",
                "[[edge.certificates]]",
                f"name = {_toml(edge.name)}",
                f"hostnames = {_toml(edge.hostnames)}",
                f"certificate = {_toml(self.server_chain)}",
                f"private_key = {_toml(self.server_key)}",
                f"origin = {_toml(edge.origin or self.origin_url)}",
                f"default = {_toml(edge.default)}",
                "[edge.certificates.mutual_authentication]",
                f"ca_set = {_toml(edge.ca_set)}",
                f"send_ca_list_to_client = {_toml(edge.send_ca_list)}",
                f"mode = {_toml(edge.mode)}",
                f"on_failure = {_toml(edge.on_failure)}",
                f"identity_headers = {_toml(edge.identity_headers)}",
            ]
            if edge.authorization is not None:
                lines.append(f"authorization = {_toml(edge.authorization)}")
            if edge.ocsp is not None:
                lines.append(f"ocsp = {_toml(edge.ocsp)}")
        return "\n".join(lines) + "\n"

    def write(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path.write_text(self.text(), encoding="utf-8")
        return self.path

    def use_free_ports(self) -> None:
        self.admin_port, self.status_port, self.edge_port = free_ports(3)


def free_ports(count: int) -> list[int]:
    """Loopback ports nobody listens on right now (bound together, then released)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


async def poll(
    check: Callable[[], Any], what: str, *, timeout: float = WAIT, interval: float = POLL
) -> Any:
    """Await `check()` (sync or async) until it returns something truthy; bounded in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    for _ in range(int(timeout / interval) + 1):
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if loop.time() >= deadline:
            break
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


# -- in-process node ------------------------------------------------------------------------------


class InProcessNode:
    """`edgeproxy.node.run.serve(config, stop, reload)` as a task of the test's event loop."""

    def __init__(self, files: NodeFiles, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files = files
        self.config: Config = load_config(files.write())
        self.stop_event = asyncio.Event()
        self.reload_event = asyncio.Event()
        self.task: asyncio.Task[int] | None = None
        self.admin: AdminRole | None = None
        self.edge: EdgeRole | None = None
        self.status: StatusRole | None = None
        self.reloads = 0  # reload requests the node has finished handling
        self._monkeypatch = monkeypatch

    def _capture(self) -> None:
        def wrap(attr: str, cls: type) -> None:
            def make(*args: Any, **kwargs: Any) -> Any:
                role = cls(*args, **kwargs)
                setattr(self, attr, role)
                return role

            self._monkeypatch.setattr(node_module, cls.__name__, make)

        wrap("admin", AdminRole)
        wrap("edge", EdgeRole)
        wrap("status", StatusRole)
        handle = signals_module.reload_config

        async def counted(*args: Any) -> None:
            await handle(*args)
            self.reloads += 1

        self._monkeypatch.setattr(signals_module, "reload_config", counted)

    async def start(self) -> InProcessNode:
        self._capture()
        self.task = asyncio.create_task(
            node_module.serve(self.config, self.stop_event, self.reload_event), name="e2e-node"
        )

        async def started() -> bool:
            if self.task is not None and self.task.done():
                self.task.result()  # raises what serve() raised
                raise AssertionError("serve() returned before it was asked to stop")
            if self.status is None:
                return False
            try:
                port = self.status.port
            except (AssertionError, IndexError):
                return False
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/healthz") as reply,
            ):
                return reply.status == 200

        await poll(started, "the node to serve /healthz")
        return self

    async def reload(self) -> None:
        """What SIGHUP does in `edgeproxy.node.run.run`; returns once the reload was handled (the
        file read and the contexts built, off the loop, and swapped in or rejected)."""
        handled = self.reloads
        self.reload_event.set()
        await poll(lambda: self.reloads > handled, "the node to handle the reload")

    async def stop(self) -> int | None:
        """Stop the node (graceful drain) and return serve()'s exit status."""
        task, self.task = self.task, None
        if task is None or task.done():  # never started, or start() already raised its failure
            return None
        self.stop_event.set()
        async with asyncio.timeout(WAIT):
            return await task

    @property
    def edge_port(self) -> int:
        assert self.edge is not None
        return self.edge.port

    @property
    def status_url(self) -> str:
        assert self.status is not None
        return f"http://127.0.0.1:{self.status.port}"

    @property
    def admin_url(self) -> str:
        assert self.admin is not None
        return f"http://127.0.0.1:{self.admin.port}"


# -- subprocess node ------------------------------------------------------------------------------


class SubprocessNode:
    """`python -m edgeproxy serve -c FILE`, stderr (JSON log lines) to a file the test reads."""

    def __init__(self, files: NodeFiles, env: Mapping[str, str] | None = None) -> None:
        if not files.admin_port:
            files.use_free_ports()
        self.files = files
        self.env = dict(env or {})  # added to the test's environment (e.g. TMPDIR)
        self.path = files.write()
        self.stderr_path = files.directory / "node.stderr"
        self.stdout_path = files.directory / "node.stdout"
        self.process: asyncio.subprocess.Process | None = None

    async def spawn(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "edgeproxy", "serve", "-c", str(self.path),
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err, env=env,
            )  # fmt: skip

    async def start(self) -> SubprocessNode:
        await self.spawn()

        async def ready() -> bool:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(
                    f"the node exited with {self.process.returncode}: {self.stderr()[-2000:]}"
                )
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"{self.status_url}/healthz") as reply,
                ):
                    return reply.status == 200
            except aiohttp.ClientError:
                return False

        await poll(ready, "the node process to serve /healthz", timeout=30)
        return self

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.stderr().splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
        return lines

    def messages(self) -> list[str]:
        return [str(line.get("message")) for line in self.log_lines()]

    def send(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait(self, timeout: float = WAIT) -> int:
        assert self.process is not None
        async with asyncio.timeout(timeout):
            return await self.process.wait()

    async def kill(self) -> None:
        """Teardown: whatever the test left running ends here (our own child, by its pid)."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    @property
    def edge_port(self) -> int:
        return self.files.edge_port

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.files.status_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.files.admin_port}"


# -- admin API and status clients -----------------------------------------------------------------


@functools.cache
def _checker() -> OpenApiChecker:
    return OpenApiChecker(openapi_document())


def admin_client(http: aiohttp.ClientSession, url: str) -> Admin:
    """The node's admin API as its operator uses it; every exchange checked against OpenAPI."""
    return Admin(Api(http, _checker(), {"admin": ADMIN_TOKEN}, origin=url), poll)


class Status:
    """The status listener: /metrics, /healthz, /readyz, /status."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self.http = http
        self.url = url

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.url + path) as reply:
            return reply.status, await reply.text()

    async def json(self, path: str) -> tuple[int, Any]:
        status, text = await self.get(path)
        return status, json.loads(text)

    async def metrics_text(self) -> str:
        status, text = await self.get("/metrics")
        assert status == 200
        return text

    async def metrics(self) -> Metrics:
        return Metrics.parse(await self.metrics_text())

    async def wait_revision_after(self, revision: int) -> Any:
        """Poll /status until the node applied a store revision newer than `revision`."""

        async def newer() -> Any:
            _, body = await self.json("/status")
            trust = body.get("trust") or {}
            return body if trust.get("revision", -1) > revision else None

        return await poll(newer, f"the node to apply a revision after {revision}")


@dataclass(frozen=True)
class Metrics:
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    @classmethod
    def parse(cls, text: str) -> Metrics:
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
        return cls(samples)

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= set(ls))

    def handshakes(self, reason: str, edge: str | None = None) -> float:
        labels = {"reason": reason, **({"edge_certificate": edge} if edge is not None else {})}
        return self.value("edgeproxy_tls_handshakes_total", **labels)


async def not_started(files: NodeFiles) -> tuple[dict[str, Any], SubprocessNode]:
    """Spawn a node that must not start: exit status 1, no traceback, and its one critical
    "node not started" line (returned with the node, for its stderr and files)."""
    node = SubprocessNode(files)
    await node.spawn()
    try:
        code = await node.wait()
    finally:
        await node.kill()
    assert code == 1
    assert "Traceback" not in node.stderr()
    (line,) = [line for line in node.log_lines() if line.get("message") == "node not started"]
    assert line["level"] == "critical"
    return line, node
