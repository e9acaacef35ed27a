"""h2load (Debian's nghttp2-client) with the client certificate, pinned to the load CPU, and its
report parsed.

h2load has no option for a client certificate. `bench/client_cert_shim.c`, compiled here with gcc
and loaded with LD_PRELOAD, makes the TLS context h2load creates present the bench's client
certificate, so every connection is a full mTLS handshake (certificate requested, sent and verified)
exactly as with ab. A binding that does not ask for a certificate would have been simpler and would
skip the very work being measured.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from bench.pki import Pki

SHIM_SOURCE = Path(__file__).resolve().parent / "client_cert_shim.c"


def build_shim(directory: Path) -> Path:
    """Compile the client-certificate shim into `directory` (once per bench run)."""
    shim = directory / "client_cert_shim.so"
    if not shim.exists():
        argv = ["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-o", str(shim), str(SHIM_SOURCE)]
        done = subprocess.run([*argv, "-ldl"], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"cannot build {SHIM_SOURCE.name}: {done.stderr.strip()}")
    return shim


@dataclass
class H2loadResult:
    seconds: float = 0.0  # h2load's own "finished in" (the main duration with -D)
    rps: float = 0.0
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    errored: int = 0
    timeouts: int = 0
    status_2xx: int = 0
    protocol: str = ""  # the application protocol ALPN chose ("h2")
    tls: str = ""
    timed_out: bool = False
    stderr: str = ""


def run(
    processes: procs.Processes,
    shim: Path,
    port: int,
    pki: Pki,
    *,
    clients: int,
    streams: int,
    requests: int | None = None,
    seconds: float | None = None,
    warmup: float = 1.0,
    certificate: bool = True,
    timeout: float = 60.0,
) -> H2loadResult:
    """Exactly `requests` spread over `clients` connections (each connection does its share and
    closes), or, with `seconds`, as many as fit in that time after `warmup` on `clients` kept
    connections; `streams` requests in flight per connection. `certificate=False`: none is
    presented (the proxies must refuse the handshake)."""
    argv = ["h2load", "-c", str(clients), "-m", str(streams), "-t", "1"]
    if seconds is not None:
        argv += ["-D", f"{round(seconds * 1000)}ms", "--warm-up-time", f"{round(warmup * 1000)}ms"]
    else:
        argv += ["-n", str(requests if requests is not None else clients)]
    argv.append(f"https://localhost:{port}/")
    env = {**os.environ, "LD_PRELOAD": str(shim)}
    if certificate:
        env |= {"BENCH_CLIENT_CERT": str(pki.client_cert), "BENCH_CLIENT_KEY": str(pki.client_key)}
    proc = processes.spawn(
        procs.pinned(procs.LOAD_CPU, argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    out, err, timed_out = processes.communicate(proc, timeout)
    result = parse(out)
    result.timed_out = timed_out
    result.stderr = err[-500:]
    return result


def _int(pattern: str, text: str) -> int:
    match = re.search(pattern, text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def parse(stdout: str) -> H2loadResult:
    finished = re.search(r"^finished in ([\d.]+)(m?s), ([\d.]+) req/s", stdout, re.MULTILINE)
    tls = re.search(r"^TLS Protocol:\s+(\S+)", stdout, re.MULTILINE)
    alpn = re.search(r"^Application protocol:\s+(\S+)", stdout, re.MULTILINE)
    seconds = 0.0
    if finished:
        seconds = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    return H2loadResult(
        seconds=seconds,
        rps=float(finished.group(3)) if finished else 0.0,
        total=_int(r"^requests: (\d+) total", stdout),
        succeeded=_int(r"^requests: .* (\d+) succeeded", stdout),
        failed=_int(r"^requests: .* (\d+) failed", stdout),
        errored=_int(r"^requests: .* (\d+) errored", stdout),
        timeouts=_int(r"^requests: .* (\d+) timeout", stdout),
        status_2xx=_int(r"^status codes: (\d+) 2xx", stdout),
        protocol=alpn.group(1) if alpn else "",
        tls=tls.group(1) if tls else "",
    )
