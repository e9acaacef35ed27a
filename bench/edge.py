"""edgeproxy under test: an admin process and an edge node sharing one store, each with its own
config file, and the few admin-API and status calls the bench needs (stdlib HTTP only).

The admin role runs in its own process on the load CPU, so the edge node (pinned to the proxy CPU)
is measured alone, as the nginx worker is; both read and write the same store, as a fleet does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procs
from bench.pki import Pki, ServerFiles

API = "/mtls-edge-truststore/v2"
EDGE_API = "/edge/v1"
MANAGED = "bench-managed"  # the store-managed edge certificate of the binding figure
CA_SET = "bench-clients"
NETWORK = "STAGING"
EDGE_BIN = str(Path(sys.executable).parent / "edgeproxy")

_LIMITS = """
[edge.limits]
header_timeout = 120.0     # the idle-connection figures hold connections that send nothing
idle_timeout = 120.0
drain_timeout = 2.0
max_requests_per_connection = 100000000  # as nginx's keepalive_requests in bench/nginx.py
"""


def _config(
    *,
    roles: str,
    store_url: str,
    admin_port: int,
    token_hash: str,
    status_port: int,
    edge_port: int,
    chain: Path,
    key: Path,
    origin_port: int,
    snapshot: Path,
    kek: Path,
) -> str:
    return f"""
[node]
name = "bench-{roles}"
network = "{NETWORK}"
roles = ["{roles}"]
snapshot = "{snapshot}"

[store]
url = "{store_url}"
key_encryption_key_file = "{kek}"

[admin]
listen = "127.0.0.1:{admin_port}"
tokens = [{{ name = "bench", role = "admin", token_sha256 = "{token_hash}" }}]

[status]
listen = "127.0.0.1:{status_port}"

[edge]
listen = "127.0.0.1:{edge_port}"
workers = 1
{_LIMITS}
[[edge.certificates]]
name = "bench"
hostnames = ["localhost"]
certificate = "{chain}"
private_key = "{key}"
origin = "http://127.0.0.1:{origin_port}"
default = true

[edge.certificates.mutual_authentication]
ca_set = "{CA_SET}"
send_ca_list_to_client = true
mode = "require"
identity_headers = ["xfcc"]

[demo]
enabled = false
"""


@dataclass
class Ports:
    admin: int
    admin_status: int
    edge: int
    edge_status: int


class EdgeProxy:
    """The admin process (kept for the whole run) and an edge node (restarted per server key)."""

    def __init__(
        self, processes: procs.Processes, directory: Path, state: Path, store_url: str, tag: str
    ) -> None:
        """`directory` gets configs (and may be tmpfs); `state` the trust snapshots (disk)."""
        self.processes = processes
        self.dir = directory
        self.state = state
        self.store_url = store_url
        self.tag = tag
        self.token = secrets.token_urlsafe(24)
        self.ports = Ports(*(procs.free_port() for _ in range(4)))
        self.admin_proc: subprocess.Popen[bytes] | None = None
        self.edge_proc: subprocess.Popen[bytes] | None = None
        self.set_id: int | None = None
        directory.mkdir(parents=True, exist_ok=True)
        # Both processes open the store-managed private key with it (owner-only, or refused).
        self.kek = directory / "kek.b64"
        self.kek.write_text(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        self.kek.chmod(0o600)

    def _write(self, roles: str, pki: Pki, server: str, origin_port: int) -> Path:
        files = pki.servers[server]
        status = self.ports.admin_status if roles == "admin" else self.ports.edge_status
        path = self.dir / f"{roles}.toml"
        path.write_text(
            _config(
                roles=roles,
                store_url=self.store_url,
                admin_port=self.ports.admin,
                token_hash=hashlib.sha256(self.token.encode()).hexdigest(),
                status_port=status,
                edge_port=self.ports.edge,
                chain=files.chain,
                key=files.key,
                origin_port=origin_port,
                snapshot=self.state / f"{self.tag}-{roles}.snapshot.json",
                kek=self.kek,
            )
        )
        return path

    def start_admin(self, pki: Pki, origin_port: int) -> None:
        conf = self._write("admin", pki, "ecdsa-p256", origin_port)
        argv = procs.pinned(procs.LOAD_CPU, [EDGE_BIN, "serve", "-c", str(conf)])
        self.admin_proc = self.processes.start(f"edgeproxy-{self.tag}-admin", argv)
        procs.wait_port(self.ports.admin, 30, self.admin_proc)

    def start_edge(self, pki: Pki, server: str, origin_port: int) -> None:
        conf = self._write("edge", pki, server, origin_port)
        argv = procs.pinned(procs.PROXY_CPU, [EDGE_BIN, "serve", "-c", str(conf)])
        self.edge_proc = self.processes.start(f"edgeproxy-{self.tag}-edge-{server}", argv)
        procs.wait_port(self.ports.edge, 30, self.edge_proc)
        procs.wait_port(self.ports.edge_status, 10, self.edge_proc)

    def stop_edge(self) -> None:
        if self.edge_proc is not None:
            self.processes.stop(self.edge_proc)
            self.edge_proc = None

    def stop_admin(self) -> None:
        if self.admin_proc is not None:
            self.processes.stop(self.admin_proc)
            self.admin_proc = None

    def workers(self) -> list[int]:
        """The edge worker processes: the node itself (worker 0) and any worker it started."""
        assert self.edge_proc is not None
        return [self.edge_proc.pid, *procs.children(self.edge_proc.pid)]

    def edge_alive(self) -> bool:
        return self.edge_proc is not None and self.edge_proc.poll() is None

    # -- admin API -------------------------------------------------------------------------------

    def api(self, method: str, path: str, body: Any = None, *, base: str = API) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ports.admin}{base}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def create_ca_set(self, versions: list[Path]) -> None:
        """The bound CA set with one version per PEM file, version 1 active on our network."""
        created = self.api("POST", "/ca-sets", {"caSetName": CA_SET})
        self.set_id = int(created["caSetId"])
        for pem in versions:
            body = {
                "allowInsecureSha1": False,
                "certificates": [{"certificatePem": c} for c in _split_pem(pem.read_text())],
            }
            self.api("POST", f"/ca-sets/{self.set_id}/versions", body)
        self.activate(1)
        self.wait_activation(1, self._last_activation, 10)

    def activate(self, version: int) -> dict[str, Any]:
        activation = self.api(
            "POST", f"/ca-sets/{self.set_id}/versions/{version}/activate", {"network": NETWORK}
        )
        self._last_activation = int(activation["activationId"])
        return activation

    def wait_activation(self, version: int, activation_id: int, timeout: float) -> dict[str, Any]:
        path = f"/ca-sets/{self.set_id}/versions/{version}/activations/{activation_id}"
        deadline = time.monotonic() + timeout
        while True:
            activation = self.api("GET", path)
            if activation["activationStatus"] != "IN_PROGRESS" or time.monotonic() > deadline:
                return activation
            time.sleep(0.01)

    def create_managed(self, files: ServerFiles, hostname: str) -> None:
        """A store-managed edge certificate (never in a config file), bound on our network to the
        CA set, the binding change waited for: what the binding figure changes."""
        body = {
            "name": MANAGED,
            "hostnames": [hostname],
            "origin": "http://127.0.0.1:9",
            "certificateChainPem": files.chain.read_text(),
            "privateKeyPem": files.key.read_text(),
        }
        self.api("POST", "/edge-certificates", body, base=EDGE_API)
        change = self.bind(send_ca_list=False)
        final = self.wait_change(int(change["changeId"]), 10)
        if final["status"] != "COMPLETE":
            raise RuntimeError(f"binding {MANAGED}: {final['status']} {final['failureReason']}")

    def bind(self, *, send_ca_list: bool) -> dict[str, Any]:
        """PUT the managed certificate's binding on our network: a binding change (202)."""
        body = {"caSetName": CA_SET, "mode": "require", "sendCaListToClient": send_ca_list}
        path = f"/edge-certificates/{MANAGED}/mutual-authentication/{NETWORK}"
        result: dict[str, Any] = self.api("PUT", path, body, base=EDGE_API)
        return result

    def wait_change(self, change_id: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            change = self.api("GET", f"/binding-changes/{change_id}", base=EDGE_API)
            if change["status"] != "IN_PROGRESS" or time.monotonic() > deadline:
                return dict(change)
            time.sleep(0.01)

    def block(self, fingerprint: str) -> dict[str, Any]:
        body = {"fingerprintSha256": fingerprint, "reason": "bench: block -> refused"}
        result: dict[str, Any] = self.api(
            "POST", f"/ca-sets/{self.set_id}/blocked-certificates", body
        )
        return result

    def unblock(self, block_id: int) -> None:
        self.api("DELETE", f"/ca-sets/{self.set_id}/blocked-certificates/{block_id}")

    # -- the edge node's status listener ---------------------------------------------------------

    def status(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.ports.edge_status}/status"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())

    def revision(self) -> int:
        """The store revision of the trust state the node enforces."""
        return int((self.status().get("trust") or {}).get("revision", -1))

    def wait_revision_past(self, revision: int, timeout: float, interval: float = 0.002) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.revision() > revision:
                return True
            time.sleep(interval)
        return False

    def applied_version(self) -> int | None:
        trust = self.status().get("trust") or {}
        return (trust.get("versions") or {}).get(CA_SET)

    def wait_applied(self, version: int, timeout: float, interval: float = 0.005) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.applied_version() == version:
                return True
            time.sleep(interval)
        return False

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.ports.edge_status}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()


def _split_pem(text: str) -> list[str]:
    end = "-----END CERTIFICATE-----"
    return [part.strip() + "\n" + end + "\n" for part in text.split(end) if part.strip()]
