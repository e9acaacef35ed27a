"""`make bench`: measure the docs/performance.md figures for nginx and edgeproxy, print one table,
keep the JSON.

    .venv/bin/python -m bench.run [--runs 3] [--seconds 4] [--quick] [--no-postgres]

Everything it starts is stopped on the way out, Ctrl-C and errors included; every load is bounded
in count and time; only loopback is used. See bench/README.md for the method.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import http2, latency, memory, postgres, procs, report, sysdeps, throughput, trust
from bench.edge import EdgeProxy
from bench.rig import PROXIES, Rig

OUT = Path(__file__).resolve().parent / "out" / "latest.json"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=3, help="runs per figure (median reported)")
    p.add_argument("--seconds", type=float, default=4.0, help="duration of one load run")
    p.add_argument("--activations", type=int, default=30, help="activations for figure 4")
    p.add_argument(
        "--changes", type=int, default=20, help="binding changes and blocks for figure 4"
    )
    p.add_argument("--idle", type=int, default=1000, help="connections for memory/connection")
    p.add_argument("--held", type=int, default=10_000, help="connections for the 'held' figure")
    p.add_argument(
        "--after-burst",
        type=float,
        default=60.0,
        help="seconds after the held connections close to read the workers' RSS",
    )
    p.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL figure")
    p.add_argument("--quick", action="store_true", help="1 run, short loads: a smoke test")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="seconds to wait at most for other load on the machine to stop before starting",
    )
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, configs)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.seconds, args.activations, args.held = 1, 2.0, 10, 2000
        args.changes = 10
        args.after_burst = 10.0
        args.wait_quiet = 0.0
    return args


def _raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for want in (65536, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
            return want
        except (ValueError, OSError):
            continue
    return soft


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (done.stdout + done.stderr).strip().splitlines()[0]


def _background(wait: float) -> list[float]:
    """Per-CPU use by others before we start, waiting up to `wait` s for it to fall below 15%."""
    deadline = time.monotonic() + wait
    while True:
        meter = procs.CpuMeter([])
        time.sleep(1.0)
        busy: list[float] = meter.read()["cpus"]
        if max(busy, default=0) < 0.15 or time.monotonic() >= deadline:
            return busy
        print(f"bench: waiting for a quieter machine (CPUs busy: {busy})", flush=True)
        time.sleep(2.0)


def _environment(fd_limit: int, wait: float) -> dict[str, Any]:
    from OpenSSL import SSL

    background = _background(wait)
    return {
        "cpus": os.cpu_count(),
        "pinned": procs.pinning_available(),
        "origin_sched_fifo": procs.realtime_available(),
        "background_cpu_busy": background,
        "loadavg": os.getloadavg(),
        "fd_limit": fd_limit,
        "python": platform.python_version(),
        "nginx": _version(["nginx", "-v"]),
        "nginx_openssl": _version(["openssl", "version"]),
        "edgeproxy_openssl": SSL.SSLeay_version(SSL.SSLEAY_VERSION).decode(),
        "client_openssl": ssl.OPENSSL_VERSION,
        "ab": _version(["ab", "-V"]),
        "h2load": _version(["h2load", "--version"]),
    }


def _memory(rig: Rig, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"n": args.idle}
    for name in PROXIES:
        idle = memory.worker_rss(rig, name)
        cycles = [memory.hold(rig, name, args.idle, clients=2, deadline=60) for _ in range(2)]
        out[name] = {
            "idle_rss": max(idle),
            "workers": len(idle),
            "per_connection": cycles[0]["bytes_per_connection"],
            "cycles": cycles,
        }
    return out


def _during_activation(rig: Rig, hs: dict[str, Any], args: argparse.Namespace) -> dict:
    out: dict[str, Any] = {"switches": 2 * args.runs}
    for name in PROXIES:
        runs = [
            trust.handshakes_during_activation(
                rig, name, hs[name]["median_rps"], seconds=max(args.seconds, 3.0) + 2
            )
            for _ in range(args.runs)
        ]
        out[name] = {
            "client_failed": sum(r["client_failed"] for r in runs),
            "server_failed": sum(r["server_failed"] for r in runs),
            "switched_ok": all(
                "COMPLETE" in ev or "reloaded" in ev for r in runs for ev in r["events"]
            )
            and all(len(r["events"]) == 2 for r in runs),
            "runs": runs,
        }
    return out


def _big_activation(rig: Rig, args: argparse.Namespace) -> dict[str, Any]:
    """Median over runs of the baseline and during p99s (version 3 holds 300 certificates)."""
    runs = [
        trust.handshake_p99_big_activation(rig.edge, rig, big=3, seconds=max(args.seconds, 3.0) + 2)
        for _ in range(args.runs)
    ]

    def median(key: str) -> float | None:
        values = [r[key] for r in runs if r[key] is not None]
        return statistics.median(values) if values else None

    return {
        "baseline_p99_ms": median("baseline_p99_ms"),
        "during_p99_ms": median("during_p99_ms"),
        "during_handshakes": sum(r["during_handshakes"] for r in runs),
        "activations": sum(r["activations"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "runs": runs,
    }


def _store_changes(edge: EdgeProxy, rig: Rig, args: argparse.Namespace) -> dict[str, Any]:
    """Figure 4's binding change → applied and block → refused, on `edge`'s store."""
    return {
        "binding": trust.binding_latency(edge, rig.pki, args.changes),
        "block": trust.block_latency(edge, rig.pki, args.changes),
    }


def _postgres(rig: Rig, args: argparse.Namespace, workdir: Path) -> dict[str, Any] | None:
    """Figure 4 on PostgreSQL: activation, binding change and block, keyed as on SQLite."""
    url = postgres.create_database()
    if url is None:
        return None
    edge = EdgeProxy(rig.processes, workdir / "edgeproxy-pg", rig.state, url, "postgres")
    try:
        edge.start_admin(rig.pki, rig.origin_port)
        edge.create_ca_set([rig.pki.client_ca, rig.pki.client_ca_v2])
        edge.start_edge(rig.pki, "ecdsa-p256", rig.origin_port)
        return {
            "activation": trust.activation_latency(edge, args.activations),
            **_store_changes(edge, rig, args),
        }
    finally:
        edge.stop_edge()
        edge.stop_admin()
        postgres.drop_database(url)


def measure(rig: Rig, args: argparse.Namespace, workdir: Path, results: dict[str, Any]) -> None:
    def step(name: str) -> None:
        print(f"bench: {name} ({time.monotonic() - started:.0f} s)", flush=True)

    started = time.monotonic()
    step("starting origin, edgeproxy admin, CA set")
    rig.start()
    rig.use_server("ecdsa-p256")
    step(f"6: idle RSS and {args.idle} idle connections")
    results["memory"] = _memory(rig, args)
    step(f"6: {args.held} idle connections held, then the RSS {args.after_burst:.0f} s later")
    held = {name: memory.hold(rig, name, args.held, clients=4, deadline=90) for name in PROXIES}
    # nginx's wait runs while edgeproxy's burst does: the step costs one wait, not two.
    closed_at = {name: held[name].pop("closed_at") for name in PROXIES}
    results["held"] = held
    results["after_burst"] = {
        "connections": args.held,
        **memory.rss_after_burst(rig, closed_at, args.after_burst),
    }
    results["tickets"] = {name: throughput.tickets_per_handshake(rig, name) for name in PROXIES}
    step("1: new mTLS handshakes, ECDSA P-256")
    hs = {
        "ecdsa-p256": throughput.measure(
            rig, keepalive=False, concurrency=64, seconds=args.seconds, runs=args.runs
        )
    }
    results["handshakes"] = hs
    step("2: keep-alive requests")
    results["keepalive"] = throughput.measure(
        rig, keepalive=True, concurrency=16, seconds=args.seconds, runs=args.runs
    )
    rate = results["keepalive"]["edgeproxy"]["median_rps"] / 2
    step(f"3: latency at {rate:,.0f} req/s")
    results["latency"] = latency.measure(rig, rate, seconds=args.seconds, runs=args.runs)
    step("7: HTTP/2 (h2load): new connections, multiplexed requests")
    results["http2"] = http2.measure(rig, workdir, seconds=args.seconds, runs=args.runs)
    # Before figure 5: its nginx reloads replace the worker, which would look fresh.
    results["memory"]["after_load_rss"] = {
        name: max(memory.worker_rss(rig, name)) for name in PROXIES
    }
    step("5: handshakes while trust changes")
    results["during_activation"] = _during_activation(rig, hs["ecdsa-p256"], args)
    step("4: handshake p99 while a 300-certificate version is activated")
    results["big_activation"] = _big_activation(rig, args)
    step("4: activation -> applied, SQLite")
    results["activation_sqlite"] = trust.activation_latency(rig.edge, args.activations)
    step("4: binding change -> applied, block -> refused, SQLite")
    changes = _store_changes(rig.edge, rig, args)
    results["binding_sqlite"], results["block_sqlite"] = changes["binding"], changes["block"]
    step("1: new mTLS handshakes, RSA-2048")
    rig.use_server("rsa-2048")
    hs["rsa-2048"] = throughput.measure(
        rig, keepalive=False, concurrency=64, seconds=args.seconds, runs=args.runs
    )
    if not args.no_postgres:
        step("4: activation, binding change, block on PostgreSQL")
        pg = _postgres(rig, args, workdir) or {}
        for figure in ("activation", "binding", "block"):
            results[f"{figure}_postgres"] = pg.get(figure)
    step("done")


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    started = time.monotonic()
    sysdeps.ensure_tools()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    signal.signal(signal.SIGHUP, _stop_on_sigterm)
    results: dict[str, Any] = {"environment": _environment(_raise_fd_limit(), args.wait_quiet)}
    busy = max(results["environment"]["background_cpu_busy"], default=0)
    if busy > 0.15:
        print(
            f"bench: WARNING: the machine is busy ({busy:.0%} of a CPU before we start): "
            "figures will be noisy",
            flush=True,
        )
    shm = Path("/dev/shm")
    tmpfs = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    workdir = Path(tempfile.mkdtemp(prefix="edgeproxy-bench-", dir=tmpfs))
    state = Path(tempfile.mkdtemp(prefix="edgeproxy-bench-state-"))
    for directory in (workdir, state):
        directory.chmod(0o755)
    rig: Rig | None = None
    status = 0
    try:
        rig = Rig(workdir, state)
        measure(rig, args, workdir, results)
    except KeyboardInterrupt:
        print("bench: interrupted; stopping everything", flush=True)
        status = 130
    except Exception as error:
        print(f"bench: FAILED: {type(error).__name__}: {error}", flush=True)
        results["error"] = f"{type(error).__name__}: {error}"
        status = 1
    finally:
        if rig is not None:
            _collect_logs(workdir, results)
            rig.close()
        if args.keep:
            print(f"bench: work directories kept: {workdir} {state}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
            shutil.rmtree(state, ignore_errors=True)
    results["runtime_seconds"] = round(time.monotonic() - started, 1)
    foreign = sorted(_find(results, "foreign_cpu"))
    if foreign:
        results["foreign_cpu"] = {"median": foreign[len(foreign) // 2], "max": foreign[-1]}
    rows = report.build(results)
    print()
    print(report.render(rows))
    print(
        f"\nruntime {results['runtime_seconds']:.0f} s; medians of {args.runs} run(s); "
        f"details in {args.out}"
    )
    if foreign:
        median = foreign[len(foreign) // 2]
        print(
            f"other processes on this machine used {median:.0%} of a CPU during the median load "
            f"run (max {foreign[-1]:.0%}){'; the figures are noisy' if median > 0.1 else ''}"
        )
    results["table"] = [r.__dict__ for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return status


def _find(tree: Any, key: str) -> list[float]:
    """Every value stored under `key` anywhere in nested dicts and lists."""
    if isinstance(tree, dict):
        found = [float(v) for k, v in tree.items() if k == key and v is not None]
        return found + [x for v in tree.values() for x in _find(v, key)]
    if isinstance(tree, list):
        return [x for v in tree for x in _find(v, key)]
    return []


def _collect_logs(workdir: Path, results: dict[str, Any]) -> None:
    """Errors and crashes the processes logged: edgeproxy's JSON lines at error level or above,
    tracebacks, nginx [alert]/[emerg]/[crit] lines."""
    found: dict[str, list[str]] = {}
    for log in sorted(workdir.glob("*.log")) + sorted(workdir.glob("*/error.log")):
        lines = []
        with log.open(errors="replace") as f:
            for line in f:
                if any(
                    m in line
                    for m in (
                        '"level": "error"',
                        '"level": "critical"',
                        "Traceback",
                        "[alert]",
                        "[emerg]",
                        "[crit]",
                    )
                ):
                    lines.append(line.strip()[:400])
        if lines:
            found[str(log.relative_to(workdir))] = lines[:20] + (
                [f"... {len(lines) - 20} more"] if len(lines) > 20 else []
            )
    results["logged_errors"] = found
    for name, lines in found.items():
        print(f"bench: {name}: {len(lines)} error line(s), first: {lines[0][:200]}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
