"""Keep-alive proxied requests/s through the edge listener: 20 authorization rules vs none.

    .venv/bin/python -m bench.authz [--runs 3] [--seconds 4] [--concurrency 16]

Two edge listeners run in this process (uvloop when installed), identical but for the binding's
`authorization`: none, or 20 rules whose 20th is the one every request matches (19 prefixes
scanned first, then a SPIFFE-style URI glob and a subject glob judged once per connection).
`ab -k` (keep-alive, the client certificate presented) alternates between the two; each figure
is the median of `--runs` bounded runs, with the edge process's CPU time per request beside the
rate (far less sensitive to other work on a shared machine). Each run's two halves ran back to
back, under much the same load: the ratio of each pair is printed too, with the median and the
spread of those ratios (the figure to quote when the machine is shared). The origin runs in a
child process; with affinity available the edge is pinned to CPU 1 and ab and the origin to CPU 0.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bench import ab, procs
from bench.ocsp_warm import _origin_main, _pki
from edgeproxy.authz.parse import parse_policy
from edgeproxy.authz.peer import peer_from_leaf
from edgeproxy.authz.policy import Policy
from edgeproxy.config.model import EdgeCertificateConfig, EdgeLimits, MutualAuthConfig
from edgeproxy.dataplane.http import ProxyContext, ProxyProtocol, ServedEdges
from edgeproxy.dataplane.tls_transport import TlsServerProtocol
from edgeproxy.tls.contexts import build_state
from edgeproxy.tls.trust import TrustAnchors

PATH = "/service/orders"


def twenty_rules() -> Policy:
    """19 rules for other paths, then the one the bench's requests match."""
    rules: list[dict[str, object]] = [
        {"pathPrefix": f"/area{i}/", "allow": [{"sanUri": f"spiffe://bench/ns/{i}/*"}]}
        for i in range(19)
    ]
    rules.append(
        {
            "name": "bench",
            "pathPrefix": "/service/",
            "methods": ["GET", "HEAD"],
            "deny": [{"sanDns": "*.evil.example"}],
            "allow": [{"sanUri": "spiffe://bench/ns/*/sa/*"}, {"subject": {"CN": "bench *"}}],
        }
    )
    return parse_policy({"default": "deny", "rules": rules})


def decision_cost(client_pem: Path, calls: int = 200_000) -> float:
    """µs per request the rules add on their own: `PeerPolicy.decide` for the bench's request on
    the bench's client (its verdicts judged once, as on a kept-alive connection), timed in a tight
    loop. The rate figures swing more than the whole cost between identical runs on a shared
    machine; this one does not."""
    leaf = x509.load_pem_x509_certificate(client_pem.read_bytes())
    peer_policy = twenty_rules().for_peer(
        peer_from_leaf(leaf, leaf.public_bytes(Encoding.DER)), None
    )
    target = PATH.encode()
    if not peer_policy.decide(b"GET", target).forward:
        raise RuntimeError("the bench's request is not allowed by its own rules")
    started = time.perf_counter()
    for _ in range(calls):
        peer_policy.decide(b"GET", target)
    return (time.perf_counter() - started) / calls * 1e6


async def _ab(port: int, client_pem: Path, *, seconds: int, concurrency: int) -> tuple[float, int]:
    """(requests/s, requests completed) over kept-alive connections."""
    argv = ["ab", "-q", "-k", "-r", "-s", "10", "-c", str(concurrency), "-f", "TLS1.3"]
    argv += ["-E", str(client_pem), "-t", str(seconds), "-n", "10000000"]
    argv.append(f"https://localhost:{port}{PATH}")
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


async def _listener(
    name: str, server_pem: Path, ca: x509.Certificate, origin_port: int, policy: Policy | None
) -> tuple[asyncio.Server, int]:
    edge = EdgeCertificateConfig(
        name=name,
        hostnames=("localhost",),
        certificate=server_pem,
        private_key=server_pem,
        origin=f"http://127.0.0.1:{origin_port}",
        mutual_authentication=MutualAuthConfig(ca_set="bench", authorization=policy),
    )
    state = build_state(
        [edge], {"bench": TrustAnchors("bench", 1, (ca.public_bytes(Encoding.DER),))}
    )
    limits = EdgeLimits()
    context = ProxyContext(limits)
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
    mp = multiprocessing.get_context("spawn")
    ready = mp.Event()
    with tempfile.TemporaryDirectory(prefix="authz-bench-") as tmp:
        # The leaf has no SAN URI; its CN "bench client" matches the subject glob.
        server_pem, client_pem, ca, _ = _pki(Path(tmp), "http://127.0.0.1:9/")
        origin_port = procs.free_port()
        origin = mp.Process(target=_origin_main, args=(origin_port, ready), daemon=True)
        origin.start()
        servers: list[asyncio.Server] = []
        try:
            if not await asyncio.to_thread(ready.wait, 10):
                raise RuntimeError("the origin did not start")
            none, none_port = await _listener("none", server_pem, ca, origin_port, None)
            ruled, ruled_port = await _listener(
                "rules", server_pem, ca, origin_port, twenty_rules()
            )
            servers += [none, ruled]
            for port in (none_port, ruled_port):  # warm-up (and a check that both answer 200)
                await _ab(port, client_pem, seconds=1, concurrency=concurrency)
            rates: dict[str, list[float]] = {"none": [], "20 rules": []}
            cpu: dict[str, list[float]] = {"none": [], "20 rules": []}
            for i in range(runs):
                order = (("none", none_port), ("20 rules", ruled_port))[:: 1 - 2 * (i % 2)]
                for label, port in order:
                    started = time.process_time()
                    rps, done = await _ab(
                        port, client_pem, seconds=seconds, concurrency=concurrency
                    )
                    per = (time.process_time() - started) / max(done, 1) * 1e6
                    rates[label].append(rps)
                    cpu[label].append(per)
                    print(f"run {i + 1} {label:9} {rps:9.1f} requests/s  {per:6.1f} µs CPU each")
            base, ruled_rate = (
                statistics.median(rates["none"]),
                statistics.median(rates["20 rules"]),
            )
            base_cpu, ruled_cpu = statistics.median(cpu["none"]), statistics.median(cpu["20 rules"])
            print(f"no rules        median {base:9.1f} requests/s  {base_cpu:6.1f} µs CPU each")
            print(
                f"20 rules        median {ruled_rate:9.1f} requests/s  {ruled_cpu:6.1f} µs CPU each"
            )
            print(
                f"ratio 20 rules / none: requests/s {ruled_rate / base:.3f}, "
                f"CPU per request {ruled_cpu / base_cpu:.3f}"
            )
            paired = [r / n for r, n in zip(cpu["20 rules"], cpu["none"], strict=True)]
            print(
                "CPU per request, 20 rules / none of each run: "
                + " ".join(f"{p:.3f}" for p in paired)
                + f"; median {statistics.median(paired):.3f}, "
                f"spread {min(paired):.3f} to {max(paired):.3f}"
            )
            alone = decision_cost(client_pem)
            print(
                f"decision alone: {alone:.2f} µs per request "
                f"({alone / base_cpu:.1%} of the edge CPU per request without rules)"
            )
        finally:
            for server in servers:
                server.close()
            origin.terminate()
            origin.join(5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    runner_fn: Callable[[Coroutine[Any, Any, None]], None]
    try:
        import uvloop

        runner_fn = uvloop.run
    except ImportError:
        runner_fn = asyncio.run
    runner_fn(main(args.runs, args.seconds, args.concurrency))
