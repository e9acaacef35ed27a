"""Figure 6: idle RSS per worker, memory per idle mTLS connection, 10,000 idle connections, and the
RSS a minute after those 10,000 closed.

Connections are opened by bench/tls_client.py in separate processes on the load CPU; each makes
one proxied request and then idles (a keep-alive connection between requests). Memory per
connection is the growth of the proxy workers' RSS with N connections open, divided by N. The
cycle is run twice: RSS after the second close far above the first would point to a leak.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from typing import Any

from bench import procs, promtext
from bench.ab import run_ab
from bench.rig import Rig


def worker_rss(rig: Rig, name: str) -> list[int]:
    return [procs.rss_bytes(pid) for pid in rig.target(name).workers()]


def _readline(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line:
        raise RuntimeError(f"idle client gave no answer within {timeout} s (exit {proc.poll()})")
    return json.loads(line)


def _clients(rig: Rig, name: str, count: int, clients: int, deadline: float) -> list:
    pki = rig.pki
    started = []
    for i in range(clients):
        share = count // clients + (1 if i < count % clients else 0)
        argv = [sys.executable, "-m", "bench.tls_client", "--port", str(rig.target(name).port)]
        argv += ["--count", str(share), "--parallel", str(max(1, 64 // clients))]
        argv += ["--cert", str(pki.client_cert), "--key", str(pki.client_key)]
        argv += ["--ca", str(pki.server_ca), "--deadline", str(deadline)]
        started.append(
            rig.processes.spawn(
                procs.pinned(procs.LOAD_CPU, argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE
            )
        )
    return started


def hold(rig: Rig, name: str, count: int, *, clients: int, deadline: float) -> dict[str, Any]:
    """Open `count` idle connections, measure, check they are all still open, close them."""
    target = rig.target(name)
    before = sum(worker_rss(rig, name))
    t0 = time.monotonic()
    running = _clients(rig, name, count, clients, deadline)
    try:
        opened = [_readline(p, deadline + 30) for p in running]
        setup_seconds = time.monotonic() - t0
        time.sleep(1.0)  # let the proxy settle (buffers released, tickets sent)
        held_rss = sum(worker_rss(rig, name))
        fds = sum(procs.open_fds(pid) for pid in target.workers())
        gauge = None
        if name == "edgeproxy":
            gauge = promtext.total(rig.edge.metrics(), "edgeproxy_connections_active")
        # A new client is still served while they are held.
        probe = run_ab(
            rig.processes,
            target.port,
            rig.pki,
            concurrency=1,
            keepalive=False,
            requests=20,
            timeout=30,
        )
        for p in running:
            assert p.stdin is not None
            p.stdin.write("check\n")
            p.stdin.flush()
        checked = [_readline(p, 30) for p in running]
    finally:
        for p in running:
            try:
                if p.stdin is not None:
                    p.stdin.close()
                p.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                pass
            rig.processes.forget(p)
    closed_at = time.monotonic()
    time.sleep(1.0)
    open_count = sum(o["open"] for o in opened)
    errors: dict[str, int] = {}
    for o in opened:
        for kind, n in o["errors"].items():
            errors[kind] = errors.get(kind, 0) + n
    for c in checked:
        for kind, n in c["gone"].items():
            errors[f"lost while idle: {kind}"] = errors.get(f"lost while idle: {kind}", 0) + n
    return {
        "requested": count,
        "opened": open_count,
        "still_open": sum(c["alive"] for c in checked),
        "errors": errors,
        "probe_ok": probe.complete == 20 and probe.failed == 0 and probe.non_2xx == 0,
        "setup_seconds": round(setup_seconds, 2),
        "rss_before": before,
        "rss_held": held_rss,
        "rss_after_close": sum(worker_rss(rig, name)),
        "bytes_per_connection": (held_rss - before) / open_count if open_count else None,
        "proxy_fds_held": fds,
        "connections_active_gauge": gauge,
        "proxy_alive": rig.alive(name),
        "closed_at": closed_at,  # time.monotonic() when the clients had closed every connection
    }


def rss_after_burst(
    rig: Rig, closed_at: dict[str, float], wait: float, every: float = 5.0
) -> dict[str, Any]:
    """Each proxy's worker RSS `wait` seconds after its burst's clients closed (`closed_at`, by
    proxy), and samples every `every` seconds until then: does the memory come back, and when.
    Bounded: it returns `wait` seconds after the latest close."""
    out: dict[str, Any] = {"wait": wait}
    samples: dict[str, list[tuple[float, int]]] = {name: [] for name in closed_at}
    pending = dict(closed_at)
    while pending:
        now = time.monotonic()
        for name, closed in list(pending.items()):
            rss = sum(worker_rss(rig, name))
            samples[name].append((round(now - closed, 1), rss))
            if now >= closed + wait:
                out[name] = {"rss": rss, "seconds_after": round(now - closed, 1)}
                del pending[name]
        if pending:
            due = min(closed + wait for closed in pending.values())
            time.sleep(max(0.0, min(due, time.monotonic() + every) - time.monotonic()))
    for name, taken in samples.items():
        out[name]["samples"] = taken
    return out
