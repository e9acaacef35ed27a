"""Fixtures of the end-to-end tests: a test-time PKI, a recording origin, nodes (in-process and
subprocess) on their own SQLite store, and the admin API / status clients to drive them."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from edgeproxy.domain.secrets import generate_kek
from support.admin import Admin
from support.nodes import InProcessNode, NodeFiles, Status, SubprocessNode, admin_client
from support.origin import RecordingOrigin

from .pki import E2ePki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> E2ePki:
    return make_pki(tmp_path_factory.mktemp("e2e-pki"))


@pytest.fixture
async def origin() -> AsyncIterator[RecordingOrigin]:
    recording = RecordingOrigin()
    await recording.start()
    yield recording
    await recording.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        yield session


MakeFiles = Callable[..., NodeFiles]


@pytest.fixture
def kek(tmp_path: Path) -> Path:
    """A key-encryption key file (mode 0600) for nodes that hold store-managed private keys."""
    path = tmp_path / "kek.b64"
    path.write_text(generate_kek())
    path.chmod(0o600)
    return path


@pytest.fixture
def node_files(tmp_path: Path, pki: E2ePki, origin: RecordingOrigin) -> MakeFiles:
    """A new node directory with its own copy of the edge certificate (tests may damage it)."""
    count = 0

    def make(**overrides: Any) -> NodeFiles:
        nonlocal count
        count += 1
        directory = tmp_path / f"node{count}"
        (directory / "certs").mkdir(parents=True)
        chain = Path(shutil.copy(pki.server_chain, directory / "certs" / "server-chain.pem"))
        key = Path(shutil.copy(pki.server_key, directory / "certs" / "server.key"))
        return NodeFiles(directory, origin.url, chain, key, **overrides)

    return make


@dataclass
class Running:
    """A started node with clients for its admin API and status listener."""

    node: InProcessNode | SubprocessNode
    admin: Admin
    status: Status
    set_id: int = 0  # the `node` fixture's CA set and its active version (0: none published)
    version: int = 0

    @property
    def port(self) -> int:
        return self.node.edge_port

    @property
    def in_process(self) -> InProcessNode:
        """The node started by `start_node` (not `spawn_node`), whose roles a test may read."""
        assert isinstance(self.node, InProcessNode)
        return self.node


StartNode = Callable[[NodeFiles], Awaitable[Running]]


@pytest.fixture
async def start_node(
    monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession
) -> AsyncIterator[StartNode]:
    nodes: list[InProcessNode] = []

    async def start(files: NodeFiles) -> Running:
        node = InProcessNode(files, monkeypatch)
        nodes.append(node)
        await node.start()
        admin_url = node.admin_url if node.admin is not None else ""
        return Running(node, admin_client(http, admin_url), Status(http, node.status_url))

    yield start
    for node in reversed(nodes):
        await node.stop()


@pytest.fixture
async def spawn_node(http: aiohttp.ClientSession) -> AsyncIterator[StartNode]:
    nodes: list[SubprocessNode] = []

    async def spawn(files: NodeFiles) -> Running:
        node = SubprocessNode(files)
        nodes.append(node)
        await node.start()
        return Running(node, admin_client(http, node.admin_url), Status(http, node.status_url))

    yield spawn
    for node in nodes:
        await node.kill()


@pytest.fixture
async def node(pki: E2ePki, node_files: MakeFiles, start_node: StartNode) -> Running:
    """The default node (STAGING; edges api, other, forward) with CA set `partners` v1 = CA A and
    the root above carol's intermediate, active on STAGING and applied (activation COMPLETE)."""
    running = await start_node(node_files())
    running.set_id, running.version = await running.admin.publish([pki.ca_a.pem, pki.root.pem])
    return running


class AccessLog:
    """The `edgeproxy.access` records of an in-process node (their `extra` fields included)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def records(self, event: str | None = None) -> list[SimpleNamespace]:
        """Each access line's JSON fields, as attributes."""
        lines = [
            SimpleNamespace(**json.loads(r.json_line))  # type: ignore[attr-defined]
            for r in self.caplog.records
            if r.name == "edgeproxy.access"
        ]
        return [e for e in lines if event is None or getattr(e, "event", None) == event]


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> AccessLog:
    caplog.set_level(logging.INFO, logger="edgeproxy.access")
    return AccessLog(caplog)
