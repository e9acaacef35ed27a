"""Figure 7: HTTP/2 through each proxy with h2load and the client certificate (bench/h2load.py), one
worker each, runs alternating as in figures 1 and 2.

- New HTTP/2 connections/s: batches of 64 connections, back to back for the run's duration; each
  connection makes a full mTLS handshake, sends 4 requests as 4 concurrent streams and closes.
  The rate is connections over h2load's own time (its start-up between batches is not counted);
  per proxy CPU-second, connections over the proxy's CPU time.
- Requests/s over multiplexed streams: 16 kept connections with 10 streams in flight each, for
  the run's duration after a 1 s warm-up.

A client without a certificate is tried once per proxy first: both must refuse it, which shows
the figures were taken with mTLS in force.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import h2load, procs, throughput
from bench.rig import PROXIES, Rig

BATCH = 64  # connections per h2load process, all opened at once (ab -c 64 in figure 1)
PER_CONNECTION = 4  # requests per new connection, sent as concurrent streams
MUX_CONNECTIONS = 16
MUX_STREAMS = 10


def _connections(rig: Rig, shim: Path, name: str, seconds: float) -> dict[str, Any]:
    target = rig.target(name)
    pids = target.workers()
    meter = procs.CpuMeter(pids)
    cpu_before = sum(procs.cpu_seconds(p) for p in pids)
    served = requests = 0
    h2load_seconds = 0.0
    batches = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = h2load.run(
            rig.processes,
            shim,
            target.port,
            rig.pki,
            clients=BATCH,
            streams=PER_CONNECTION,
            requests=BATCH * PER_CONNECTION,
            timeout=30,
        )
        batches += 1
        requests += BATCH * PER_CONNECTION
        served += result.status_2xx
        h2load_seconds += result.seconds
        if result.timed_out or result.status_2xx == 0:
            break  # a broken proxy must not keep the loop spinning
    proxy_seconds = sum(procs.cpu_seconds(p) for p in pids) - cpu_before
    connections = served / PER_CONNECTION
    return {
        "rps": connections / h2load_seconds if h2load_seconds else 0.0,
        "connections": connections,
        "batches": batches,
        "h2load_seconds": round(h2load_seconds, 3),
        "failed": requests - served,
        "per_cpu_second": connections / proxy_seconds if proxy_seconds > 0.05 else None,
        **meter.read(),
        # The proxy's share of the time h2load ran (the gaps between batches cost it nothing).
        "proxy_cpu": round(proxy_seconds / h2load_seconds, 3) if h2load_seconds else 0.0,
    }


def _multiplexed(rig: Rig, shim: Path, name: str, seconds: float) -> dict[str, Any]:
    target = rig.target(name)
    meter = procs.CpuMeter(target.workers())
    result = h2load.run(
        rig.processes,
        shim,
        target.port,
        rig.pki,
        clients=MUX_CONNECTIONS,
        streams=MUX_STREAMS,
        seconds=seconds,
        timeout=seconds + 30,
    )
    cpu = meter.read()
    busy = float(cpu["proxy_cpu"])
    return {
        "rps": result.rps,
        "complete": result.status_2xx,
        "failed": result.total - result.status_2xx,
        "protocol": result.protocol,
        "per_cpu_second": result.rps / busy if busy > 0.05 else None,
        **cpu,
    }


def _refused_without_certificate(rig: Rig, shim: Path, name: str) -> bool:
    result = h2load.run(
        rig.processes,
        shim,
        rig.target(name).port,
        rig.pki,
        clients=1,
        streams=1,
        requests=1,
        certificate=False,
        timeout=30,
    )
    return result.status_2xx == 0 and not result.timed_out


def measure(rig: Rig, workdir: Path, *, seconds: float, runs: int) -> dict[str, Any]:
    shim = h2load.build_shim(workdir)
    refused = {name: _refused_without_certificate(rig, shim, name) for name in PROXIES}
    return {
        "batch": BATCH,
        "per_connection": PER_CONNECTION,
        "mux_connections": MUX_CONNECTIONS,
        "mux_streams": MUX_STREAMS,
        "refused_without_certificate": refused,
        "connections": throughput.alternate(
            lambda name, s: _connections(rig, shim, name, s), seconds=seconds, runs=runs
        ),
        "multiplexed": throughput.alternate(
            lambda name, s: _multiplexed(rig, shim, name, s), seconds=seconds, runs=runs
        ),
    }
