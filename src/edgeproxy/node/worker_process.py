"""One edge worker process (`python -m edgeproxy.node.worker_process`): reads its spec from
the supervisor on stdin, runs an edge role, reports on its stdout pipe (see `workers.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import signal
from typing import Any

from edgeproxy.config.kek import load_key_ring
from edgeproxy.dataplane.edge import EdgeRole
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.node.signals import wait_for_signals
from edgeproxy.node.worker_spec import (
    REPORT_INTERVAL,
    REPORT_LIMIT,
    SPEC_LIMIT,
    WorkerSpec,
    worker_node,
)
from edgeproxy.runtime import logs
from edgeproxy.runtime.logs import AccessSink
from edgeproxy.runtime.tasks import TaskGroup
from edgeproxy.service.fleet import FleetService
from edgeproxy.store import open_store

log = logging.getLogger(__name__)


def _read_exactly(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise EOFError("the parent closed the spec pipe early")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_spec(fd: int) -> WorkerSpec:
    size = int.from_bytes(_read_exactly(fd, 8), "big")
    if size > SPEC_LIMIT:
        raise ValueError(f"worker spec of {size} bytes")
    # Written by our own parent on a private pipe: the same trust as our own memory.
    spec = pickle.loads(_read_exactly(fd, size))  # noqa: S301
    if not isinstance(spec, WorkerSpec):
        raise TypeError(f"expected a WorkerSpec, got {type(spec).__name__}")
    return spec


def _tag_logs(index: int) -> None:
    """Every log line of this process carries `"worker": index`."""
    make = logging.getLogRecordFactory()

    def tagged(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        record.worker = index
        return record

    logging.setLogRecordFactory(tagged)


class _Reporter:
    """Writes this worker's report lines to the parent without ever blocking the event loop."""

    def __init__(self, transport: asyncio.WriteTransport, edge: EdgeRole) -> None:
        self.transport = transport
        self.edge = edge

    def send(self) -> None:
        # A parent that does not read (stopped, gone) costs at most REPORT_LIMIT bytes here.
        if self.transport.is_closing() or self.transport.get_write_buffer_size() > REPORT_LIMIT:
            return
        readiness = self.edge.ready()
        status = self.edge.status()
        report = {
            "pid": os.getpid(),
            "ready": readiness.ready,
            "storeReachable": readiness.store_reachable,
            "connections": status.connections,
            "revision": status.trust.revision if status.trust else None,
        }
        self.transport.write(json.dumps(report).encode() + b"\n")

    async def run(self) -> None:
        while True:
            self.send()
            await asyncio.sleep(REPORT_INTERVAL)


async def _run_worker(spec: WorkerSpec, channel: int, access_sink: AccessSink) -> None:
    config = spec.config
    assert config.edge is not None
    loop = asyncio.get_running_loop()
    stop, reload = asyncio.Event(), asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload.set)
    loop.add_signal_handler(signal.SIGUSR1, logs.reopen)

    def parent_gone() -> None:
        try:
            data = os.read(0, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(0)
            log.warning("the parent process is gone; draining")
            stop.set()

    loop.add_reader(0, parent_gone)
    transport, _ = await loop.connect_write_pipe(
        asyncio.Protocol, os.fdopen(channel, "wb", buffering=0)
    )
    store = open_store(
        config.store.url,
        poll_interval=config.store.poll_interval,
        connect_timeout=config.store.connect_timeout,
        statement_timeout=config.store.statement_timeout,
    )
    await store.open()
    tasks = TaskGroup()
    try:
        node = worker_node(config.node, spec.index, spec.count)
        keys = load_key_ring(config.store, os.environ)
        edge = EdgeRole(
            node,
            config.edge,
            store,
            FleetService(store),
            Metrics(),
            access_sink=access_sink,
            keys=keys,
        )
        await edge.start()
        try:
            tasks.spawn(_Reporter(transport, edge).run(), "worker-report")
            log.info("worker serving", extra={"node": node.name, "pid": os.getpid()})
            await wait_for_signals(config, stop, reload, edge)
        finally:
            await tasks.close()
            await edge.stop()
    finally:
        await store.close()
        transport.close()


def main() -> int:
    """One edge worker; its spec arrives on stdin from `WorkerPool` (not a user command)."""
    # Until the event loop takes over: Ctrl-C is the parent's business, and a SIGHUP during start-up
    # must not kill us (the parent re-sends it once we report).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # the log files are opened just below
    spec = _read_spec(0)
    access_sink = logs.configure(spec.config.log)
    _tag_logs(spec.index)
    # Reports own fd 1; anything printed goes to stderr with the logs.
    channel = os.dup(1)
    os.dup2(2, 1)
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        asyncio.run(_run_worker(spec, channel, access_sink))
    except Exception:
        log.exception("worker failed")
        return 1
    return 0


if __name__ == "__main__":
    # Run the importable copy of this module: the spec unpickles to its classes, not __main__'s.
    from edgeproxy.node.worker_process import main as worker_main

    raise SystemExit(worker_main())
