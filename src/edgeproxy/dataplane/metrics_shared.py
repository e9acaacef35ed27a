"""Metrics shared by edge worker processes (docs/architecture.md "Workers"): each worker writes
its values to files in one directory (prometheus_client's multiprocess mode) and the main process's
/metrics reads them all (`dataplane/metrics.py` `Metrics.render`)."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

# prometheus_client reads this variable to decide where worker processes write their values.
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
# A worker's value file cannot drop a key, so a removed gauge series is overwritten with this value
# and left out of the exposition. No gauge here is ever -Inf (versions, Unix times, 0/1, counts),
# and it loses every max and sum, so a series still set in another worker keeps that value.
RETIRED: Final = -math.inf


def new_registry(shared: Path | None = None) -> CollectorRegistry:
    """The one place a registry is made. With `shared` (a worker metrics directory) the registry
    collects every worker's values from it, for the main process's /metrics."""
    registry = CollectorRegistry(auto_describe=True)
    if shared is not None:
        registry.register(_WorkersCollector(shared))
    return registry


class _WorkersCollector:
    """Every worker's values summed or combined per gauge mode, without retired series."""

    def __init__(self, directory: Path) -> None:
        self._files = MultiProcessCollector(None, path=str(directory))

    def collect(self) -> Iterator[Metric]:
        for family in self._files.collect():
            if family.type == "gauge":
                family.samples = [s for s in family.samples if s.value != RETIRED]
            yield family


def shared_directory() -> Path | None:
    """The worker metrics directory of this process, or None when it runs alone."""
    path = os.environ.get(MULTIPROC_ENV)
    return Path(path) if path else None


@contextlib.contextmanager
def shared_metrics() -> Iterator[Path]:
    """Make a private directory for the workers' metric files and switch this process (and the
    worker processes it starts, through the environment) to multiprocess values; remove it at the
    end. Enter it before any `Metrics` exists."""
    directory = Path(tempfile.mkdtemp(prefix="edgeproxy-metrics-"))
    previous = values.ValueClass
    os.environ[MULTIPROC_ENV] = str(directory)
    # prometheus_client picks its value class once, when first imported, from the environment; the
    # main process imported it before the config said "workers", so pick again. Worker processes
    # inherit the variable and need nothing of the kind.
    values.ValueClass = values.MultiProcessValue()
    try:
        yield directory
    finally:
        values.ValueClass = previous
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


def worker_exited(pid: int, directory: Path) -> None:
    """Drop a dead worker's live gauges (its counters stay: totals never go down)."""
    mark_process_dead(pid, str(directory))
