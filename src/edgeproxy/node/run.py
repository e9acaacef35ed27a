"""`edgeproxy serve`: run the roles a config names until SIGTERM/SIGINT.

With `edge.workers` = N > 1 this process also starts and supervises N-1 edge worker processes
(`dataplane.workers`), and its metrics switch to a directory shared with them before any exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from edgeproxy.admin.server import AdminRole
from edgeproxy.config.kek import load_key_ring
from edgeproxy.config.model import Config
from edgeproxy.dataplane.edge import EdgeRole
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.metrics_shared import shared_metrics
from edgeproxy.dataplane.trust_sync import NoTrustState
from edgeproxy.node.demo import (
    DemoOrigin,
    curl_commands,
    ensure_demo_ca_set,
    ensure_dev_kek,
    ensure_dev_pki,
)
from edgeproxy.node.signals import wait_for_signals
from edgeproxy.node.status import StaticStatus, StatusRole, StatusSource
from edgeproxy.node.workers import WorkerPool
from edgeproxy.runtime import logs
from edgeproxy.runtime.listening import ListenError
from edgeproxy.runtime.logs import AccessSink
from edgeproxy.runtime.tasks import TaskGroup
from edgeproxy.service.truststore import Truststore
from edgeproxy.store import Store, StoreUnavailable, open_store
from edgeproxy.tls.contexts import EdgeCertificateError
from edgeproxy.tls.recheck import version_judge

log = logging.getLogger(__name__)
STORE_RETRY = 1.0  # seconds between attempts to open a store that was unreachable at start


class Role(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def serve(
    config: Config,
    stop: asyncio.Event,
    reload: asyncio.Event | None = None,
    *,
    access_sink: AccessSink | None = None,
) -> int:
    """Start every configured role, wait for `stop`, then stop them in reverse order. Returns the
    exit status: 0, or 1 when the edge workers kept dying and the node gave up.

    `access_sink` takes the access-log lines (the batched stderr writer under `run()`); without
    one they go through the `edgeproxy.access` logger."""
    edge_workers = config.edge.workers if config.edge and "edge" in config.node.roles else 1
    if edge_workers == 1:
        return await _serve(config, stop, reload, None, access_sink)
    with shared_metrics() as shared:
        return await _serve(config, stop, reload, shared, access_sink)


async def _serve(
    config: Config,
    stop: asyncio.Event,
    reload: asyncio.Event | None,
    shared: Path | None,
    access_sink: AccessSink | None,
) -> int:
    store = open_store(
        config.store.url,
        poll_interval=config.store.poll_interval,
        connect_timeout=config.store.connect_timeout,
        statement_timeout=config.store.statement_timeout,
    )
    opened = await _open_store(store, config)
    kek_file = config.store.key_encryption_key_file
    if config.demo.enabled and kek_file is not None:
        ensure_dev_kek(kek_file)
    keys = load_key_ring(config.store, os.environ)
    service = Truststore.build(
        store,
        node_lost_after=timedelta(seconds=config.fleet.node_lost_after),
        keys=keys,
        judge=version_judge,
    )
    fleet = service.fleet
    if opened:
        await _settle_restart(service, config)
    metrics = Metrics()
    roles: list[Role] = []
    started: list[Role] = []
    edge: EdgeRole | WorkerPool | None = None
    demo_text = ""
    tasks = TaskGroup()
    try:
        admin: AdminRole | None = None
        if config.admin is not None and "admin" in config.node.roles:
            admin = AdminRole(config.admin, service)
            metrics.register(admin.metrics)
            roles.append(admin)
        status_source: StatusSource
        if config.edge is not None and "edge" in config.node.roles:
            if config.demo.enabled:
                demo_text = await _prepare_demo(config, service)
                roles.append(DemoOrigin(config.demo.origin_listen))
            if shared is None:
                edge = EdgeRole(
                    config.node,
                    config.edge,
                    store,
                    fleet,
                    metrics,
                    access_sink=access_sink,
                    keys=keys,
                )
            else:
                edge = WorkerPool(
                    config,
                    store,
                    fleet,
                    metrics,
                    shared,
                    on_fatal=stop.set,
                    access_sink=access_sink,
                )
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
        if not opened:
            tasks.spawn(_reopen_store(store), "store-reopen")
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
        await wait_for_signals(config, stop, reload, edge, admin)
        log.info("node stopping", extra={"node": config.node.name})
    finally:
        await tasks.close()
        for role in reversed(started):
            await role.stop()
        await store.close()
    return 1 if isinstance(edge, WorkerPool) and edge.gave_up else 0


async def _open_store(store: Store, config: Config) -> bool:
    """Open the store; False when it is unreachable but the node runs the edge role. Static
    stability (docs/architecture.md): the edge then starts from its trust snapshot (and refuses to
    start without
    one), and `_reopen_store` keeps trying in the background."""
    try:
        await store.open()
    except Exception as error:
        if config.edge is None or "edge" not in config.node.roles:
            raise
        log.error("store unreachable at start", extra={"error": f"{type(error).__name__}: {error}"})
        with contextlib.suppress(Exception):
            await store.close()
        return False
    return True


async def _settle_restart(service: Truststore, config: Config) -> None:
    """This node's previous process is gone: activations it alone was holding settle now, so the
    demo (and any operator) can activate again at once. The store may fail just after opening;
    the reconciler settles them later then, and the node starts all the same."""
    try:
        await service.reconciler.settle_restart(config.node.name)
    except StoreUnavailable as error:
        log.warning("could not settle activations at start", extra={"error": str(error)})


async def _reopen_store(store: Store) -> None:
    """Retry opening the store until it answers; the edge's trust sync then picks it up."""
    while True:
        await asyncio.sleep(STORE_RETRY)
        try:
            await store.open()
        except Exception as error:
            log.debug("store still unreachable", extra={"error": str(error)})
            with contextlib.suppress(Exception):
                await store.close()  # a half-opened store holds nothing into the next attempt
            continue
        log.info("store opened")
        return


async def _prepare_demo(config: Config, service: Truststore) -> str:
    """The embedded demo: a dev PKI and a demo CA set active on this network. Returns the curl
    commands to print once the node listens."""
    assert config.edge is not None
    if not config.edge.certificates:
        return ""  # nothing of the file's to demonstrate: the store's edge certificates only
    first = config.edge.certificates[0]
    pki = ensure_dev_pki(config.demo.pki_dir, first.certificate, first.private_key)
    await ensure_demo_ca_set(service, config.demo.ca_set, pki.client_ca_pem(), config.node.network)
    return curl_commands(pki, config.edge.listen, first.hostnames[0])


def run(config: Config) -> int:
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # until the loop reopens the logs on it
    access_sink = logs.configure(config.log)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    async def main() -> int:
        stop = asyncio.Event()
        reload = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload.set)
        loop.add_signal_handler(signal.SIGUSR1, logs.reopen)  # logrotate's postrotate
        return await serve(config, stop, reload, access_sink=access_sink)

    try:
        return asyncio.run(main())
    except (NoTrustState, ListenError, EdgeCertificateError) as error:
        # An operating condition, not a bug: one clear log line, no traceback.
        log.critical("node not started", extra={"error": str(error)})
        return 1
