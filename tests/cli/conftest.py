"""A real admin API for the CLI tests.

aiohttp on 127.0.0.1 (ephemeral port) in a background thread's event loop, SQLite in tmp_path, and
the reconciler running as `edgeproxy serve` runs it. Edge nodes are simulated by the fleet reports
real nodes send. The PKI is generated at test time, never checked in.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edgeproxy.admin.app import create_admin_app
from edgeproxy.admin.auth import TokenAuthenticator
from edgeproxy.config.model import TokenConfig
from edgeproxy.domain.model import Binding, Network, Node, Role
from edgeproxy.domain.secrets import KeyRing, generate_kek, parse_kek
from edgeproxy.node.main import main
from edgeproxy.runtime.tasks import TaskGroup, every
from edgeproxy.service.truststore import Truststore
from edgeproxy.store import Store, open_store
from edgeproxy.tls.recheck import version_judge
from support.loopback import serve_app
from support.pki import CA_KEY_USAGE, build_certificate, common_name, private_key_pem

ADMIN_TOKEN = "admin-secret-token-7f3a"
VIEWER_TOKEN = "viewer-secret-token-91bc"
T = TypeVar("T")


@dataclass
class Clock:
    """The service's clock: real time plus an offset a test can move forward."""

    offset: timedelta = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class AdminServer:
    db: Path
    ssl_context: ssl.SSLContext | None = None
    clock: Clock = field(default_factory=Clock)

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="admin-api")
        self._thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        self.store: Store = open_store(f"sqlite:///{self.db}")
        await self.store.open()
        self.truststore = Truststore.build(
            self.store,
            clock=self.clock,
            keys=KeyRing(parse_kek(generate_kek())),
            judge=version_judge,
        )
        self.fleet = self.truststore.fleet
        tokens = (
            TokenConfig("ops", Role.ADMIN, hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()),
            TokenConfig("ci", Role.VIEWER, hashlib.sha256(VIEWER_TOKEN.encode()).hexdigest()),
        )
        app = create_admin_app(
            self.truststore,
            TokenAuthenticator(tokens),
        )
        self._runner, self.port = await serve_app(app, ssl_context=self.ssl_context)
        self._tasks = TaskGroup()
        self._tasks.spawn(
            every(0.05, self.truststore.reconciler.reconcile, "reconcile"), "reconciler"
        )

    async def _stop(self) -> None:
        await self._tasks.close()
        await self._runner.cleanup()
        await self.store.close()

    def stop(self) -> None:
        self.run(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}"

    def spawn(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        """Run `coro` on the server's loop while the test thread runs the CLI."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.spawn(coro).result(10)

    # -- simulated edge nodes ------------------------------------------------------------------

    async def revision(self) -> int:
        return (await self.fleet.trust_view(Network.STAGING)).revision

    async def report(
        self, name: str, *, network: Network = Network.STAGING, revision: int | None = None,
        errors: dict[str, str] | None = None, ca_set: str = "partners",
    ) -> None:  # fmt: skip
        """What an edge node sends after applying the store's state (or failing to)."""
        now = self.clock()
        await self.fleet.report_node(
            Node(
                name=name,
                network=network,
                roles=("edge",),
                started_at=now,
                last_seen=now,
                bindings=(Binding("api", ("api.example.com",), ca_set),),
                applied_revision=await self.revision() if revision is None else revision,
                apply_errors=errors or {},
                applied_at=now,
            )
        )

    async def apply_after_change(
        self, plan: list[tuple[float, str, dict[str, str] | None]], since: int
    ) -> None:
        """Once the store moves past revision `since`, nodes apply it: (delay, name, errors)."""
        for _ in range(200):
            if await self.revision() > since:
                break
            await asyncio.sleep(0.02)
        for delay, name, errors in plan:
            await asyncio.sleep(delay)
            await self.report(name, errors=errors)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AdminServer]:
    admin = AdminServer(tmp_path / "edgeproxy.db")
    admin.start()
    yield admin
    admin.stop()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(autouse=True)
def _no_operator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's own admin URL or token must never leak into a test.
    monkeypatch.delenv("EDGEPROXY_ADMIN_URL", raising=False)
    monkeypatch.delenv("EDGEPROXY_TOKEN", raising=False)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


Cli = Callable[..., Result]


@pytest.fixture
def cli(
    server: AdminServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    """`cli("ca-sets", "list")`: main() against the test server with the admin token."""
    monkeypatch.setenv("EDGEPROXY_ADMIN_URL", server.url)
    monkeypatch.setenv("EDGEPROXY_TOKEN", ADMIN_TOKEN)

    def run(*argv: str) -> Result:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


# -- PKI ---------------------------------------------------------------------------------------


def short_lived_ca(days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA valid from yesterday for `days` days (trustme's last a millennium)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = build_certificate(
        common_name(f"Short-lived CA {days}d"),
        key,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=days),
        key_usage=CA_KEY_USAGE,
        key_id=True,
    )
    return cert, key


@dataclass(frozen=True)
class Pki:
    """PEM files of a test PKI in a temporary directory."""

    dir: Path
    root: trustme.CA

    def path(self, name: str) -> str:
        return str(self.dir / name)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    root, other = trustme.CA(), trustme.CA()
    intermediate = root.create_child_ca()
    leaf = root.issue_cert("client.example.com")
    short, short_key = short_lived_ca(days=5)
    files: dict[str, list[bytes | trustme.Blob]] = {
        # The seed workflow's upload: one file holding a root, its intermediate and another root.
        "bundle.pem": [root.cert_pem, intermediate.cert_pem, other.cert_pem],
        "intermediate.pem": [intermediate.cert_pem],
        "other.pem": [trustme.CA().cert_pem],
        "leaf.pem": [leaf.cert_chain_pems[0]],
        "with-key.pem": [other.cert_pem, leaf.private_key_pem],
        "short.pem": [short.public_bytes(serialization.Encoding.PEM)],
    }
    directory = tmp_path / "pki"
    directory.mkdir()
    for name, blobs in files.items():
        text = b"".join(b if isinstance(b, bytes) else b.bytes() for b in blobs)
        (directory / name).write_bytes(b"# a comment the upload ignores\n" + text)
    (directory / "key-only.txt").write_bytes(private_key_pem(short_key))
    return Pki(directory, root)
