"""The bench rig: one PKI, one origin, nginx and edgeproxy in front of it, and their teardown.

Placement (two CPUs): each proxy under test on CPU 1; load generators, the origin and edgeproxy's
admin process on CPU 0. The origin runs SCHED_FIFO (when root) so that sharing CPU 0 with a busy
load generator does not add scheduler time slices to its answers.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from bench.edge import EdgeProxy
from bench.nginx import Nginx
from bench.pki import Pki, make_pki

PROXIES = ("nginx", "edgeproxy")


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    workers: Callable[[], list[int]]


class Rig:
    def __init__(self, workdir: Path, state: Path) -> None:
        """`workdir`: configs, PKI and every log (tmpfs when we have one, so a disk stall never
        shows up as proxy latency); `state`: the SQLite store and trust snapshots, on disk."""
        self.dir = workdir
        self.state = state
        self.processes = procs.Processes(workdir)
        self.pki: Pki = make_pki(workdir / "pki")
        self.origin_port = procs.free_port()
        self.origin = Nginx(self.processes, workdir / "origin", "origin")
        self.nginx = Nginx(self.processes, workdir / "nginx", "nginx-proxy")
        self.nginx_port = procs.free_port()
        # nginx reads its client CAs from this file; the activation figure swaps its content.
        self.nginx_ca = workdir / "nginx-client-ca.pem"
        self.edge = EdgeProxy(
            self.processes,
            workdir / "edgeproxy",
            state,
            f"sqlite:///{state}/store.db",
            "sqlite",
        )
        self.server: str | None = None

    def start(self) -> None:
        self.origin.write_origin(self.origin_port)
        self.origin.start(procs.LOAD_CPU, self.origin_port, realtime=True)
        self.edge.start_admin(self.pki, self.origin_port)
        pki = self.pki
        self.edge.create_ca_set([pki.client_ca, pki.client_ca_v2, pki.client_ca_300])

    def use_server(self, server: str) -> None:
        """(Re)start both proxies presenting the `server` key type (a pki.SERVER_KEYS name)."""
        self.nginx.stop()
        self.edge.stop_edge()
        shutil.copyfile(self.pki.client_ca, self.nginx_ca)
        self.nginx.write_proxy(self.nginx_port, self.origin_port, self.pki, server, self.nginx_ca)
        self.nginx.start(procs.PROXY_CPU, self.nginx_port)
        self.edge.start_edge(self.pki, server, self.origin_port)
        if self.edge.applied_version() is None:
            raise RuntimeError("edgeproxy serves without an applied CA-set version")
        self.server = server

    def target(self, name: str) -> Target:
        if name == "nginx":
            return Target(name, self.nginx_port, self.nginx.workers)
        return Target(name, self.edge.ports.edge, self.edge.workers)

    def alive(self, name: str) -> bool:
        if name == "nginx":
            proc = self.nginx.proc
            return proc is not None and proc.poll() is None and bool(self.nginx.workers())
        return self.edge.edge_alive()

    def nginx_settle(self, timeout: float = 10.0) -> None:
        """After a reload: wait until the old worker has finished and only one is left."""
        deadline = time.monotonic() + timeout
        while len(self.nginx.workers()) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.processes.stop_all()
