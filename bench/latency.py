"""Figure 3: p50/p99 at about half of edgeproxy's maximum keep-alive rate, and the p99 each proxy
adds over the origin asked directly at the same rate (open-loop client: bench/rate_client.py).

All three (origin, nginx, edgeproxy) get the *same* offered rate: half of edgeproxy's measured
maximum, which is far below nginx's maximum; a Python client on one CPU could not offer half of
nginx's maximum anyway. The origin is asked over plain HTTP, so a proxy's "added" latency includes
its TLS record work and that of the client.
"""

from __future__ import annotations

import functools
import json
import statistics
import sys
from typing import Any

from bench import procs
from bench.rig import PROXIES, Rig


def _run(rig: Rig, port: int, rate: float, seconds: float, tls: bool) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.rate_client", "--port", str(port)]
    argv += ["--rate", f"{rate:.0f}", "--seconds", str(seconds), "--conns", "16"]
    if tls:
        pki = rig.pki
        argv += ["--tls", "--cert", str(pki.client_cert), "--key", str(pki.client_key)]
        argv += ["--ca", str(pki.server_ca)]
    meter = procs.CpuMeter([])
    out, err, timed_out, code = rig.processes.run(procs.pinned(procs.LOAD_CPU, argv), seconds + 30)
    if timed_out or code != 0:
        raise RuntimeError(f"rate client failed (exit {code}): {err[-500:]}")
    return {**json.loads(out), "foreign_cpu": meter.read()["foreign_cpu"]}


def measure(rig: Rig, rate: float, *, seconds: float, runs: int) -> dict[str, Any]:
    ports = {"origin": (rig.origin_port, False)}
    ports.update({name: (rig.target(name).port, True) for name in PROXIES})
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in ports}
    for i in range(runs):
        names = list(ports) if i % 2 == 0 else list(reversed(ports))
        for name in names:
            port, tls = ports[name]
            results[name].append(
                procs.least_disturbed(functools.partial(_run, rig, port, rate, seconds, tls))
            )
    out: dict[str, Any] = {"offered_rps": rate}
    for name, runs_ in results.items():
        out[name] = {
            "p50_ms": statistics.median(r["p50_ms"] for r in runs_),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs_),
            "achieved_rps": statistics.median(r["achieved_rps"] for r in runs_),
            "errors": sum(r["errors"] for r in runs_),
            "runs": runs_,
        }
    for name in PROXIES:
        out[name]["added_p99_ms"] = out[name]["p99_ms"] - out["origin"]["p99_ms"]
    return out
