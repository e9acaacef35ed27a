"""The bench's h2load client certificate (bench/client_cert_shim.c loaded by bench/h2load.py): a
real TLS server that requires a client certificate sees the bench's client certificate from h2load,
and none when the bench asks for none; and h2load's report is read as h2load prints it."""

from __future__ import annotations

import shutil
import socket
import ssl
import threading
from pathlib import Path

import pytest
from bench import h2load, procs
from bench.pki import Pki, make_pki

pytestmark = pytest.mark.skipif(
    shutil.which("h2load") is None or shutil.which("gcc") is None,
    reason="needs h2load (make system-deps) and gcc",
)


def _server(pki: Pki) -> tuple[socket.socket, ssl.SSLContext]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.servers["ecdsa-p256"].chain, pki.servers["ecdsa-p256"].key)
    context.load_verify_locations(pki.client_ca)
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)
    return listener, context


def _one_handshake(listener: socket.socket, context: ssl.SSLContext, seen: list) -> None:
    conn, _ = listener.accept()
    try:
        with context.wrap_socket(conn, server_side=True) as tls:
            seen.append(tls.getpeercert())
    except (ssl.SSLError, OSError) as error:
        seen.append(error)


@pytest.mark.parametrize("certificate", [True, False])
def test_h2load_presents_the_bench_client_certificate(tmp_path: Path, certificate: bool) -> None:
    pki = make_pki(tmp_path / "pki")
    listener, context = _server(pki)
    seen: list = []
    server = threading.Thread(target=_one_handshake, args=(listener, context, seen))
    server.start()
    processes = procs.Processes(tmp_path)
    try:
        shim = h2load.build_shim(tmp_path)
        h2load.run(
            processes,
            shim,
            listener.getsockname()[1],
            pki,
            clients=1,
            streams=1,
            requests=1,
            certificate=certificate,
            timeout=20,
        )
    finally:
        server.join(30)
        listener.close()
        processes.stop_all()
    assert len(seen) == 1
    if certificate:
        assert isinstance(seen[0], dict), seen
        subject = dict(item[0] for item in seen[0]["subject"])
        assert subject["commonName"] == "bench client"
    else:
        assert isinstance(seen[0], ssl.SSLError), seen  # the server required one: none came


H2LOAD_REPORT = """\
starting benchmark...
spawning thread #0: 16 total client(s). 1000000 total requests
TLS Protocol: TLSv1.3
Cipher: TLS_AES_128_GCM_SHA256
Server Temp Key: X25519 253 bits
Application protocol: h2
Warm-up started for thread #0.
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 2.51s, 2730.00 req/s, 103.45KB/s
requests: 5460 total, 5476 started, 5458 done, 5457 succeeded, 1 failed, 1 errored, 0 timeout
status codes: 5457 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 206.89KB (211857) total, 43.07KB (44103) headers (space savings 91.97%)
"""


def test_parse_reads_the_rate_counts_and_protocol() -> None:
    result = h2load.parse(H2LOAD_REPORT)
    assert (result.seconds, result.rps) == (2.51, 2730.0)
    assert (result.total, result.succeeded, result.failed, result.errored) == (5460, 5457, 1, 1)
    assert (result.status_2xx, result.protocol, result.tls) == (5457, "h2", "TLSv1.3")
    assert h2load.parse("").rps == 0.0  # h2load that printed nothing counts as nothing done
