"""`edgeproxy serve`: run the roles a config names in one process until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Protocol

from edgeproxy import logs
from edgeproxy.admin.server import AdminRole
from edgeproxy.config import Config
from edgeproxy.dataplane.status import StaticStatus, StatusRole
from edgeproxy.fleet import FleetService
from edgeproxy.metrics import Metrics
from edgeproxy.service import TruststoreService
from edgeproxy.store import open_store

log = logging.getLogger(__name__)


class Role(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def serve(config: Config, stop: asyncio.Event) -> None:
    """Start every configured role, wait for `stop`, then stop them in reverse order."""
    store = open_store(config.store.url, poll_interval=config.store.poll_interval)
    await store.open()
    service = TruststoreService(store)
    fleet = FleetService(store)
    metrics = Metrics()
    roles: list[Role] = []
    try:
        if config.admin is not None and "admin" in config.node.roles:
            roles.append(AdminRole(config.admin, service, fleet))
        status_source = StaticStatus(config.node, store, metrics)
        roles += [status_source, StatusRole(config.status, status_source)]
        for role in roles:
            await role.start()
        log.info(
            "node started",
            extra={
                "node": config.node.name,
                "network": config.node.network.value,
                "roles": list(config.node.roles),
            },
        )
        await stop.wait()
        log.info("node stopping", extra={"node": config.node.name})
    finally:
        for role in reversed(roles):
            await role.stop()
        await store.close()


def run(config: Config) -> int:
    logs.configure()
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(config, stop)

    asyncio.run(main())
    return 0
