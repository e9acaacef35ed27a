"""New mTLS handshakes/s through the edge listener with client records on vs off, in one run.

    .venv/bin/python -m bench.client_records [--runs 3] [--seconds 3] [--concurrency 32]

Two edge listeners run in this process (uvloop when installed), identical but for the client
recorder (dataplane/clients.py) in their handshake and request observers; the "on" listener's
records are drained and described once a second, as the flush task does before it writes to the
store (no store here: what is measured is the hot path). `ab` (a new TCP + TLS connection per
request, no resumption, one proxied request each) alternates between the two; each figure is the
median of `--runs` bounded runs. The PKI, origin and ab driver are bench/ocsp_warm.py's (OCSP off
on both listeners). Loopback only; everything is stopped on the way out.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bench import procs
from bench.ocsp_warm import _origin_main, _pki, alternate, bench_edge, run_main
from edgeproxy.config.model import EdgeCertificateConfig, EdgeLimits, MutualAuthConfig
from edgeproxy.dataplane.client_flush import observations
from edgeproxy.dataplane.clients import ClientRecorder
from edgeproxy.dataplane.http import ProxyContext, ProxyProtocol, ServedEdges
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.observe import AccessLine, HandshakeLog, RequestLog
from edgeproxy.dataplane.tls_transport import TlsServerProtocol
from edgeproxy.domain.model import Network
from edgeproxy.tls.contexts import build_state
from edgeproxy.tls.session import TlsSession, VerifyResult
from edgeproxy.tls.trust import TrustAnchors


async def _listener(
    name: str,
    server_pem: Path,
    ca: x509.Certificate,
    origin_port: int,
    metrics: Metrics,
    clients: ClientRecorder | None,
) -> tuple[asyncio.Server, int]:
    edge = bench_edge(name, server_pem, origin_port)
    state = build_state(
        [edge], {"bench": TrustAnchors("bench", 1, (ca.public_bytes(Encoding.DER),))}
    )
    limits = EdgeLimits()
    access = AccessLine(None)  # the edgeproxy.access logger, not enabled here: no line written
    context = ProxyContext(limits, observer=RequestLog(metrics, access, clients))
    observer = HandshakeLog(metrics, Network.STAGING, access, clients=clients)
    served = ServedEdges(limits)
    served.update([edge])
    server = await asyncio.get_running_loop().create_server(
        lambda: TlsServerProtocol(
            lambda: state,
            lambda session: ProxyProtocol(context, session, served.get(session.edge)),
            limits,
            observer,
        ),
        "127.0.0.1",
        0,
        backlog=2048,
    )
    return server, server.sockets[0].getsockname()[1]


async def _drain(recorder: ClientRecorder) -> None:
    """What the flush task does before its store write, once a second."""
    while True:
        await asyncio.sleep(1.0)
        batch = recorder.drain()
        if batch:
            await asyncio.to_thread(observations, batch, Network.STAGING, "bench")


def recorder_cost(client_pem: Path, calls: int = 200_000) -> float:
    """µs per handshake the recorder adds on its own: one `handshake` and one `request` call on
    the same client (the steady state: a client seen before), timed in a tight loop. Far less
    noisy than a rate on a shared machine."""
    leaf = x509.load_pem_x509_certificate(client_pem.read_bytes()).public_bytes(Encoding.DER)
    edge = EdgeCertificateConfig(
        name="bench",
        hostnames=("localhost",),
        certificate=client_pem,
        private_key=client_pem,
        origin="http://127.0.0.1:9",
        mutual_authentication=MutualAuthConfig(ca_set="bench"),
    )
    session = TlsSession(
        edge, "localhost", "TLSv1.3", "TLS_AES_128_GCM_SHA256", (leaf,), VerifyResult.SUCCESS,
        None, "bench", 1,
    )  # fmt: skip
    recorder = ClientRecorder(10_000)
    fingerprint = hashlib.sha256(leaf).hexdigest()
    started = time.perf_counter()
    for _ in range(calls):
        recorder.handshake(session)
        recorder.request("bench", fingerprint)
    return (time.perf_counter() - started) / calls * 1e6


async def main(runs: int, seconds: int, concurrency: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {procs.PROXY_CPU})
    mp = multiprocessing.get_context("spawn")
    ready = mp.Event()
    with tempfile.TemporaryDirectory(prefix="client-records-") as tmp:
        server_pem, client_pem, ca, _ = _pki(Path(tmp), "http://127.0.0.1:9/")
        origin_port = procs.free_port()
        origin = mp.Process(target=_origin_main, args=(origin_port, ready), daemon=True)
        origin.start()
        metrics = Metrics()
        recorder = ClientRecorder(10_000)
        servers: list[asyncio.Server] = []
        drainer = asyncio.get_running_loop().create_task(_drain(recorder))
        try:
            if not await asyncio.to_thread(ready.wait, 10):
                raise RuntimeError("the origin did not start")
            off, off_port = await _listener("off", server_pem, ca, origin_port, metrics, None)
            on, on_port = await _listener("on", server_pem, ca, origin_port, metrics, recorder)
            servers += [off, on]
            load = (runs, seconds, concurrency)
            figures, cpu = await alternate({"off": off_port, "on": on_port}, client_pem, load)
            off_med, on_med = statistics.median(figures["off"]), statistics.median(figures["on"])
            off_cpu, on_cpu = statistics.median(cpu["off"]), statistics.median(cpu["on"])
            print(f"client records off  median {off_med:8.1f} handshakes/s")
            print(f"client records on   median {on_med:8.1f} handshakes/s")
            print(f"ratio on/off {on_med / off_med:.3f}")
            print(
                f"edge CPU per handshake: off {off_cpu:.1f} µs, on {on_cpu:.1f} µs "
                f"(ratio {on_cpu / off_cpu:.3f})"
            )
            print(f"clients recorded: {len(recorder)}")
            alone = recorder_cost(client_pem)
            print(
                f"recorder alone: {alone:.2f} µs per handshake and request "
                f"({alone / off_cpu * 100:.2f}% of the edge CPU per handshake with records off)"
            )
        finally:
            drainer.cancel()
            for server in servers:
                server.close()
            origin.terminate()
            origin.join(5)


if __name__ == "__main__":
    run_main(main, __doc__ or "")
