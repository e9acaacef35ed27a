"""What a running node does between start and stop: wait for the stop event, and on each reload
request (SIGHUP) re-read the config file, build aside and swap, or keep the running state.

The file is read, and the edge's contexts built, off the event loop (a worker thread): a reload
never stalls the handshakes and requests in flight."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from edgeproxy.config.model import AdminConfig, Config, EdgeConfig
from edgeproxy.config.parse import load_config
from edgeproxy.runtime.tasks import first_set

log = logging.getLogger(__name__)


class Reloadable(Protocol):
    async def reload(self, edge: EdgeConfig) -> None: ...


class AdminReloadable(Protocol):
    """The admin role as a reload sees it. A protocol, not `AdminRole`: an edge worker process
    imports this module, and the admin app (aiohttp.web routes, OpenAPI, console) costs it ~3 MiB
    of RSS it never uses (docs/performance.md)."""

    def reload(self, config: AdminConfig) -> None: ...


async def wait_for_signals(
    config: Config,
    stop: asyncio.Event,
    reload: asyncio.Event | None,
    edge: Reloadable | None,
    admin: AdminReloadable | None = None,
) -> None:
    """Wait for stop; on each reload request re-read the config, build aside, swap or keep."""
    events = [stop] if reload is None else [stop, reload]
    while not stop.is_set():
        await first_set(*events)
        if reload is not None and reload.is_set():
            reload.clear()
            await reload_config(config, edge, admin)


async def reload_config(
    config: Config, edge: Reloadable | None, admin: AdminReloadable | None
) -> None:
    """Re-read the file and apply it; a file that does not load is logged and changes nothing."""
    try:
        fresh = await asyncio.to_thread(load_config, config.path)
        if edge is not None and fresh.edge is not None:
            await edge.reload(fresh.edge)
        # After the edge: a file whose certificates do not load rotates no tokens either.
        if admin is not None and fresh.admin is not None:
            admin.reload(fresh.admin)
        log.info("configuration reloaded", extra={"config": str(config.path)})
    except Exception as error:
        # The running state stays in force: a bad file never takes a node down. Not only a
        # ConfigError: a certificate file that exists but does not load (OpenSSL's SSL.Error, a
        # key that does not match) fails later, while the new contexts are built aside.
        log.error(
            "configuration reload rejected",
            extra={"error": str(error), "error_type": type(error).__name__},
        )
