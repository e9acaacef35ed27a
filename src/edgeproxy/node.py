"""`edgeproxy serve`: run the roles a config names in one process until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Protocol

from edgeproxy import logs
from edgeproxy.admin.server import AdminRole
from edgeproxy.config import Config, ConfigError, load_config
from edgeproxy.dataplane.edge import EdgeRole
from edgeproxy.dataplane.status import StaticStatus, StatusRole, StatusSource
from edgeproxy.demo import DemoOrigin, curl_commands, ensure_demo_ca_set, ensure_dev_pki
from edgeproxy.fleet import FleetService
from edgeproxy.metrics import Metrics
from edgeproxy.service import TruststoreService
from edgeproxy.store import open_store

log = logging.getLogger(__name__)


class Role(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def serve(config: Config, stop: asyncio.Event, reload: asyncio.Event | None = None) -> None:
    """Start every configured role, wait for `stop`, then stop them in reverse order."""
    store = open_store(config.store.url, poll_interval=config.store.poll_interval)
    await store.open()
    service = TruststoreService(store)
    fleet = FleetService(store)
    metrics = Metrics()
    roles: list[Role] = []
    started: list[Role] = []
    edge: EdgeRole | None = None
    demo_text = ""
    try:
        if config.admin is not None and "admin" in config.node.roles:
            roles.append(AdminRole(config.admin, service, fleet))
        status_source: StatusSource
        if config.edge is not None and "edge" in config.node.roles:
            if config.demo.enabled:
                demo_text = await _prepare_demo(config, service)
                roles.append(DemoOrigin(config.demo.origin_listen))
            edge = EdgeRole(config.node, config.edge, store, fleet, metrics)
            roles.append(edge)
            status_source = edge
        else:
            static = StaticStatus(config.node, store, metrics)
            roles.append(static)
            status_source = static
        roles.append(StatusRole(config.status, status_source))
        for role in roles:
            await role.start()
            started.append(role)
        log.info(
            "node started",
            extra={
                "node": config.node.name,
                "network": config.node.network.value,
                "roles": list(config.node.roles),
            },
        )
        if demo_text:
            print(demo_text, flush=True)
        await _wait(config, stop, reload, edge)
        log.info("node stopping", extra={"node": config.node.name})
    finally:
        for role in reversed(started):
            await role.stop()
        await store.close()


async def _wait(
    config: Config, stop: asyncio.Event, reload: asyncio.Event | None, edge: EdgeRole | None
) -> None:
    """Wait for stop; on each reload request re-read the config, build aside, swap or keep."""
    while not stop.is_set():
        waiters = [asyncio.ensure_future(stop.wait())]
        if reload is not None:
            waiters.append(asyncio.ensure_future(reload.wait()))
        _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()
        if reload is not None and reload.is_set():
            reload.clear()
            _reload(config, edge)


def _reload(config: Config, edge: EdgeRole | None) -> None:
    try:
        fresh = load_config(config.path)
        if edge is not None and fresh.edge is not None:
            edge.reload(fresh.edge)
        log.info("configuration reloaded", extra={"config": str(config.path)})
    except (ConfigError, OSError, ValueError) as error:
        # The running state stays in force: a bad file never takes a node down.
        log.error("configuration reload rejected", extra={"error": str(error)})


async def _prepare_demo(config: Config, service: TruststoreService) -> str:
    """The embedded demo: a dev PKI and a demo CA set active on this network. Returns the curl
    commands to print once the node listens."""
    assert config.edge is not None
    first = config.edge.certificates[0]
    pki = ensure_dev_pki(config.demo.pki_dir, first.certificate, first.private_key)
    await ensure_demo_ca_set(service, config.demo.ca_set, pki.client_ca_pem(), config.node.network)
    return curl_commands(pki, config.edge.listen, first.hostnames[0])


def run(config: Config) -> int:
    logs.configure()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def main() -> None:
        stop = asyncio.Event()
        reload = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload.set)
        await serve(config, stop, reload)

    asyncio.run(main())
    return 0
