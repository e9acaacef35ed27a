"""Static stability (docs/architecture.md): a node that cannot reach its store enforces the last
applied state from
its local snapshot and says so; with neither store nor snapshot it refuses to start."""

from __future__ import annotations

import shutil

import pytest

from support.nodes import free_ports, not_started, poll

from .clients import aget, refused
from .conftest import MakeFiles, StartNode
from .pki import E2ePki

pytestmark = pytest.mark.slow


def unreachable_store() -> str:
    """A PostgreSQL URL on a loopback port nobody listens on: every connection is refused."""
    (port,) = free_ports(1)
    return f"postgresql://edgeproxy@127.0.0.1:{port}/edgeproxy"


async def test_node_serves_its_snapshot_while_the_store_is_unreachable(
    pki: E2ePki, node_files: MakeFiles, start_node: StartNode
) -> None:
    files = node_files()
    first = await start_node(files)
    await first.admin.publish([pki.ca_a.pem])
    assert (await aget(pki, first.port, "api.test", pki.alice)).status == 200
    assert await first.in_process.stop() == 0
    assert files.snapshot.is_file()

    # The same node again, its store gone (edge role only: the admin role needs the store).
    files.store_url = unreachable_store()
    files.roles = ("edge",)
    second = await start_node(files)
    assert (await aget(pki, second.port, "api.test", pki.alice)).status == 200
    await refused(pki, second.port, "api.test", pki.bob)

    status, ready = await second.status.json("/readyz")
    assert (status, ready["ready"], ready["storeReachable"]) == (200, True, False)
    assert any("snapshot" in reason for reason in ready["reasons"])
    _, node_status = await second.status.json("/status")
    assert node_status["trust"]["source"] == "snapshot"
    assert node_status["trust"]["versions"] == {"partners": 1}
    metrics = await second.status.metrics()
    assert metrics.value("edgeproxy_store_reachable") == 0
    assert metrics.value("edgeproxy_trust_active_version", ca_set="partners") == 1


async def test_node_without_store_or_snapshot_refuses_to_start(node_files: MakeFiles) -> None:
    files = node_files(roles=("edge",), store_url=unreachable_store())
    line, _ = await not_started(files)
    assert not files.snapshot.exists()
    assert "no trust snapshot" in line["error"]
    assert str(files.snapshot) in line["error"]


async def test_node_started_from_its_snapshot_takes_the_store_back_when_it_returns(
    pki: E2ePki, node_files: MakeFiles, start_node: StartNode
) -> None:
    files = node_files()
    first = await start_node(files)
    await first.admin.publish([pki.ca_a.pem])
    assert await first.in_process.stop() == 0

    # The store's directory is a regular file: SQLite cannot open (nor create) the database.
    later = files.directory / "later"
    later.write_text("not a directory\n")
    files.store_url = f"sqlite:///{later / 'edgeproxy.db'}"
    files.roles = ("edge",)
    second = await start_node(files)
    assert (await second.status.metrics()).value("edgeproxy_store_reachable") == 0

    later.unlink()
    later.mkdir()
    for suffix in ("", "-wal", "-shm"):
        source = files.database.with_name(files.database.name + suffix)
        if source.exists():
            shutil.copy(source, later / source.name)

    async def back() -> bool:
        _, status = await second.status.json("/status")
        return status["storeReachable"] and status["trust"]["source"] == "store"

    await poll(back, "the node to take the store back")
    status, ready = await second.status.json("/readyz")
    assert (status, ready["storeReachable"]) == (200, True)
    assert "reasons" not in ready
    assert (await second.status.metrics()).value("edgeproxy_store_reachable") == 1
    assert (await aget(pki, second.port, "api.test", pki.alice)).status == 200


async def test_snapshot_that_cannot_be_written_does_not_fail_activations(
    pki: E2ePki, node_files: MakeFiles, start_node: StartNode, caplog: pytest.LogCaptureFixture
) -> None:
    files = node_files()
    blocked = files.directory / "not-a-directory"
    blocked.write_text("the snapshot's directory is a regular file\n")
    files.snapshot_at = blocked / "edge.snapshot.json"
    running = await start_node(files)
    # The activation completes (publish asserts it): the node applied the version. (The twin,
    # a writable path, is the first test of this module: the snapshot is there.)
    _, version = await running.admin.publish([pki.ca_a.pem])
    assert (await aget(pki, running.port, "api.test", pki.alice)).status == 200
    _, status = await running.status.json("/status")
    assert status["trust"]["versions"] == {"partners": version}
    assert status["trust"]["errors"] == {}
    assert any(r.getMessage() == "could not write the trust snapshot" for r in caplog.records)
    assert not files.snapshot.exists()
