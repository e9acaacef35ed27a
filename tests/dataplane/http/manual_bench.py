"""Micro-benchmark of the HTTP layer alone (not collected by pytest): keep-alive requests/s.

    .venv/bin/python tests/dataplane/http/manual_bench.py [--connections 16] [--seconds 5]

Three processes on loopback, each on uvloop: a trivial origin (fixed 13-byte response), the proxy
(`ProxyProtocol` on plain TCP with an injected TlsSession, one worker), and a load generator with
N keep-alive connections, one request in flight on each. Prints requests/s and the proxy's CPU
use, so the figure can be read per proxy CPU-second when the load generator competes for cores.
Bounded: at most 256 connections, 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

import uvloop

sys.path.insert(0, str(Path(__file__).parents[2]))  # tests/: where the test support lives

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"
REQUEST = (
    b"GET /hello HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench\r\n"
    b"Accept: */*\r\nAccept-Encoding: gzip\r\n\r\n"
)


class OriginProtocol(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP stream (uvloop's transports do not subclass asyncio.Transport).
        self.transport = cast(asyncio.Transport, transport)
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        count = self.buf.count(b"\r\n\r\n")  # the proxy sends bodyless GETs here
        if count:
            self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(RESPONSE * count)


def run_origin(conn: Connection) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(OriginProtocol, "127.0.0.1", 0)
        conn.send(server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)

    uvloop.run(main())


def run_proxy(conn: Connection, origin_port: int) -> None:
    from dataplane.http.edgehttp_support import make_client_pki, make_session, serve_edges
    from edgeproxy.config.model import EdgeLimits
    from edgeproxy.dataplane.http import ProxyContext, ProxyProtocol

    session = make_session(f"http://127.0.0.1:{origin_port}", make_client_pki().chain_der)

    async def main() -> None:
        ctx = ProxyContext(EdgeLimits())
        edge = serve_edges(session).get(session.edge)
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: ProxyProtocol(ctx, session, edge), "127.0.0.1", 0)
        conn.send(server.sockets[0].getsockname()[1])
        await loop.run_in_executor(None, conn.recv)  # "start"
        cpu0 = time.process_time()
        await loop.run_in_executor(None, conn.recv)  # "stop"
        conn.send(time.process_time() - cpu0)

    uvloop.run(main())


class LoadProtocol(asyncio.Protocol):
    done = 0
    running = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP stream (uvloop's transports do not subclass asyncio.Transport).
        self.transport = cast(asyncio.Transport, transport)
        self.buf = b""
        self.transport.write(REQUEST)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            at = head.find(b"content-length:") + 15
            length = int(head[at : head.find(b"\r\n", at) if b"\r\n" in head[at:] else None])
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            LoadProtocol.done += 1
            if LoadProtocol.running:
                self.transport.write(REQUEST)


async def load(port: int, connections: int, seconds: float, proxy: Connection) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(connections):
        await loop.create_connection(LoadProtocol, "127.0.0.1", port)
    await asyncio.sleep(1.0)  # warm-up: pools filled, caches hot
    proxy.send("start")
    start, base = time.perf_counter(), LoadProtocol.done
    await asyncio.sleep(seconds)
    elapsed, count = time.perf_counter() - start, LoadProtocol.done - base
    proxy.send("stop")
    cpu = proxy.recv()
    LoadProtocol.running = False
    print(f"connections={connections} seconds={elapsed:.1f} requests={count}")
    print(f"requests/s={count / elapsed:,.0f}")
    print(f"proxy CPU={cpu / elapsed:.0%} of one core; per proxy CPU-second={count / cpu:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    connections = max(1, min(args.connections, 256))
    seconds = max(1.0, min(args.seconds, 60.0))
    ctx = mp.get_context("spawn")
    origin_end, origin_child = ctx.Pipe()
    proxy_end, proxy_child = ctx.Pipe()
    origin = ctx.Process(target=run_origin, args=(origin_child,), daemon=True)
    origin.start()
    origin_port = origin_end.recv()
    proxy = ctx.Process(target=run_proxy, args=(proxy_child, origin_port), daemon=True)
    proxy.start()
    proxy_port = proxy_end.recv()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        assert proxy.pid is not None  # started above
        assert origin.pid is not None
        os.sched_setaffinity(proxy.pid, {0})  # the proxy alone on core 0 (one worker)
        os.sched_setaffinity(0, {1})
        os.sched_setaffinity(origin.pid, {1})
    try:
        uvloop.run(load(proxy_port, connections, seconds, proxy_end))
    finally:
        origin_end.send("stop")
        for proc in (proxy, origin):
            proc.join(5)
            if proc.is_alive():
                proc.terminate()


if __name__ == "__main__":
    main()
