"""`edge.workers = N` (docs/architecture.md) with real processes on 127.0.0.1: one SO_REUSEPORT
port served by every worker, a fleet row per worker, metrics summed over workers, supervision and
signals.

Each accepting case has its refusing twin. Waits are bounded polls; nothing asserts a duration.
The node, its admin API, its status listener, the PKI and the origin come from tests/support.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from edgeproxy.node import workers
from support.admin import Admin
from support.nodes import EdgeSpec, Metrics, NodeFiles, Status, SubprocessNode, admin_client, poll
from support.origin import RecordingOrigin
from support.pki import DAY, Issued, Pki, common_name, leaf_certificate
from support.tools import promtool

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

HOST = "api.example.test"
CONNECTIONS = 40
WAIT = 30.0  # seconds: the longest poll here (a worker restart, 40 handshakes)


# -- peers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Peers:
    server_ca: Issued
    server_chain: Path
    server_key: Path
    client_ca: Issued  # the CA set's certificate
    other_ca: Issued  # a second, unrelated CA (a distinct version of the set)
    client: Path  # key + certificate, issued by the set's CA
    rogue: Path  # key + certificate, issued by a CA nobody trusts

    def context(self, identity: Path) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.server_ca.pem)
        context.load_cert_chain(identity)
        return context


def _identity(pki: Pki, issuer: Issued, cn: str, path: Path) -> Path:
    key = pki.key(fresh=True)
    cert = leaf_certificate(
        common_name(cn), key, issuer, not_before=pki.now - DAY, not_after=pki.now + 30 * DAY
    )
    leaf = Issued(cert, key)
    path.write_text(leaf.key_pem + leaf.pem)
    return path


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Peers:
    base = tmp_path_factory.mktemp("pki")
    pki = Pki()
    # Fresh keys: four CAs that share nothing but the test.
    server_ca, client_ca, other_ca, rogue_ca = (
        pki.ca(f"{name} CA", key=pki.key(fresh=True))
        for name in ("Server", "Partner", "Other", "Rogue")
    )
    server = pki.server(server_ca, (HOST,))
    (base / "server.pem").write_text(server.pem)
    (base / "server.key").write_text(server.key_pem)
    return Peers(
        server_ca=server_ca,
        server_chain=base / "server.pem",
        server_key=base / "server.key",
        client_ca=client_ca,
        other_ca=other_ca,
        client=_identity(pki, client_ca, "partner@example.test", base / "client.pem"),
        rogue=_identity(pki, rogue_ca, "rogue@example.test", base / "rogue.pem"),
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def origin() -> AsyncIterator[RecordingOrigin]:
    recording = await RecordingOrigin().start()
    yield recording
    await recording.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session


def _paths(origin: RecordingOrigin, prefix: str) -> list[str]:
    return [r.path for r in origin.requests if r.path.startswith(prefix)]


def _verified(origin: RecordingOrigin, prefix: str) -> set[str]:
    """Every X-Client-Cert-Verify value the origin saw under `prefix` ("" for a request without)."""
    return {
        ",".join(r.all("X-Client-Cert-Verify"))
        for r in origin.requests
        if r.path.startswith(prefix)
    }


# -- a client, one raw HTTP/1.1 exchange at a time ------------------------------------------------

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
REFUSED = (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)


async def _connect(port: int, context: ssl.SSLContext) -> Connection | None:
    try:
        async with asyncio.timeout(10):
            return await asyncio.open_connection(
                "127.0.0.1", port, ssl=context, server_hostname=HOST
            )
    except (ssl.SSLError, ConnectionError):
        return None


async def _request(connection: Connection, path: str, *, close: bool) -> int | None:
    """One GET on an open TLS connection: its status, or None when the proxy refused it."""
    reader, writer = connection
    keep = "close" if close else "keep-alive"
    try:
        async with asyncio.timeout(10):
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: {keep}\r\n\r\n".encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            fields = {
                k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
            }
            await reader.readexactly(int(fields.get("content-length", "0")))
    except REFUSED:
        return None  # TLS 1.3: the client learns of the refusal at its first read
    return int(lines[0].split()[1])


async def _close(connection: Connection) -> None:
    writer = connection[1]
    writer.close()
    with contextlib.suppress(*REFUSED, TimeoutError):
        async with asyncio.timeout(5):
            await writer.wait_closed()


async def _get(port: int, context: ssl.SSLContext, path: str) -> int | None:
    """A new connection, one request, closed."""
    connection = await _connect(port, context)
    if connection is None:
        return None
    try:
        return await _request(connection, path, close=True)
    finally:
        await _close(connection)


# -- the node under test -------------------------------------------------------------------------


def _gone(pid: int) -> bool:
    """The process exited (a zombie nobody reaped yet counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in {"Z", "X"}


@dataclass
class Pool:
    """A node running `edge.workers` processes (support.nodes.SubprocessNode), with clients for
    its status listener and (with the admin role) its admin API."""

    node: SubprocessNode
    status: Status
    admin: Admin

    @property
    def process(self) -> asyncio.subprocess.Process:
        assert self.node.process is not None
        return self.node.process

    @property
    def edge(self) -> int:
        return self.node.edge_port

    @property
    def database(self) -> Path:
        return self.node.files.database

    def log(self) -> str:
        return self.node.stderr()

    async def body(self, path: str) -> Any:
        return (await self.status.json(path))[1]

    async def workers(self) -> list[dict[str, Any]]:
        return list((await self.body("/status"))["workers"])

    async def metrics(self) -> Metrics:
        return await self.status.metrics()

    async def handshakes(self, result: str, reason: str = "") -> float:
        return (await self.metrics()).value(
            "edgeproxy_tls_handshakes_total",
            edge_certificate="api",
            network="STAGING",
            result=result,
            reason=reason,
        )

    async def rows(self) -> dict[str, dict[str, Any]]:
        return {n["name"]: n for n in (await self.admin.call("GET", "/nodes"))["nodes"]}

    async def ready(self) -> bool:
        if self.process.returncode is not None:
            raise AssertionError(f"the node exited with {self.process.returncode}:\n{self.log()}")
        try:
            return (await self.status.get("/readyz"))[0] == 200
        except aiohttp.ClientError:
            return False

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.node.send(signal.SIGTERM)
        return await self.node.wait(timeout=WAIT)


async def _start(
    directory: Path,
    peers: Peers,
    origin: RecordingOrigin,
    http: aiohttp.ClientSession,
    *,
    workers: int,
    admin: bool = True,
) -> Pool:
    files = NodeFiles(
        directory,
        origin.url,
        peers.server_chain,
        peers.server_key,
        name="wk",
        roles=("admin", "edge") if admin else ("edge",),
        edges=[EdgeSpec("api", (HOST,), default=True)],
        workers=workers,
    )
    (directory / "tmp").mkdir(parents=True)
    # The worker metrics directory lands here, where the test can look for it.
    node = SubprocessNode(files, env={"TMPDIR": str(directory / "tmp")})
    try:
        await node.start()
        pool = Pool(node, Status(http, node.status_url), admin_client(http, node.admin_url))
        await poll(pool.ready, "the node to be ready", timeout=WAIT)
    except BaseException:
        await node.kill()
        raise
    return pool


Start = Callable[..., Awaitable[Pool]]


@pytest_asyncio.fixture(loop_scope="module")
async def start(
    tmp_path: Path, peers: Peers, origin: RecordingOrigin, http: aiohttp.ClientSession
) -> AsyncIterator[Start]:
    """Start a node in the test's directory; whatever the test left running is killed after it."""
    started: list[Pool] = []

    async def run(*, workers: int, admin: bool = True) -> Pool:
        pool = await _start(tmp_path, peers, origin, http, workers=workers, admin=admin)
        started.append(pool)
        return pool

    yield run
    for pool in started:
        await pool.node.kill()


async def _complete(admin: Admin, set_id: int, activation: Any) -> Any:
    async def done() -> Any:
        state = await admin.activation(set_id, activation)
        assert state["activationStatus"] != "FAILED", state
        return state if state["activationStatus"] == "COMPLETE" else None

    return await poll(done, "the activation to complete", timeout=WAIT)


@dataclass
class Fleet:
    node: Pool
    set_id: int


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(
    tmp_path_factory: pytest.TempPathFactory,
    peers: Peers,
    origin: RecordingOrigin,
    http: aiohttp.ClientSession,
) -> AsyncIterator[Fleet]:
    """A 2-worker node with admin, its `partners` set trusting the client CA active on STAGING."""
    node = await _start(tmp_path_factory.mktemp("fleet"), peers, origin, http, workers=2)
    try:

        async def both_rows() -> bool:
            return {"wk/w0", "wk/w1"} <= set(await node.rows())

        await poll(both_rows, "both worker rows", timeout=WAIT)
        set_id = await node.admin.create_set()
        await node.admin.create_version(set_id, [peers.client_ca.pem])
        await _complete(node.admin, set_id, await node.admin.activate(set_id, 1))
        yield Fleet(node, set_id)
    finally:
        with contextlib.suppress(AssertionError, TimeoutError):
            await node.stop()
        await node.node.kill()


# -- one port, every worker ----------------------------------------------------------------------


async def test_every_worker_registers_its_own_fleet_row(fleet: Fleet) -> None:
    rows = await fleet.node.rows()
    assert sorted(rows) == ["wk/w0", "wk/w1"]
    assert all(
        r["roles"] == ["edge"] and r["appliedVersions"] == {"partners": 1} for r in rows.values()
    )
    body = await fleet.node.body("/status")
    assert body["node"] == "wk"
    assert [w["node"] for w in body["workers"]] == ["wk/w0", "wk/w1"]
    assert body["workers"][0]["pid"] == fleet.node.process.pid


async def test_one_worker_registers_the_node_under_its_plain_name(
    tmp_path: Path, start: Start
) -> None:
    node = await start(workers=1)
    try:
        rows = await poll(node.rows, "the node row")
        assert sorted(rows) == ["wk"]
        assert rows["wk"]["roles"] == ["admin", "edge"]
        assert await node.workers() == []  # one process: no pool to list
        assert list((tmp_path / "tmp").iterdir()) == []  # no worker metrics directory
    finally:
        assert await node.stop() == 0


async def test_both_workers_accept_connections_on_the_shared_port(
    fleet: Fleet, peers: Peers, origin: RecordingOrigin
) -> None:
    node, context = fleet.node, peers.context(peers.client)
    before = await node.handshakes("success")
    held: list[Connection] = []
    try:
        for i in range(CONNECTIONS):
            connection = await _connect(node.edge, context)
            assert connection is not None
            held.append(connection)
            assert await _request(connection, f"/held/{i}", close=False) == 200

        # The kernel spreads new connections over the listeners; if only one worker accepted,
        # the other would hold none of the 40.
        async def counts() -> list[int] | None:
            found = [w["connections"] for w in await node.workers()]
            return found if sum(found) == CONNECTIONS else None

        found = await poll(counts, "every connection in the worker reports", timeout=WAIT)
        assert all(count > 0 for count in found), found
    finally:
        for connection in held:
            await _close(connection)
    assert sorted(_paths(origin, "/held/")) == sorted(f"/held/{i}" for i in range(CONNECTIONS))
    assert _verified(origin, "/held/") == {"SUCCESS"}
    assert await node.handshakes("success") - before == CONNECTIONS


async def test_a_client_of_another_ca_is_refused_on_the_shared_port(
    fleet: Fleet, peers: Peers, origin: RecordingOrigin
) -> None:
    node, context = fleet.node, peers.context(peers.rogue)
    before = await node.handshakes("success"), await node.handshakes("failure", "unknown_ca")
    for i in range(CONNECTIONS):
        assert await _get(node.edge, context, f"/rogue/{i}") is None
    assert _paths(origin, "/rogue/") == []

    async def counted() -> bool:
        return await node.handshakes("failure", "unknown_ca") - before[1] == CONNECTIONS

    await poll(counted, "every refusal in /metrics", timeout=WAIT)
    assert await node.handshakes("success") == before[0]


async def test_metrics_add_up_the_handshakes_of_every_worker(fleet: Fleet, peers: Peers) -> None:
    node, context = fleet.node, peers.context(peers.client)
    requests = {"edge_certificate": "api", "code": "200", "protocol": "h1"}
    before = await node.handshakes("success")
    served = (await node.metrics()).value("edgeproxy_http_requests_total", **requests)
    for i in range(CONNECTIONS):
        assert await _get(node.edge, context, f"/sum/{i}") == 200
    assert await node.handshakes("success") - before == CONNECTIONS
    after = (await node.metrics()).value("edgeproxy_http_requests_total", **requests)
    assert after - served == CONNECTIONS

    # A live-summed gauge: back to zero once every worker closed its connections.
    async def idle() -> bool:
        return (await node.metrics()).value("edgeproxy_connections_active") == 0

    await poll(idle, "no open connection", timeout=WAIT)
    active = (await node.metrics()).value(
        "edgeproxy_trust_active_version", ca_set="partners", network="STAGING"
    )
    assert active == 1


# -- activation and readiness ---------------------------------------------------------------------


async def test_an_activation_completes_only_when_every_worker_applied_it(
    fleet: Fleet, peers: Peers
) -> None:
    node, admin = fleet.node, fleet.node.admin
    version = await admin.create_version(fleet.set_id, [peers.client_ca.pem, peers.other_ca.pem])
    stopped = (await node.workers())[1]["pid"]
    os.kill(stopped, signal.SIGSTOP)
    try:
        activation = await admin.activate(fleet.set_id, version)

        # Worker 0 applied it, worker 1 cannot: half done, not complete.
        async def half() -> Any:
            state = await admin.activation(fleet.set_id, activation)
            return state if state["percentComplete"] == 50 else None

        state = await poll(half, "worker 0 to apply", timeout=WAIT)
        assert state["activationStatus"] == "IN_PROGRESS"
        assert (await node.rows())["wk/w1"]["appliedVersions"] == {"partners": 1}

        # A worker that stops reporting makes the node unready, and says which one.
        async def unready() -> Any:
            code, body = await node.status.json("/readyz")
            return body if code == 503 else None

        ready = await poll(unready, "/readyz to notice", timeout=WAIT)
        assert any("worker 1" in reason for reason in ready["reasons"]), ready
    finally:
        os.kill(stopped, signal.SIGCONT)
    await _complete(admin, fleet.set_id, activation)
    rows = await node.rows()
    assert all(r["appliedVersions"] == {"partners": version} for r in rows.values()), rows
    await poll(node.ready, "/readyz to recover", timeout=WAIT)
    # Every worker retired version 1's series: only the new version's certificates are shown.
    metrics = await node.metrics()
    expiry = [
        dict(labels)["version"]
        for name, labels in metrics.samples
        if name == "edgeproxy_ca_certificate_expiry_timestamp_seconds"
    ]
    assert sorted(expiry) == [str(version)] * 2
    active = metrics.value("edgeproxy_trust_active_version", ca_set="partners", network="STAGING")
    assert active == 2


async def test_the_summed_exposition_passes_promtool(fleet: Fleet) -> None:
    text = await fleet.node.status.metrics_text()
    result = subprocess.run(
        [promtool(), "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


# -- supervision and signals ----------------------------------------------------------------------


async def test_a_killed_worker_is_restarted_and_the_node_keeps_serving(
    fleet: Fleet, peers: Peers
) -> None:
    node, context = fleet.node, peers.context(peers.client)
    held = [c for _ in range(CONNECTIONS // 2) if (c := await _connect(node.edge, context))]
    for i, connection in enumerate(held):
        assert await _request(connection, f"/before-kill/{i}", close=False) == 200

    async def holding() -> Any:
        worker = (await node.workers())[1]
        return worker if worker["connections"] > 0 else None

    victim = (await poll(holding, "worker 1 to hold connections", timeout=WAIT))["pid"]
    os.kill(victim, signal.SIGKILL)
    for connection in held:
        await _close(connection)

    async def replaced() -> Any:
        worker = (await node.workers())[1]
        return worker if worker["pid"] != victim and worker["ready"] else None

    restarted = await poll(replaced, "a new worker 1", timeout=WAIT)
    assert not _gone(node.process.pid)
    assert "worker exited unexpectedly" in node.node.messages()
    assert "signal SIGKILL" in node.log()
    await poll(node.ready, "/readyz", timeout=WAIT)
    for i in range(CONNECTIONS):
        assert await _get(node.edge, context, f"/after-kill/{i}") == 200

    # The dead worker's open connections leave the live gauge with it.
    async def idle() -> bool:
        return (await node.metrics()).value("edgeproxy_connections_active") == 0

    await poll(idle, "no open connection", timeout=WAIT)
    assert restarted["node"] == "wk/w1"
    assert (await node.rows())["wk/w1"]["live"]


async def test_a_worker_that_keeps_dying_makes_the_node_give_up(start: Start) -> None:
    node = await start(workers=2, admin=False)
    killed: set[int] = set()
    for _ in range(workers.MAX_RESTARTS + 1):

        async def fresh() -> int | None:
            pid = int((await node.workers())[1]["pid"])
            return pid if pid not in killed else None

        pid = await poll(fresh, "a worker 1 to kill", timeout=WAIT)
        os.kill(pid, signal.SIGKILL)
        killed.add(pid)
    assert await node.node.wait(timeout=WAIT) != 0
    assert "workers keep exiting; giving up" in node.node.messages()


async def test_sigterm_drains_every_worker_and_exits_0(tmp_path: Path, start: Start) -> None:
    node = await start(workers=2, admin=False)
    pids = [w["pid"] for w in await node.workers()]
    shared = list((tmp_path / "tmp").iterdir())
    assert [p.name.startswith("edgeproxy-metrics-") for p in shared] == [True]
    assert await node.stop() == 0
    assert all(_gone(pid) for pid in pids)
    assert list((tmp_path / "tmp").iterdir()) == []  # the worker metrics directory is removed
    with sqlite3.connect(node.database) as db:
        assert db.execute("SELECT name FROM nodes").fetchall() == []  # every worker left
    assert node.node.messages().count("worker stopped") == 1
    assert "status 0" in node.log()


async def test_workers_drain_and_leave_when_the_parent_is_killed(start: Start) -> None:
    node = await start(workers=2, admin=False)
    child = (await node.workers())[1]["pid"]
    node.process.kill()
    await node.node.wait(timeout=10)
    await poll(lambda: _gone(child), "the orphaned worker to exit", timeout=WAIT)
    with sqlite3.connect(node.database) as db:
        names = [n for (n,) in db.execute("SELECT name FROM nodes")]
    assert names == ["wk/w0"]  # the killed parent could not leave; its worker did
    assert "the parent process is gone; draining" in node.node.messages()


async def test_sighup_reloads_every_worker(
    start: Start, peers: Peers, origin: RecordingOrigin
) -> None:
    # No CA set is active: under `require` every client is refused in the handshake; under
    # `request` + `deny` the handshake completes and each request gets 403 instead.
    node = await start(workers=2, admin=False)
    context = peers.context(peers.client)

    async def codes() -> list[int | None]:
        return [await _get(node.edge, context, f"/hup/{i}") for i in range(CONNECTIONS)]

    try:
        assert await codes() == [None] * CONNECTIONS
        files = node.node.files
        files.edges = [replace(edge, mode="request", on_failure="deny") for edge in files.edges]
        files.write()
        node.node.send(signal.SIGHUP)

        # Until both workers took the new file, some of 40 new connections still fail in TLS.
        async def reloaded() -> bool:
            return await codes() == [403] * CONNECTIONS

        await poll(reloaded, "every worker to reload", timeout=WAIT)
        assert _paths(origin, "/hup/") == []

        # Logs are written in batches (at most 100 ms late): wait for both workers' lines.
        def both_logged() -> bool:
            return node.node.messages().count("configuration reloaded") == 2

        await poll(both_logged, "both workers to log the reload", timeout=WAIT)
    finally:
        assert await node.stop() == 0


async def test_reap_kills_only_the_worker_that_outlives_the_drain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(workers, "STOP_MARGIN", 0.0)
    pool = SimpleNamespace(edge=SimpleNamespace(limits=SimpleNamespace(drain_timeout=0.5)))
    quick = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    stuck = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)"
    )
    try:
        await workers.WorkerPool._reap(pool, [quick, stuck])  # type: ignore[arg-type]
    finally:
        if stuck.returncode is None:
            stuck.kill()
            await stuck.wait()
    assert quick.returncode == 0
    assert stuck.returncode == -signal.SIGKILL
