"""TrustSync's SIGHUP path: built off the event loop, a bad file keeps the state in force, and the
HTTP half of edges that went away is pruned while unchanged ones are kept."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import trustme

from edgeproxy.config.model import (
    Config,
    EdgeCertificateConfig,
    EdgeConfig,
    HostPort,
    MutualAuthConfig,
    NodeConfig,
    StatusConfig,
    StoreConfig,
)
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.trust_sync import TrustSync
from edgeproxy.domain.model import Network
from edgeproxy.node.signals import reload_config
from edgeproxy.service.fleet import FleetService
from edgeproxy.store import Store
from edgeproxy.tls.contexts import EdgeCertificateError, build_state
from edgeproxy.tls.trust import TrustState

LISTEN = HostPort("127.0.0.1", 0)


@dataclass
class Builds:
    """The state builder, watched: the thread each build ran in."""

    threads: list[threading.Thread]

    def __call__(self, *args: Any, **kwargs: Any) -> TrustState:
        self.threads.append(threading.current_thread())
        return build_state(*args, **kwargs)


@pytest.fixture
def server_pem(tmp_path: Path) -> Path:
    path = tmp_path / "server.pem"
    trustme.CA().issue_cert("a.test", "b.test").private_key_and_cert_chain_pem.write_to_path(
        str(path)
    )
    return path


def edge(name: str, pem: Path, port: int) -> EdgeCertificateConfig:
    return EdgeCertificateConfig(
        name=name,
        hostnames=(f"{name}.test",),
        certificate=pem,
        private_key=pem,
        origin=f"http://127.0.0.1:{port}",
        mutual_authentication=MutualAuthConfig(ca_set="partners"),
    )


async def started(
    tmp_path: Path, store: Store, *edges: EdgeCertificateConfig
) -> tuple[TrustSync, Builds]:
    node = NodeConfig("edge-1", Network.STAGING, ("edge",), tmp_path / "snapshot.json")
    builds = Builds([])
    sync = TrustSync(
        node, EdgeConfig(LISTEN, edges), store, FleetService(store), Metrics(), build=builds
    )
    await sync.sync()
    return sync, builds


async def test_a_reload_is_built_off_the_loop_and_prunes_the_edges_that_went_away(
    tmp_path: Path, store: Store, server_pem: Path
) -> None:
    a, b = edge("a", server_pem, 1), edge("b", server_pem, 2)
    sync, builds = await started(tmp_path, store, a, b)
    kept, gone = sync.served.get(a), sync.served.get(b)
    before = sync.state()

    await sync.reload(EdgeConfig(LISTEN, (a,)))

    loop_thread = threading.current_thread()
    assert len(builds.threads) == 2  # the store sync, then the reload
    assert all(t is not loop_thread for t in builds.threads)
    after = sync.state()
    assert after is not before
    assert sorted(after.edges) == ["a"]
    assert after.edges["a"].context is not before.edges["a"].context  # files read again
    assert sync.served.get(a) is kept  # same host names and origin: same matcher and pool
    assert sync.served.pools == {a.origin: kept.pool}
    assert gone.pool not in sync.served.pools.values()
    await sync.stop()


async def test_a_reload_whose_files_do_not_load_keeps_the_state_in_force(
    tmp_path: Path, store: Store, server_pem: Path
) -> None:
    a = edge("a", server_pem, 1)
    sync, builds = await started(tmp_path, store, a)
    before, served, config = sync.state(), sync.served.get(a), sync.edge
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key\n")

    with pytest.raises(EdgeCertificateError, match=f"'a': certificate file {junk}"):
        await sync.reload(EdgeConfig(LISTEN, (replace(a, certificate=junk, private_key=junk),)))

    assert builds.threads[-1] is not threading.current_thread()  # it failed in the worker
    assert sync.state() is before
    assert sync.edge is config
    assert sync.served.get(a) is served
    # The twin: the same reload with usable files goes through.
    await sync.reload(EdgeConfig(LISTEN, (a,)))
    assert sync.state() is not before
    await sync.stop()


async def test_a_config_file_that_does_not_parse_changes_nothing(
    tmp_path: Path, store: Store, server_pem: Path, caplog: pytest.LogCaptureFixture
) -> None:
    a = edge("a", server_pem, 1)
    sync, builds = await started(tmp_path, store, a)
    before = sync.state()
    path = tmp_path / "node.toml"
    path.write_text("[node\nthis is not TOML\n")
    config = Config(
        path,
        NodeConfig("edge-1", Network.STAGING, ("edge",), tmp_path / "snapshot.json"),
        StoreConfig(f"sqlite:///{tmp_path}/edgeproxy.db"),
        StatusConfig(HostPort("127.0.0.1", 0)),
    )

    with caplog.at_level(logging.ERROR):
        await reload_config(config, sync, None)

    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["configuration reload rejected"]
    assert sync.state() is before
    assert len(builds.threads) == 1  # nothing was built
    await sync.stop()


async def test_a_binding_that_fails_closed_is_a_warning_at_start_and_on_every_reload(
    tmp_path: Path, store: Store, server_pem: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`partners` has no version at all in this store: every client of `a` is refused."""
    a = edge("a", server_pem, 1)

    def warnings() -> list[tuple[str, str]]:
        return [
            (r.__dict__["edge_certificate"], r.__dict__["why"])
            for r in caplog.records
            if r.getMessage().startswith("edge certificate fails closed")
        ]

    with caplog.at_level(logging.WARNING):
        sync, _ = await started(tmp_path, store, a)
        closed = ("a", "CA set 'partners' has no active version on STAGING")
        assert warnings() == [closed]
        await sync.reload(EdgeConfig(LISTEN, (a,)))
        assert warnings() == [closed, closed]
        assert sync.fail_closed() == ["a"]
    await sync.stop()
