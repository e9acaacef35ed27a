"""Figures 4 and 5: activation → applied latency, binding change → applied and block → refused
latency, handshakes lost while trust changes, and the handshake p99 while a 300-certificate
version is activated.

Figure 4 alternates versions 1 and 2 of the bound CA set through the admin API. Each sample is the
edge node's own `appliedAt` (/status) minus the activation's `createdDate`: both stamped by the
same clock on this machine, so the figure does not depend on how often the bench polls. The
`edgeproxy_trust_apply_latency_seconds` histogram is read before and after as a cross-check.

The binding figure toggles `sendCaListToClient` on a store-managed edge certificate's binding
(PUT /edge/v1/edge-certificates/{name}/mutual-authentication/{network}); each sample is the node's
`appliedAt` for the revision after the change minus the change's `createdDate`, read as figure 4
reads an activation. The block figure blocks the client certificate (POST blocked-certificates)
and makes full mTLS handshakes, each with one request, until one is refused; each sample runs from
just before the API call to the end of that refused handshake, on this process's clock, so it
includes the API call and at most one handshake of polling. The block is lifted, and a handshake
accepted again, before the next sample.

Figure 5 runs a handshake load (bench/tls_client.py --churn: full mTLS handshakes, one request
each, none abandoned) and changes trust twice in the middle: edgeproxy activates the other version
(both trust the client); nginx, which has no such API, gets its CA file rewritten and a graceful
reload (SIGHUP), its own way to change trust without a restart.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

from bench import procs, promtext
from bench.edge import EdgeProxy
from bench.pki import MANAGED_HOST, Pki
from bench.rig import Rig

APPLY = "edgeproxy_trust_apply_latency_seconds"


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def activation_latency(edge: EdgeProxy, count: int, timeout: float = 10.0) -> dict[str, Any]:
    count_before, sum_before, _ = promtext.histogram(edge.metrics(), APPLY)
    samples: list[float] = []
    seen: list[float] = []
    problems: list[str] = []
    current = edge.applied_version() or 1
    for _ in range(count):
        version = 2 if current == 1 else 1
        started = time.monotonic()
        activation = edge.activate(version)
        if not edge.wait_applied(version, timeout, interval=0.002):
            problems.append(f"version {version} not applied within {timeout} s")
            break
        seen.append(time.monotonic() - started)
        trust = edge.status()["trust"]
        samples.append(
            (_when(trust["appliedAt"]) - _when(activation["createdDate"])).total_seconds()
        )
        final = edge.wait_activation(version, int(activation["activationId"]), timeout)
        if final["activationStatus"] != "COMPLETE":
            problems.append(f"activation {final['activationId']}: {final['activationStatus']}")
            break
        current = version
    count_after, sum_after, _ = promtext.histogram(edge.metrics(), APPLY)
    ms = [s * 1000 for s in samples]
    return {
        "activations": len(samples),
        "p50_ms": statistics.median(ms) if ms else None,
        "p99_ms": _percentile(ms, 99) if ms else None,
        "max_ms": max(ms) if ms else None,
        "seen_by_poller_p50_ms": statistics.median(seen) * 1000 if seen else None,
        "histogram_count_delta": count_after - count_before,
        "histogram_mean_ms": (sum_after - sum_before) / (count_after - count_before) * 1000
        if count_after > count_before
        else None,
        "problems": problems,
        "samples_ms": [round(v, 3) for v in ms],
    }


def _latencies(ms: list[float], count: int, problems: list[str]) -> dict[str, Any]:
    return {
        "samples": len(ms),
        "asked": count,
        "p50_ms": statistics.median(ms) if ms else None,
        "p99_ms": _percentile(ms, 99) if ms else None,
        "max_ms": max(ms) if ms else None,
        "problems": problems,
        "samples_ms": [round(v, 3) for v in ms],
    }


def binding_latency(edge: EdgeProxy, pki: Pki, count: int, timeout: float = 10.0) -> dict[str, Any]:
    """Binding change → applied: `count` changes of the store-managed certificate's binding,
    `sendCaListToClient` toggled each time, each waited for until COMPLETE (a change is refused
    while the previous one is in flight)."""
    edge.create_managed(pki.managed, MANAGED_HOST)
    samples: list[float] = []
    problems: list[str] = []
    for turn in range(count):
        before = edge.revision()
        change = edge.bind(send_ca_list=turn % 2 == 0)
        if not edge.wait_revision_past(before, timeout):
            problems.append(f"change {change['changeId']} not applied within {timeout} s")
            break
        trust = edge.status()["trust"]
        samples.append((_when(trust["appliedAt"]) - _when(change["createdDate"])).total_seconds())
        final = edge.wait_change(int(change["changeId"]), timeout)
        if final["status"] != "COMPLETE":
            problems.append(f"change {final['changeId']}: {final['status']}")
            break
    return _latencies([s * 1000 for s in samples], count, problems)


def _client_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.server_ca))
    context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return context


def _served(context: ssl.SSLContext, port: int) -> bool:
    """One full mTLS handshake and one request: any HTTP answer means the certificate was
    accepted; none, refused (under TLS 1.3 the server's verdict on the client certificate arrives
    after the client's side of the handshake, so it shows on the first read)."""
    try:
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            return tls.recv(16).startswith(b"HTTP/1.1 ")  # any answer: accepted
    except (OSError, ssl.SSLError):
        return False


def _until(context: ssl.SSLContext, port: int, served: bool, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _served(context, port) == served:
            return True
    return False


def block_latency(edge: EdgeProxy, pki: Pki, count: int, timeout: float = 10.0) -> dict[str, Any]:
    """Block → refused: `count` blocks of the client certificate, each timed until a new
    handshake with it is refused, then lifted until one is served again."""
    context = _client_context(pki)
    port = edge.ports.edge
    fingerprint = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pki.client_cert.read_text())).hexdigest()
    samples: list[float] = []
    problems: list[str] = []
    if not _until(context, port, True, timeout):
        return _latencies([], count, ["the client certificate is not served before blocking"])
    for _ in range(count):
        started = time.monotonic()
        block = edge.block(fingerprint)
        refused = _until(context, port, False, timeout)
        elapsed = time.monotonic() - started
        edge.unblock(int(block["blockId"]))
        if not refused:
            problems.append(f"block {block['blockId']} not enforced within {timeout} s")
            break
        samples.append(elapsed)
        if not _until(context, port, True, timeout):
            problems.append(f"unblock {block['blockId']} not applied within {timeout} s")
            break
    return _latencies([s * 1000 for s in samples], count, problems)


def _switch_edge(edge: EdgeProxy) -> str:
    version = 2 if edge.applied_version() == 1 else 1
    activation = edge.activate(version)
    applied = edge.wait_applied(version, 10)
    final = edge.wait_activation(version, int(activation["activationId"]), 10)
    return f"v{version}: applied={applied} {final['activationStatus']}"


def _switch_nginx(rig: Rig, turn: int) -> str:
    source = rig.pki.client_ca_v2 if turn % 2 == 0 else rig.pki.client_ca
    shutil.copyfile(source, rig.nginx_ca)
    rig.nginx.reload()
    return f"{source.name}: reloaded"


def _start_load(rig: Rig, name: str, count: int, deadline: float) -> subprocess.Popen[str]:
    pki = rig.pki
    argv = [sys.executable, "-m", "bench.tls_client", "--churn", "--parallel", "64"]
    argv += ["--port", str(rig.target(name).port), "--count", str(count)]
    argv += ["--cert", str(pki.client_cert), "--key", str(pki.client_key)]
    argv += ["--ca", str(pki.server_ca), "--deadline", str(deadline)]
    return rig.processes.spawn(
        procs.pinned(procs.LOAD_CPU, argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def handshakes_during_activation(
    rig: Rig, name: str, rate: float, *, seconds: float, switches: int = 2
) -> dict[str, Any]:
    """`rate` (handshakes/s) sizes the load to last about `seconds`; trust changes `switches`
    times at even intervals while it runs."""
    count = max(500, int(rate * seconds))
    metrics_before = rig.edge.metrics() if name == "edgeproxy" else ""
    logged_before = rig.nginx.handshake_failures_logged()
    started = time.monotonic()
    proc = _start_load(rig, name, count, deadline=seconds * 4 + 20)
    events = []
    for turn in range(switches):
        time.sleep(max(0.0, started + seconds * (turn + 1) / (switches + 1) - time.monotonic()))
        if proc.poll() is not None:
            events.append("load ended before the switch")
            break
        events.append(_switch_edge(rig.edge) if name == "edgeproxy" else _switch_nginx(rig, turn))
    out_text, err_text, timed_out = rig.processes.communicate(proc, seconds * 4 + 30)
    load = json.loads(out_text.splitlines()[0]) if out_text.strip() else {}
    client_errors = load.get("errors", {"no report from the load client": 1, "stderr": err_text})
    out: dict[str, Any] = {
        "attempted": count,
        "completed": load.get("open", 0),
        "seconds": load.get("seconds"),
        "client_failed": sum(v for v in client_errors.values() if isinstance(v, int)),
        "client_errors": client_errors,
        "timed_out": timed_out,
        "events": events,
    }
    if name == "edgeproxy":
        before = promtext.handshake_failures(metrics_before)
        after = promtext.handshake_failures(rig.edge.metrics())
        by_reason = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
        out["server_failed"] = sum(by_reason.values())
        out["server_failed_by_reason"] = by_reason
    else:
        rig.nginx_settle()
        out["server_failed"] = rig.nginx.handshake_failures_logged() - logged_before
    return out


def _timed_load(rig: Rig, seconds: float) -> subprocess.Popen[str]:
    """Full mTLS handshakes, one request each, 8 at a time, for `seconds`: each connection's start
    and time to its response (a closed loop well below saturation, so latency is not queueing)."""
    pki = rig.pki
    argv = [sys.executable, "-m", "bench.tls_client", "--churn", "--parallel", "8", "--timings"]
    argv += ["--port", str(rig.target("edgeproxy").port), "--count", "10000000"]
    argv += ["--for-seconds", str(seconds), "--deadline", str(seconds + 20)]
    argv += ["--cert", str(pki.client_cert), "--key", str(pki.client_key)]
    argv += ["--ca", str(pki.server_ca)]
    return rig.processes.spawn(
        procs.pinned(procs.LOAD_CPU, argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _timings(rig: Rig, proc: subprocess.Popen[str], seconds: float) -> tuple[list, int]:
    out_text, _, _ = rig.processes.communicate(proc, seconds + 30)
    load = json.loads(out_text.splitlines()[0]) if out_text.strip() else {}
    errors = load.get("errors", {"no report from the load client": 1})
    return load.get("timings", []), sum(v for v in errors.values() if isinstance(v, int))


def handshake_p99_big_activation(
    edge: EdgeProxy, rig: Rig, *, big: int, seconds: float, warmup: float = 0.5
) -> dict[str, Any]:
    """Handshake latency (connect to response) with nothing happening, then while version `big`
    (300 certificates) and the version in force are activated in turn. Samples of the second run
    count when the handshake overlapped an activation of `big`: from the API call until the node
    reported it applied (PEM parsing and contexts are built then, in an executor thread)."""
    home = edge.applied_version() or 1
    begun_baseline = time.monotonic()
    proc = _timed_load(rig, seconds)
    baseline, base_errors = _timings(rig, proc, seconds)
    base_ms = [d * 1000 for t, d in baseline if t >= begun_baseline + warmup]

    started = time.monotonic()
    proc = _timed_load(rig, seconds)
    windows: list[tuple[float, float]] = []
    problems: list[str] = []
    time.sleep(warmup)
    while proc.poll() is None and time.monotonic() < started + seconds - 0.5:
        for version in (big, home):
            begun = time.monotonic()
            activation = edge.activate(version)
            if not edge.wait_applied(version, 20, interval=0.01):
                problems.append(f"version {version} not applied within 20 s")
                break
            if version == big:
                windows.append((begun, time.monotonic()))
            # The next activation is refused (409) while this one is in progress.
            final = edge.wait_activation(version, int(activation["activationId"]), 20)
            if final["activationStatus"] != "COMPLETE":
                problems.append(f"activation {final['activationId']}: {final['activationStatus']}")
                break
        if problems:
            break
    during, during_errors = _timings(rig, proc, seconds)
    if edge.applied_version() != home:
        activation = edge.activate(home)
        edge.wait_applied(home, 20)
        edge.wait_activation(home, int(activation["activationId"]), 20)
    hit = [
        d * 1000 for t, d in during if any(t <= end and t + d >= begin for begin, end in windows)
    ]
    return {
        "baseline_p99_ms": _percentile(base_ms, 99) if base_ms else None,
        "baseline_p50_ms": statistics.median(base_ms) if base_ms else None,
        "baseline_handshakes": len(base_ms),
        "during_p99_ms": _percentile(hit, 99) if hit else None,
        "during_p50_ms": statistics.median(hit) if hit else None,
        "during_handshakes": len(hit),
        "activations": len(windows),
        "apply_ms": [round((end - begin) * 1000, 1) for begin, end in windows],
        "errors": base_errors + during_errors,
        "problems": problems,
    }
