"""Figures 1 and 2: new mTLS handshakes/s and keep-alive proxied requests/s, one worker each.

Runs alternate between the proxies (nginx, edgeproxy, nginx, ...) so a drift in the machine's
speed hits both alike. Each run records the proxy's own CPU use: when the proxy is not saturated
(the load CPU ran out first) the raw rate under-states it, so we also report the rate per second
of proxy CPU, the fairer ratio when one side was held back by the load generator.
"""

from __future__ import annotations

import functools
import statistics
import subprocess
from collections.abc import Callable
from typing import Any

from bench import procs
from bench.ab import AbResult, run_ab
from bench.rig import PROXIES, Rig


def _measure(rig: Rig, name: str, *, keepalive: bool, concurrency: int, seconds: float) -> dict:
    target = rig.target(name)
    meter = procs.CpuMeter(target.workers())
    result: AbResult = run_ab(
        rig.processes,
        target.port,
        rig.pki,
        concurrency=concurrency,
        keepalive=keepalive,
        seconds=seconds,
        timeout=seconds + 30,
    )
    cpu = meter.read()
    busy = float(cpu["proxy_cpu"])
    return {
        "rps": result.rps,
        "complete": result.complete,
        "failed": result.failed + result.non_2xx + result.handshake_errors,
        "protocol": result.protocol,
        "p50_ms": result.percentiles_ms.get(50),
        "p99_ms": result.percentiles_ms.get(99),
        "per_cpu_second": result.rps / busy if busy > 0.05 else None,
        **cpu,
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of runs that each hold `rps`, `per_cpu_second` and `proxy_cpu`."""
    per_cpu = [r["per_cpu_second"] for r in runs if r["per_cpu_second"]]
    return {
        "median_rps": statistics.median(r["rps"] for r in runs),
        "median_per_cpu_second": statistics.median(per_cpu) if per_cpu else None,
        "median_proxy_cpu": statistics.median(r["proxy_cpu"] for r in runs),
        "failed": sum(r["failed"] for r in runs),
        "runs": runs,
    }


def alternate(
    one_run: Callable[[str, float], dict[str, Any]], *, seconds: float, runs: int
) -> dict[str, Any]:
    """`one_run(proxy, seconds)`: one short unmeasured run per proxy (pages in code paths, fills
    the origin pools), then `runs` measured runs each, alternating, a disturbed one repeated once;
    the summary per proxy."""
    for name in PROXIES:
        one_run(name, 1)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in PROXIES}
    for i in range(runs):
        order = PROXIES if i % 2 == 0 else tuple(reversed(PROXIES))
        for name in order:
            results[name].append(procs.least_disturbed(functools.partial(one_run, name, seconds)))
    return {name: summary(r) for name, r in results.items()}


def measure(
    rig: Rig, *, keepalive: bool, concurrency: int, seconds: float, runs: int
) -> dict[str, Any]:
    return alternate(
        lambda name, s: _measure(
            rig, name, keepalive=keepalive, concurrency=concurrency, seconds=s
        ),
        seconds=seconds,
        runs=runs,
    )


def tickets_per_handshake(rig: Rig, name: str) -> int | None:
    """TLS 1.3 NewSessionTickets sent after one full handshake (openssl s_client -msg)."""
    pki = rig.pki
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{rig.target(name).port}"]
    argv += ["-servername", "localhost", "-tls1_3", "-msg", "-ign_eof"]
    argv += ["-cert", str(pki.client_cert), "-key", str(pki.client_key)]
    argv += ["-CAfile", str(pki.server_ca)]
    request = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    proc = rig.processes.spawn(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, _, timed_out = rig.processes.communicate(proc, 10, request)
    return None if timed_out else out.count(", NewSessionTicket")
