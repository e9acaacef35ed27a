"""ApacheBench with a client certificate (`-E`), pinned to the load CPU, and its report parsed.

ab is the load tool because it presents a client certificate (wrk cannot) and, without `-k`, opens
one new TLS connection per request with no session resumption: each request is a full mTLS
handshake plus one proxied request, the way a fleet of fresh clients arrives.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from typing import Any

from bench import procs
from bench.pki import Pki


@dataclass
class AbResult:
    rps: float = 0.0
    complete: int = 0
    failed: int = 0
    non_2xx: int = 0
    handshake_errors: int = 0  # "SSL handshake failed" lines on ab's stderr
    seconds: float = 0.0
    protocol: str = ""
    percentiles_ms: dict[int, float] = field(default_factory=dict)
    timed_out: bool = False


def start_ab(
    processes: procs.Processes,
    port: int,
    pki: Pki,
    *,
    concurrency: int,
    keepalive: bool,
    seconds: float | None = None,
    requests: int = 10_000_000,
    protocol: str = "TLS1.3",
) -> subprocess.Popen[str]:
    """`seconds` bounds a throughput run (`-t`); without it ab does exactly `requests`, so none is
    cut mid-handshake (used when counting failures)."""
    argv = ["ab", "-q", "-r", "-s", "10", "-c", str(concurrency), "-f", protocol]
    argv += ["-E", str(pki.client_combined)]
    if keepalive:
        argv.append("-k")
    if seconds is not None:
        argv += ["-t", str(max(1, round(seconds)))]  # -t implies -n 50000: -n must come after
    argv += ["-n", str(requests), f"https://localhost:{port}/"]
    return processes.spawn(
        procs.pinned(procs.LOAD_CPU, argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish_ab(processes: procs.Processes, proc: subprocess.Popen[str], timeout: float) -> AbResult:
    """ab's report; after `timeout` seconds ab is killed and what it printed is parsed."""
    stdout, stderr, timed_out = processes.communicate(proc, timeout)
    result = parse(stdout, stderr)
    result.timed_out = timed_out
    return result


def run_ab(
    processes: procs.Processes, port: int, pki: Pki, *, timeout: float = 120.0, **options: Any
) -> AbResult:
    return finish_ab(processes, start_ab(processes, port, pki, **options), timeout)


def _num(pattern: str, text: str, default: float = 0.0) -> float:
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else default


def parse(stdout: str | bytes, stderr: str | bytes) -> AbResult:
    out = stdout.decode(errors="replace") if isinstance(stdout, bytes) else stdout
    err = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
    proto = re.search(r"^SSL/TLS Protocol:\s+(\S+)", out, re.MULTILINE)
    return AbResult(
        rps=_num(r"^Requests per second:\s+([\d.]+)", out),
        complete=int(_num(r"^Complete requests:\s+(\d+)", out)),
        failed=int(_num(r"^Failed requests:\s+(\d+)", out)),
        non_2xx=int(_num(r"^Non-2xx responses:\s+(\d+)", out)),
        handshake_errors=err.count("SSL handshake failed"),
        seconds=_num(r"^Time taken for tests:\s+([\d.]+)", out),
        protocol=proto.group(1) if proto else "",
        percentiles_ms={
            int(p): float(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\d+)", out, re.MULTILINE)
        },
    )
