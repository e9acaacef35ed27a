"""`edge.workers = N` (docs/architecture.md): N edge processes, each its own event loop, on one
SO_REUSEPORT port.

The main process runs admin, status, the demo origin and edge worker 0; `WorkerPool` starts
workers 1..N-1 as `python -m edgeproxy.node.worker_process` and supervises them.

- **Spec**: the parent writes (index, count, config) to the worker's stdin, length-prefixed, and
  keeps stdin open. EOF on it means the parent is gone: the worker drains and exits, so a SIGKILLed
  parent leaves no orphans.
- **Reports**: a worker writes one JSON line to its stdout every `REPORT_INTERVAL` (pid, trust state
  loaded, store reachable, connections). `/readyz` is ready only when worker 0 and every other
  worker reported a trust state; a worker silent for `STALE_AFTER` (hung, stopped) is not ready.
- **Fleet rows**: each worker registers as its own node `<node.name>/w<i>` with roles ("edge",), so
  an activation is COMPLETE only when every local worker applied it (docs/performance.md
  "activation → applied on
  all local workers"). With one worker nothing changes: one row named `<node.name>`.
- **Metrics**: the workers write prometheus_client multiprocess files to a private directory the
  main process made (`metrics_shared.shared_metrics`); the status listener sums them
  (`Metrics.render`).
- **Signals**: SIGTERM drains worker 0 while forwarding SIGTERM to the others, waits for them up
  to `drain_timeout + STOP_MARGIN`, then kills. SIGHUP reloads worker 0 and is forwarded. Workers
  ignore SIGINT: a terminal's Ctrl-C reaches the whole process group, and the parent turns it into
  an orderly SIGTERM.
- **Restarts**: a worker that exits while the pool runs is logged and restarted after
  `RESTART_DELAY`, at most `MAX_RESTARTS` times per `RESTART_WINDOW`; beyond that the pool gives up
  and the node exits non-zero (a crash loop needs a human, not a hotter loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from edgeproxy.config.model import Config, EdgeConfig, HostPort
from edgeproxy.dataplane.edge import EdgeRole
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.metrics_shared import worker_exited
from edgeproxy.dataplane.status import NodeStatus, Readiness, WorkerStatus
from edgeproxy.node.worker_spec import REPORT_LIMIT, WorkerSpec, worker_node
from edgeproxy.runtime import logs
from edgeproxy.runtime.logs import AccessSink
from edgeproxy.runtime.tasks import TaskGroup
from edgeproxy.service.fleet import FleetService
from edgeproxy.store import Store

log = logging.getLogger(__name__)

WORKER_MODULE: Final = "edgeproxy.node.worker_process"
STALE_AFTER = 3.0  # a worker silent this long is not ready
RESTART_DELAY = 0.5
MAX_RESTARTS = 5  # per RESTART_WINDOW, over all workers
RESTART_WINDOW = 60.0
STOP_MARGIN = 5.0  # beyond drain_timeout, before a worker that does not exit is killed


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    report: dict[str, Any] | None = None  # the latest; None until the running process reports
    reported_at: float = 0.0  # time.monotonic()
    reload_pending: bool = False  # a SIGHUP arrived before this process could take one


class WorkerPool:
    """Edge worker 0 in this process plus workers 1..N-1 as supervised processes: the edge role and
    the status source of a node with `edge.workers` > 1."""

    def __init__(
        self,
        config: Config,
        store: Store,
        fleet: FleetService,
        metrics: Metrics,
        shared: Path,
        *,
        on_fatal: Callable[[], None],
        access_sink: AccessSink | None = None,
    ) -> None:
        assert config.edge is not None
        assert config.edge.workers > 1
        self.config = config
        self.metrics = metrics
        self.shared = shared
        self.on_fatal = on_fatal
        self.count = config.edge.workers
        self.edge = config.edge  # what a (re)started worker runs; its listen port is the bound one
        self.local = EdgeRole(
            worker_node(config.node, 0, self.count),
            config.edge,
            store,
            fleet,
            metrics,
            access_sink=access_sink,
        )
        self.gave_up = False
        self._workers = [_Worker(i) for i in range(1, self.count)]
        self._restarts: deque[float] = deque()
        self._stopping = False
        self._tasks = TaskGroup()
        self._unhook_reopen: Callable[[], None] | None = None

    # -- Role ----------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.local.start()
        # SIGUSR1 in this process reopens its log files (node/run.py); each worker its own.
        self._unhook_reopen = logs.on_reopen(self._reopen_logs)
        try:
            # Every worker binds the port worker 0 got (not the config's when that says port 0).
            self.edge = replace(self.edge, listen=HostPort(self.edge.listen.host, self.local.port))
            for worker in self._workers:
                await self._spawn(worker)
                self._tasks.spawn(self._supervise(worker), f"worker-{worker.index}-supervisor")
        except BaseException:
            await self.stop()
            raise

    async def reload(self, edge: EdgeConfig) -> None:
        """SIGHUP: worker 0 rebuilds first (a bad file raises and goes no further), then each
        worker re-reads the file itself."""
        await self.local.reload(edge)
        assert self.config.edge is not None
        if edge.workers != self.count or edge.listen != self.config.edge.listen:
            log.warning("edge.workers and edge.listen take effect at the next start")
        self.edge = replace(edge, listen=self.edge.listen)
        for worker in self._workers:
            if worker.report is None:
                worker.reload_pending = True  # sent once it reports (its handlers are in place)
            else:
                self._signal(worker, signal.SIGHUP)

    async def stop(self) -> None:
        """Drain every worker at once: SIGTERM to the others while worker 0 drains here."""
        self._stopping = True
        if self._unhook_reopen is not None:
            self._unhook_reopen()
            self._unhook_reopen = None
        await self._tasks.close()  # no restart from here on
        running = [w.process for w in self._workers if w.process and w.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        drains = self.local.stop(), self._reap(running)
        results = await asyncio.gather(*drains, return_exceptions=True)
        for worker in self._workers:
            if worker.process is not None:
                self._exited(worker, worker.process)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _reap(self, processes: list[asyncio.subprocess.Process]) -> None:
        if not processes:
            return
        timeout = self.edge.limits.drain_timeout + STOP_MARGIN
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(p.wait() for p in processes))
        except TimeoutError:
            # The timeout cancelled the waits; waiting again after the kill is safe.
            for process in processes:
                if process.returncode is None:
                    log.warning(
                        "worker did not drain in time; killing it", extra={"pid": process.pid}
                    )
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*(p.wait() for p in processes))
        for process in processes:
            log.info(
                "worker stopped", extra={"pid": process.pid, "exit": _exit(process.returncode)}
            )

    # -- supervision ---------------------------------------------------------------------------

    async def _spawn(self, worker: _Worker) -> None:
        spec = WorkerSpec(
            worker.index, self.count, replace(self.config, admin=None, edge=self.edge)
        )
        payload = pickle.dumps(spec)
        # The environment carries PROMETHEUS_MULTIPROC_DIR: the worker's metrics start shared.
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            WORKER_MODULE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=REPORT_LIMIT,
        )
        worker.process, worker.report = process, None
        assert process.stdin is not None
        process.stdin.write(len(payload).to_bytes(8, "big") + payload)
        with contextlib.suppress(ConnectionError):  # it died at once: _supervise sees the exit
            await process.stdin.drain()
        log.info("worker started", extra={"worker": worker.index, "pid": process.pid})

    async def _supervise(self, worker: _Worker) -> None:
        while True:
            process = worker.process
            assert process is not None
            await asyncio.gather(self._read_reports(worker, process), process.wait())
            self._exited(worker, process)
            if self._stopping:
                return
            log.error(
                "worker exited unexpectedly",
                extra={
                    "worker": worker.index,
                    "pid": process.pid,
                    "exit": _exit(process.returncode),
                },
            )
            if not self._may_restart():
                log.critical(
                    "workers keep exiting; giving up",
                    extra={"restarts": MAX_RESTARTS, "window_seconds": RESTART_WINDOW},
                )
                self.gave_up = True
                self.on_fatal()
                return
            await asyncio.sleep(RESTART_DELAY)
            if self._stopping:
                return
            try:
                await self._spawn(worker)
            except OSError as error:
                log.critical("cannot start a worker; giving up", extra={"error": str(error)})
                self.gave_up = True
                self.on_fatal()
                return

    def _may_restart(self) -> bool:
        now = time.monotonic()
        while self._restarts and now - self._restarts[0] > RESTART_WINDOW:
            self._restarts.popleft()
        if len(self._restarts) >= MAX_RESTARTS:
            return False
        self._restarts.append(now)
        return True

    def _exited(self, worker: _Worker, process: asyncio.subprocess.Process) -> None:
        worker.report = None
        worker_exited(process.pid, self.shared)
        if process.stdin is not None:
            process.stdin.close()

    async def _read_reports(self, worker: _Worker, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        try:
            async for line in process.stdout:
                try:
                    report = json.loads(line)
                except ValueError:
                    log.warning("unreadable worker report", extra={"worker": worker.index})
                    continue
                first = worker.report is None
                worker.report, worker.reported_at = report, time.monotonic()
                if first and worker.reload_pending:
                    worker.reload_pending = False
                    self._signal(worker, signal.SIGHUP)
        except (ValueError, ConnectionError) as error:  # an over-long line: the channel is lost
            log.error("worker report channel lost", extra={"worker": worker.index, "error": error})

    def _reopen_logs(self) -> None:
        for worker in self._workers:
            self._signal(worker, signal.SIGUSR1)

    def _signal(self, worker: _Worker, signum: signal.Signals) -> None:
        if worker.process is not None and worker.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signum)

    # -- StatusSource --------------------------------------------------------------------------

    def _problem(self, worker: _Worker) -> str | None:
        """Why this worker is not ready, or None."""
        if worker.process is None or worker.process.returncode is not None:
            return f"worker {worker.index} is not running"
        if worker.report is None:
            return f"worker {worker.index} is starting"
        silent = time.monotonic() - worker.reported_at
        if silent > STALE_AFTER:
            return f"worker {worker.index} has not reported for {silent:.1f} s"
        if not worker.report.get("ready"):
            return f"worker {worker.index} has no trust state yet"
        return None

    def _summaries(self) -> list[WorkerStatus]:
        ok = self.local.ready().ready
        status = self.local.status()
        rows = [
            WorkerStatus(
                index=0,
                node=worker_node(self.config.node, 0, self.count).name,
                pid=os.getpid(),
                ready=ok,
                store_reachable=status.store_reachable,
                connections=status.connections,
                revision=status.trust.revision if status.trust else None,
            )
        ]
        for worker in self._workers:
            report = worker.report or {}
            rows.append(
                WorkerStatus(
                    index=worker.index,
                    node=worker_node(self.config.node, worker.index, self.count).name,
                    pid=worker.process.pid if worker.process else None,
                    ready=self._problem(worker) is None,
                    store_reachable=report.get("storeReachable"),
                    connections=report.get("connections", 0),
                    revision=report.get("revision"),
                )
            )
        return rows

    def ready(self) -> Readiness:
        local = self.local.ready()
        problems = [] if local.ready else ["worker 0 has no trust state yet"]
        problems += [p for w in self._workers if (p := self._problem(w)) is not None]
        workers = self._summaries()
        return replace(
            local,
            ready=local.ready and not problems,
            reasons=(*local.reasons, *problems),
            store_reachable=_store_reachable(workers),
            workers=tuple(workers),
        )

    def status(self) -> NodeStatus:
        workers = self._summaries()
        return replace(
            self.local.status(),
            node=self.config.node.name,
            roles=self.config.node.roles,
            store_reachable=_store_reachable(workers),
            connections=sum(w.connections for w in workers),
            workers=tuple(workers),
        )


def _store_reachable(workers: list[WorkerStatus]) -> bool:
    # A worker that has not reported yet (None) does not count against the node.
    return all(w.store_reachable is not False for w in workers)


def _exit(returncode: int | None) -> str:
    if returncode is None:
        return "running"
    if returncode < 0:
        return f"signal {signal.Signals(-returncode).name}"
    return f"status {returncode}"
