"""`edge.workers = N` (docs/architecture.md) with real processes on 127.0.0.1: one SO_REUSEPORT
port served by every
worker, a fleet row per worker, metrics summed over workers, supervision and signals.

Each accepting case has its refusing twin. Waits are bounded polls; nothing asserts a duration.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
import trustme
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from edgeproxy.node import workers
from support.tools import promtool

pytestmark = pytest.mark.slow

HOST = "api.example.test"
TOKEN = "workers-test-token"
BASE = "/mtls-edge-truststore/v2"
CONNECTIONS = 40
T = TypeVar("T")


# -- peers ---------------------------------------------------------------------------------------


@dataclass
class Pki:
    server_ca: Path
    server_cert: Path
    server_key: Path
    client_ca_pem: str  # the CA set's certificate
    other_ca_pem: str  # a second, unrelated CA (a distinct version of the set)
    client: Path  # key + chain, issued by the set's CA
    rogue: Path  # key + chain, issued by a CA nobody trusts


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    base = tmp_path_factory.mktemp("pki")
    server_ca, client_ca, other_ca, rogue_ca = (trustme.CA() for _ in range(4))
    server = server_ca.issue_cert(HOST)
    server_ca.cert_pem.write_to_path(base / "server-ca.pem")
    server.cert_chain_pems[0].write_to_path(base / "server.pem")
    server.private_key_pem.write_to_path(base / "server.key")
    client_ca.issue_cert("partner@example.test").private_key_and_cert_chain_pem.write_to_path(
        base / "client.pem"
    )
    rogue_ca.issue_cert("rogue@example.test").private_key_and_cert_chain_pem.write_to_path(
        base / "rogue.pem"
    )
    return Pki(
        server_ca=base / "server-ca.pem",
        server_cert=base / "server.pem",
        server_key=base / "server.key",
        client_ca_pem=client_ca.cert_pem.bytes().decode(),
        other_ca_pem=other_ca.cert_pem.bytes().decode(),
        client=base / "client.pem",
        rogue=base / "rogue.pem",
    )


@dataclass
class Origin:
    """An HTTP/1.1 origin that records the path and verify header of every request."""

    port: int = 0
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self, prefix: str) -> list[str]:
        with self.lock:
            return [p for p, _ in self.seen if p.startswith(prefix)]

    def verified(self, prefix: str) -> list[str | None]:
        with self.lock:
            return [v for p, v in self.seen if p.startswith(prefix)]


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    record = Origin()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            with record.lock:
                record.seen.append((self.path, self.headers.get("X-Client-Cert-Verify")))
            self.send_response(200)
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    record.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield record
    server.shutdown()
    server.server_close()


def _client_context(pki: Pki, identity: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.server_ca))
    context.load_cert_chain(str(identity))
    return context


def _request(tls: ssl.SSLSocket, path: str, *, close: bool) -> int | None:
    """One GET on an open TLS connection: its status, or None when the proxy refused it."""
    connection = "close" if close else "keep-alive"
    try:
        tls.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: {connection}\r\n\r\n".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = tls.recv(65536)
            if not chunk:
                return None
            data += chunk
    except (ssl.SSLError, ConnectionError):
        return None  # TLS 1.3: the client learns of the refusal at its first read
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = tls.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1])


def _connect(port: int, context: ssl.SSLContext) -> ssl.SSLSocket | None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return context.wrap_socket(sock, server_hostname=HOST)
    except (ssl.SSLError, ConnectionError):
        sock.close()
        return None


def _get(port: int, context: ssl.SSLContext, path: str) -> int | None:
    """A new connection, one request, closed."""
    tls = _connect(port, context)
    if tls is None:
        return None
    with tls:
        return _request(tls, path, close=True)


# -- the node under test -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _until(
    what: str, probe: Callable[[], T], ok: Callable[[T], Any] = bool, timeout: float = 20.0
) -> T:
    """Poll `probe` until `ok` accepts its value, and return that value; bounded, so a broken
    build fails instead of hanging."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    """The process exited (a zombie nobody reaped yet counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in {"Z", "X"}


@dataclass
class Node:
    base: Path
    process: subprocess.Popen[bytes]
    edge: int
    status_port: int
    admin: int | None

    @property
    def log(self) -> str:
        return (self.base / "node.log").read_text(errors="replace")

    def fetch(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.status_port}{path}", timeout=5
            ) as r:
                body = r.read()
                return r.status, json.loads(body) if path != "/metrics" else body.decode()
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def status(self) -> dict[str, Any]:
        return self.fetch("/status")[1]

    def workers(self) -> list[dict[str, Any]]:
        return self.status()["workers"]

    def samples(self, name: str) -> list[Sample]:
        """The samples called `name` on the status listener's /metrics."""
        _, text = self.fetch("/metrics")
        families = text_string_to_metric_families(text)
        return [s for family in families for s in family.samples if s.name == name]

    def metric(self, name: str, **labels: str) -> float:
        """One sample's value (0 when absent)."""
        found = [s.value for s in self.samples(name) if s.labels == labels]
        return float(found[0]) if found else 0.0

    def handshakes(self, result: str, reason: str = "") -> float:
        return self.metric(
            "edgeproxy_tls_handshakes_total",
            edge_certificate="api",
            network="STAGING",
            result=result,
            reason=reason,
        )

    def api(self, method: str, path: str, body: Any = None) -> Any:
        assert self.admin is not None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.admin}{BASE}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def rows(self) -> dict[str, dict[str, Any]]:
        return {n["name"]: n for n in self.api("GET", "/nodes")["nodes"]}

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"the node exited with {self.process.returncode}:\n{self.log}")
        try:
            return self.fetch("/readyz")[0] == 200
        except OSError:
            return False

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def _start(tmp: Path, pki: Pki, origin: Origin, *, workers: int, admin: bool = True) -> Node:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "tmp").mkdir(exist_ok=True)
    edge, status = _free_port(), _free_port()
    admin_port = _free_port() if admin else None
    roles = '["admin", "edge"]' if admin else '["edge"]'
    admin_table = (
        f'[admin]\nlisten = "127.0.0.1:{admin_port}"\n'
        f'tokens = [{{ name = "ops", role = "admin", token_sha256 = '
        f'"{hashlib.sha256(TOKEN.encode()).hexdigest()}" }}]\n'
        if admin
        else ""
    )
    (tmp / "node.toml").write_text(
        f"""
[node]
name = "wk"
network = "STAGING"
roles = {roles}

[store]
url = "sqlite:///var/node.db"

{admin_table}
[status]
listen = "127.0.0.1:{status}"

[edge]
listen = "127.0.0.1:{edge}"
workers = {workers}

[edge.limits]
drain_timeout = 5.0

[[edge.certificates]]
name = "api"
hostnames = ["{HOST}"]
certificate = "{pki.server_cert}"
private_key = "{pki.server_key}"
origin = "http://127.0.0.1:{origin.port}"
default = true

[edge.certificates.mutual_authentication]
ca_set = "partners"
"""
    )
    with (tmp / "node.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "edgeproxy", "serve", "-c", str(tmp / "node.toml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            # The worker metrics directory lands here, where the test can look for it.
            env={**os.environ, "TMPDIR": str(tmp / "tmp")},
        )
    node = Node(tmp, process, edge, status, admin_port)
    try:
        _until("the node to be ready", node.ready)
    except BaseException:
        node.stop()
        raise
    return node


def _activate(node: Node, set_id: int, version: int) -> dict[str, Any]:
    return node.api(
        "POST", f"/ca-sets/{set_id}/versions/{version}/activate", {"network": "STAGING"}
    )


def _activation(node: Node, set_id: int, version: int, activation: dict[str, Any]) -> Any:
    path = f"/ca-sets/{set_id}/versions/{version}/activations/{activation['activationId']}"
    return node.api("GET", path)


def _complete(node: Node, set_id: int, version: int, activation: dict[str, Any]) -> Any:
    def done() -> Any:
        state = _activation(node, set_id, version, activation)
        assert state["activationStatus"] != "FAILED", state
        return state if state["activationStatus"] == "COMPLETE" else None

    return _until("the activation to complete", done)


@dataclass
class Fleet:
    node: Node
    set_id: int


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, pki: Pki, origin: Origin) -> Iterator[Fleet]:
    """A 2-worker node with admin, its `partners` set trusting the client CA active on STAGING."""
    node = _start(tmp_path_factory.mktemp("fleet"), pki, origin, workers=2)
    try:
        _until("both worker rows", lambda: {"wk/w0", "wk/w1"} <= set(node.rows()))
        set_id = node.api("POST", "/ca-sets", {"caSetName": "partners"})["caSetId"]
        body = {"allowInsecureSha1": False, "certificates": [{"certificatePem": pki.client_ca_pem}]}
        node.api("POST", f"/ca-sets/{set_id}/versions", body)
        _complete(node, set_id, 1, _activate(node, set_id, 1))
        yield Fleet(node, set_id)
    finally:
        node.stop()


# -- one port, every worker ----------------------------------------------------------------------


def test_every_worker_registers_its_own_fleet_row(fleet: Fleet) -> None:
    rows = fleet.node.rows()
    assert sorted(rows) == ["wk/w0", "wk/w1"]
    assert all(
        r["roles"] == ["edge"] and r["appliedVersions"] == {"partners": 1} for r in rows.values()
    )
    body = fleet.node.status()
    assert body["node"] == "wk"
    assert [w["node"] for w in body["workers"]] == ["wk/w0", "wk/w1"]
    assert body["workers"][0]["pid"] == fleet.node.process.pid


def test_one_worker_registers_the_node_under_its_plain_name(
    tmp_path: Path, pki: Pki, origin: Origin
) -> None:
    node = _start(tmp_path, pki, origin, workers=1)
    try:
        rows = _until("the node row", node.rows)
        assert sorted(rows) == ["wk"]
        assert rows["wk"]["roles"] == ["admin", "edge"]
        assert node.status()["workers"] == []  # one process: no pool to list
        assert list((tmp_path / "tmp").iterdir()) == []  # no worker metrics directory
    finally:
        assert node.stop() == 0


def test_both_workers_accept_connections_on_the_shared_port(
    fleet: Fleet, pki: Pki, origin: Origin
) -> None:
    node, context = fleet.node, _client_context(pki, pki.client)
    before = node.handshakes("success")
    held: list[ssl.SSLSocket] = []
    try:
        for i in range(CONNECTIONS):
            tls = _connect(node.edge, context)
            assert tls is not None
            held.append(tls)
            assert _request(tls, f"/held/{i}", close=False) == 200
        # The kernel spreads new connections over the listeners; if only one worker accepted,
        # the other would hold none of the 40.
        counts = _until(
            "every connection in the worker reports",
            lambda: [w["connections"] for w in node.workers()],
            lambda counts: sum(counts) == CONNECTIONS,
        )
        assert all(count > 0 for count in counts), counts
    finally:
        for tls in held:
            tls.close()
    assert sorted(origin.paths("/held/")) == sorted(f"/held/{i}" for i in range(CONNECTIONS))
    assert set(origin.verified("/held/")) == {"SUCCESS"}
    assert node.handshakes("success") - before == CONNECTIONS


def test_a_client_of_another_ca_is_refused_on_the_shared_port(
    fleet: Fleet, pki: Pki, origin: Origin
) -> None:
    node, context = fleet.node, _client_context(pki, pki.rogue)
    before = node.handshakes("success"), node.handshakes("failure", "unknown_ca")
    for i in range(CONNECTIONS):
        assert _get(node.edge, context, f"/rogue/{i}") is None
    assert origin.paths("/rogue/") == []
    _until(
        "every refusal in /metrics",
        lambda: node.handshakes("failure", "unknown_ca") - before[1] == CONNECTIONS,
    )
    assert node.handshakes("success") == before[0]


def test_metrics_add_up_the_handshakes_of_every_worker(
    fleet: Fleet, pki: Pki, origin: Origin
) -> None:
    node, context = fleet.node, _client_context(pki, pki.client)
    before = node.handshakes("success")
    requests = node.metric(
        "edgeproxy_http_requests_total", edge_certificate="api", code="200", protocol="h1"
    )
    for i in range(CONNECTIONS):
        assert _get(node.edge, context, f"/sum/{i}") == 200
    assert node.handshakes("success") - before == CONNECTIONS
    after = node.metric(
        "edgeproxy_http_requests_total", edge_certificate="api", code="200", protocol="h1"
    )
    assert after - requests == CONNECTIONS
    # A live-summed gauge: back to zero once every worker closed its connections.
    _until("no open connection", lambda: node.metric("edgeproxy_connections_active") == 0)
    assert node.metric("edgeproxy_trust_active_version", ca_set="partners", network="STAGING") == 1


# -- activation and readiness ---------------------------------------------------------------------


def test_an_activation_completes_only_when_every_worker_applied_it(fleet: Fleet, pki: Pki) -> None:
    node = fleet.node
    body = {
        "allowInsecureSha1": False,
        "certificates": [
            {"certificatePem": pki.client_ca_pem},
            {"certificatePem": pki.other_ca_pem},
        ],
    }
    version = node.api("POST", f"/ca-sets/{fleet.set_id}/versions", body)["version"]
    stopped = node.workers()[1]["pid"]
    os.kill(stopped, signal.SIGSTOP)
    try:
        activation = _activate(node, fleet.set_id, version)
        # Worker 0 applied it, worker 1 cannot: half done, not complete.
        state = _until(
            "worker 0 to apply",
            lambda: _activation(node, fleet.set_id, version, activation),
            lambda state: state["percentComplete"] == 50,
        )
        assert state["activationStatus"] == "IN_PROGRESS"
        assert node.rows()["wk/w1"]["appliedVersions"] == {"partners": 1}
        # A worker that stops reporting makes the node unready, and says which one.
        _, ready = _until(
            "/readyz to notice", lambda: node.fetch("/readyz"), lambda reply: reply[0] == 503
        )
        assert any("worker 1" in reason for reason in ready["reasons"]), ready
    finally:
        os.kill(stopped, signal.SIGCONT)
    _complete(node, fleet.set_id, version, activation)
    rows = node.rows()
    assert all(r["appliedVersions"] == {"partners": version} for r in rows.values()), rows
    _until("/readyz to recover", node.ready)
    # Every worker retired version 1's series: only the new version's certificates are shown.
    expiry = node.samples("edgeproxy_ca_certificate_expiry_timestamp_seconds")
    assert sorted(s.labels["version"] for s in expiry) == [str(version)] * 2
    assert node.metric("edgeproxy_trust_active_version", ca_set="partners", network="STAGING") == 2


def test_the_summed_exposition_passes_promtool(fleet: Fleet) -> None:
    _, text = fleet.node.fetch("/metrics")
    result = subprocess.run(
        [promtool(), "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


# -- supervision and signals ----------------------------------------------------------------------


def test_a_killed_worker_is_restarted_and_the_node_keeps_serving(
    fleet: Fleet, pki: Pki, origin: Origin
) -> None:
    node, context = fleet.node, _client_context(pki, pki.client)
    held = [t for _ in range(CONNECTIONS // 2) if (t := _connect(node.edge, context))]
    for i, tls in enumerate(held):
        assert _request(tls, f"/before-kill/{i}", close=False) == 200
    victim = _until(
        "worker 1 to hold connections",
        lambda: node.workers()[1],
        lambda worker: worker["connections"] > 0,
    )["pid"]
    os.kill(victim, signal.SIGKILL)
    for tls in held:
        tls.close()
    restarted = _until(
        "a new worker 1",
        lambda: node.workers()[1],
        lambda worker: worker["pid"] != victim and worker["ready"],
    )
    assert not _gone(node.process.pid)
    assert '"message": "worker exited unexpectedly"' in node.log
    assert "signal SIGKILL" in node.log
    _until("/readyz", node.ready)
    for i in range(CONNECTIONS):
        assert _get(node.edge, context, f"/after-kill/{i}") == 200
    # The dead worker's open connections leave the live gauge with it.
    _until("no open connection", lambda: node.metric("edgeproxy_connections_active") == 0)
    assert restarted["node"] == "wk/w1"
    assert node.rows()["wk/w1"]["live"]


def test_a_worker_that_keeps_dying_makes_the_node_give_up(
    tmp_path: Path, pki: Pki, origin: Origin
) -> None:
    node = _start(tmp_path, pki, origin, workers=2, admin=False)
    try:
        killed: set[int] = set()
        for _ in range(workers.MAX_RESTARTS + 1):
            pid = _until(
                "a worker 1 to kill",
                lambda: node.workers()[1]["pid"],
                lambda pid: pid not in killed,
            )
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        assert node.process.wait(timeout=30) != 0
        assert '"message": "workers keep exiting; giving up"' in node.log
    finally:
        node.stop()


def test_sigterm_drains_every_worker_and_exits_0(tmp_path: Path, pki: Pki, origin: Origin) -> None:
    node = _start(tmp_path, pki, origin, workers=2, admin=False)
    pids = [w["pid"] for w in node.workers()]
    shared = list((tmp_path / "tmp").iterdir())
    assert [p.name.startswith("edgeproxy-metrics-") for p in shared] == [True]
    assert node.stop() == 0
    assert all(_gone(pid) for pid in pids)
    assert list((tmp_path / "tmp").iterdir()) == []  # the worker metrics directory is removed
    with sqlite3.connect(tmp_path / "var" / "node.db") as db:
        assert db.execute("SELECT name FROM nodes").fetchall() == []  # every worker left
    assert node.log.count('"message": "worker stopped"') == 1
    assert "status 0" in node.log


def test_workers_drain_and_leave_when_the_parent_is_killed(
    tmp_path: Path, pki: Pki, origin: Origin
) -> None:
    node = _start(tmp_path, pki, origin, workers=2, admin=False)
    child = node.workers()[1]["pid"]
    node.process.kill()
    node.process.wait(timeout=10)
    _until("the orphaned worker to exit", lambda: _gone(child))
    with sqlite3.connect(tmp_path / "var" / "node.db") as db:
        names = [n for (n,) in db.execute("SELECT name FROM nodes")]
    assert names == ["wk/w0"]  # the killed parent could not leave; its worker did
    assert '"message": "the parent process is gone; draining"' in node.log


def test_sighup_reloads_every_worker(tmp_path: Path, pki: Pki, origin: Origin) -> None:
    # No CA set is active: under `require` every client is refused in the handshake; under
    # `request` + `deny` the handshake completes and each request gets 403 instead.
    node = _start(tmp_path, pki, origin, workers=2, admin=False)
    context = _client_context(pki, pki.client)
    try:
        assert [_get(node.edge, context, f"/hup/{i}") for i in range(CONNECTIONS)] == [
            None
        ] * CONNECTIONS
        config = tmp_path / "node.toml"
        config.write_text(
            config.read_text().replace(
                'ca_set = "partners"', 'ca_set = "partners"\nmode = "request"\non_failure = "deny"'
            )
        )
        node.process.send_signal(signal.SIGHUP)
        # Until both workers took the new file, some of 40 new connections still fail in TLS.
        _until(
            "every worker to reload",
            lambda: [_get(node.edge, context, f"/hup/{i}") for i in range(CONNECTIONS)],
            lambda codes: codes == [403] * CONNECTIONS,
        )
        assert origin.paths("/hup/") == []
        # Logs are written in batches (at most 100 ms late): wait for both workers' lines.
        _until(
            "both workers to log the reload",
            lambda: node.log.count('"message": "configuration reloaded"'),
            lambda count: count == 2,
        )
    finally:
        assert node.stop() == 0


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
