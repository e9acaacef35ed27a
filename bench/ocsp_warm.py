"""New mTLS handshakes/s through the edge listener: OCSP enabled with a warm cache vs disabled.

    .venv/bin/python -m bench.ocsp_warm [--runs 3] [--seconds 3] [--concurrency 32]

Two edge listeners run in this process (uvloop when installed), identical but for the binding's
`ocsp.enabled`; the OCSP one has a working responder (aiohttp, in this process) whose one answer is
fetched during a warm-up, so every measured handshake takes the warm path: the verify callback's
cache lookup plus the connection's settled check (no wait). `ab` (a new TCP + TLS connection per
request, no resumption, one proxied request each) alternates between the two listeners; each
figure is the median of `--runs` bounded runs (`-t` seconds, killed after a timeout). A tiny
origin runs in a child process. With taskset-style affinity available the edge process is pinned
to CPU 1 and ab and the origin to CPU 0. Loopback only; everything is stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, cast

import aiohttp
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from bench import ab, procs
from edgeproxy.config.model import EdgeCertificateConfig, EdgeLimits, MutualAuthConfig, OcspConfig
from edgeproxy.dataplane.http import ProxyContext, ProxyProtocol, ServedEdges
from edgeproxy.dataplane.metrics import Metrics
from edgeproxy.dataplane.revocation.check import Revocation
from edgeproxy.dataplane.revocation.client import OcspClient
from edgeproxy.dataplane.tls_transport import TlsServerProtocol
from edgeproxy.tls.contexts import build_state
from edgeproxy.tls.trust import TrustAnchors

HOUR = dt.timedelta(hours=1)
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"


class _Origin(asyncio.Protocol):
    """Answers every request head with a fixed 200 (the bench's GETs have no body)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP stream (uvloop's transports do not subclass asyncio.Transport).
        self.transport = cast(asyncio.Transport, transport)
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            _, self.buf = self.buf.split(b"\r\n\r\n", 1)
            self.transport.write(OK)


def _origin_main(port: int, ready: multiprocessing.synchronize.Event) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {procs.LOAD_CPU})

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(_Origin, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def _pki(
    tmp: Path, ocsp_url: str
) -> tuple[Path, Path, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """(server PEM, client PEM, client CA, its key); the client leaf's AIA names `ocsp_url`."""
    server_ca = trustme.CA()
    server_pem = tmp / "server.pem"
    server_ca.issue_cert("localhost").private_key_and_cert_chain_pem.write_to_path(str(server_pem))
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench client CA")])
    ca = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - HOUR).not_valid_after(now + 24 * HOUR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    aia = x509.AccessDescription(
        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench client")]))
        .issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - HOUR).not_valid_after(now + 24 * HOUR)
        .add_extension(x509.AuthorityInformationAccess([aia]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    client_pem = tmp / "client.pem"
    client_pem.write_bytes(
        key.private_bytes(
            Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        + leaf.public_bytes(Encoding.PEM)
    )
    return server_pem, client_pem, ca, ca_key


class _Responder:
    """Answers "good", signed by the CA, valid for an hour; counts requests."""

    def __init__(self) -> None:
        self.hits = 0
        self.ca: x509.Certificate | None = None
        self.key: ec.EllipticCurvePrivateKey | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        assert self.ca is not None
        assert self.key is not None
        req = ocsp.load_der_ocsp_request(await request.read())
        now = dt.datetime.now(dt.UTC)
        resp = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                req.issuer_name_hash, req.issuer_key_hash, req.serial_number,
                req.hash_algorithm, ocsp.OCSPCertStatus.GOOD, now - HOUR, now + HOUR, None, None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.ca)
            .sign(self.key, hashes.SHA256())
        )  # fmt: skip
        return web.Response(
            body=resp.public_bytes(Encoding.DER), content_type="application/ocsp-response"
        )


async def _ab(port: int, client_pem: Path, *, seconds: int, concurrency: int) -> tuple[float, int]:
    """(handshakes/s, handshakes completed): ab's argv and report parsing are bench.ab's."""
    argv = ["ab", "-q", "-r", "-s", "10", "-c", str(concurrency), "-f", "TLS1.3"]
    argv += ["-E", str(client_pem), "-t", str(seconds), "-n", "1000000"]
    argv.append(f"https://localhost:{port}/")
    proc = await asyncio.create_subprocess_exec(
        *procs.pinned(procs.LOAD_CPU, argv),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(seconds + 30):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    result = ab.parse(out, err)
    if not result.complete or result.non_2xx:
        raise RuntimeError(f"ab failed or got non-2xx answers:\n{out.decode(errors='replace')}")
    return result.rps, result.complete


async def alternate(
    ports: dict[str, int], client_pem: Path, load: tuple[int, int, int]
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(handshakes/s, edge CPU µs per handshake) per label: a warm-up run per listener (on an
    OCSP one it fills the cache), then `runs` rounds of one ab run per listener, the order
    reversed every other round. `load`: (runs, seconds, concurrency)."""
    runs, seconds, concurrency = load
    for port in ports.values():
        await _ab(port, client_pem, seconds=1, concurrency=4)
    figures: dict[str, list[float]] = {label: [] for label in ports}
    cpu: dict[str, list[float]] = {label: [] for label in ports}
    for i in range(runs):
        for label, port in list(ports.items())[:: 1 - 2 * (i % 2)]:
            # CPU time of this (the edge's) process per handshake: far less sensitive than the
            # rate to other work on a shared machine.
            started = time.process_time()
            rps, done = await _ab(port, client_pem, seconds=seconds, concurrency=concurrency)
            per = (time.process_time() - started) / max(done, 1) * 1e6
            figures[label].append(rps)
            cpu[label].append(per)
            print(f"run {i + 1} {label:8} {rps:8.1f} handshakes/s  {per:7.1f} µs CPU each")
    return figures, cpu


def run_main(main: Callable[[int, int, int], Coroutine[Any, Any, None]], doc: str) -> None:
    """The command line of these benchmarks: --runs, --seconds, --concurrency; uvloop if any."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    runner_fn: Callable[[Coroutine[Any, Any, None]], None]
    try:
        import uvloop

        runner_fn = uvloop.run
    except ImportError:
        runner_fn = asyncio.run
    runner_fn(main(args.runs, args.seconds, args.concurrency))


def bench_edge(
    name: str, server_pem: Path, origin_port: int, ocsp_cfg: OcspConfig | None = None
) -> EdgeCertificateConfig:
    """The benchmarks' edge certificate: `localhost`, CA set "bench", the origin on loopback."""
    return EdgeCertificateConfig(
        name=name,
        hostnames=("localhost",),
        certificate=server_pem,
        private_key=server_pem,
        origin=f"http://127.0.0.1:{origin_port}",
        mutual_authentication=MutualAuthConfig(ca_set="bench", ocsp=ocsp_cfg or OcspConfig()),
    )


async def _listener(
    name: str, server_pem: Path, ca: x509.Certificate, origin_port: int, ocsp_cfg: OcspConfig,
    revocation: Revocation,
) -> tuple[asyncio.Server, int]:  # fmt: skip
    edge = bench_edge(name, server_pem, origin_port, ocsp_cfg)
    anchors = TrustAnchors("bench", 1, (ca.public_bytes(Encoding.DER),))
    state = build_state(
        [edge],
        {"bench": anchors},
        ocsp={name: revocation.ocsp_lookup(edge)},
        stale_accepted=revocation.crl_stale_accepted,
    )
    revocation.retain(state, None)
    limits = EdgeLimits()
    context = ProxyContext(limits, revocation=revocation)
    served = ServedEdges(limits)
    served.update([edge])
    server = await asyncio.get_running_loop().create_server(
        lambda: TlsServerProtocol(
            lambda: state,
            lambda session: ProxyProtocol(context, session, served.get(session.edge)),
            limits,
        ),
        "127.0.0.1",
        0,
        backlog=2048,
    )
    return server, server.sockets[0].getsockname()[1]


async def main(runs: int, seconds: int, concurrency: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {procs.PROXY_CPU})
    responder = _Responder()
    app = web.Application()
    app.router.add_post("/", responder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    ocsp_url = f"http://127.0.0.1:{runner.addresses[0][1]}/"

    # spawn, not fork: this process already runs an event loop (and maybe uvloop's threads).
    mp = multiprocessing.get_context("spawn")
    ready = mp.Event()
    with tempfile.TemporaryDirectory(prefix="ocsp-warm-") as tmp:
        server_pem, client_pem, ca, ca_key = _pki(Path(tmp), ocsp_url)
        responder.ca, responder.key = ca, ca_key
        origin_port = procs.free_port()
        origin = mp.Process(target=_origin_main, args=(origin_port, ready), daemon=True)
        origin.start()
        session = aiohttp.ClientSession(auto_decompress=False)
        metrics = Metrics()
        revocation = Revocation(metrics, client=OcspClient(session))
        servers: list[asyncio.Server] = []
        try:
            if not await asyncio.to_thread(ready.wait, 10):
                raise RuntimeError("the origin did not start")
            off, off_port = await _listener(
                "off", server_pem, ca, origin_port, OcspConfig(enabled=False), revocation
            )
            on, on_port = await _listener(
                "on", server_pem, ca, origin_port, OcspConfig(enabled=True), revocation
            )
            servers += [off, on]
            load = (runs, seconds, concurrency)
            figures, cpu = await alternate(
                {"disabled": off_port, "warm": on_port}, client_pem, load
            )
            hits = metrics.registry.get_sample_value("edgeproxy_ocsp_cache_hits_total") or 0
            off_med = statistics.median(figures["disabled"])
            warm_med = statistics.median(figures["warm"])
            print(f"OCSP disabled       median {off_med:8.1f} handshakes/s")
            print(f"OCSP warm cache     median {warm_med:8.1f} handshakes/s")
            print(f"ratio warm/disabled {warm_med / off_med:.3f}")
            off_cpu, warm_cpu = statistics.median(cpu["disabled"]), statistics.median(cpu["warm"])
            print(
                f"edge CPU per handshake: disabled {off_cpu:.1f} µs, warm {warm_cpu:.1f} µs "
                f"(ratio {warm_cpu / off_cpu:.3f})"
            )
            print(f"responder requests {responder.hits}, cache hits {int(hits)}")
        finally:
            for server in servers:
                server.close()
            await revocation.close()
            await session.close()
            await runner.cleanup()
            origin.terminate()
            origin.join(5)


if __name__ == "__main__":
    run_main(main, __doc__ or "")
