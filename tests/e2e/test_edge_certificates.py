"""Store-managed edge certificates end to end: made and bound through the admin API only (no
TOML edit, no signal), enforced by every edge node of the network, rotated under load without a
failed handshake, and the private key nowhere but sealed in the store.

Two edge nodes share one PostgreSQL database (one also runs the admin role), a third runs alone on
SQLite. None declares an `[[edge.certificates]]`: they serve what the store holds."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import socket
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import trustme

from support.admin import Api, Reply
from support.nodes import WAIT, poll
from support.origin import RecordingOrigin

from .clients import (
    REFUSALS,
    TIMEOUT,
    connection,
    curl,
    curl_keepalive,
    exchange,
    in_thread,
    refused,
)
from .conftest import MakeFiles, Running, StartNode
from .pki import Client, E2ePki

pytestmark = pytest.mark.slow

ADMIN_DSN = os.environ.get("EDGEPROXY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
EDGE = "/edge/v1/edge-certificates"
HOST = "shop.test"
# The load during rotation: LOAD_CLIENTS at once, each making full handshakes and one request in
# turn, alternating nodes; all stop at LOAD_MAX_HANDSHAKES in total or LOAD_MAX_SECONDS.
LOAD_CLIENTS = 4
LOAD_MAX_HANDSHAKES = 400
LOAD_MAX_SECONDS = 60.0
# Handshakes wanted before the rotation, and after every node showed it applied.
LOAD_EACH_SIDE = 20


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh database of this test, dropped afterwards."""
    try:
        admin = await asyncpg.connect(ADMIN_DSN, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL unreachable: {type(error).__name__}")
    name = f"edgecerts_e2e_{secrets.token_hex(6)}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urlsplit(ADMIN_DSN)._replace(path=f"/{name}").geturl()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _issue(pki: E2ePki) -> trustme.LeafCert:
    return pki.server_ca.ca.issue_cert(HOST)


def _key_forms(leaf: trustme.LeafCert) -> list[str]:
    """The private key as one PEM body line and as a slice of its base64 DER."""
    pem = leaf.private_key_pem.bytes().decode()
    body = [line for line in pem.splitlines() if "-----" not in line]
    der = base64.b64decode("".join(body))
    return [body[1], base64.b64encode(der).decode()[24:88]]


def _served(pki: E2ePki, port: int, client: Client | None) -> tuple[int, bytes]:
    """One handshake and GET to `HOST`: (HTTP status, the server's leaf DER)."""
    context = pki.client_context(client)
    with (
        socket.create_connection(("127.0.0.1", port), TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        head = tls.recv(64)
        leaf = tls.getpeercert(binary_form=True) or b""
    return int(head.split(b" ", 2)[1]), leaf


served = in_thread(_served)


@dataclass(frozen=True)
class Handshake:
    """One handshake of the load: on which node, when (monotonic, taken outside the worker thread:
    `start` before it began, `end` after it ended), and the leaf served or the error."""

    port: int
    start: float
    end: float
    leaf: bytes = b""
    error: str = ""


class Load:
    """LOAD_CLIENTS concurrent clients making full handshakes (one request each) to `ports` in
    turn, until told to stop or out of their bounds."""

    def __init__(self, pki: E2ePki, ports: Sequence[int]) -> None:
        self.pki, self.ports = pki, ports
        self.done: list[Handshake] = []
        self._stop = asyncio.Event()
        self._deadline = time.monotonic() + LOAD_MAX_SECONDS
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(LOAD_CLIENTS)]

    async def _client(self, index: int) -> None:
        for turn in range(LOAD_MAX_HANDSHAKES):
            if self._stop.is_set() or len(self.done) >= LOAD_MAX_HANDSHAKES:
                return
            if time.monotonic() > self._deadline:
                return
            port = self.ports[(index + turn) % len(self.ports)]
            start = time.monotonic()
            try:
                status, leaf = await served(self.pki, port, self.pki.alice)
            except (ssl.SSLError, OSError) as failure:
                self.done.append(Handshake(port, start, time.monotonic(), error=repr(failure)))
                continue
            error = "" if status == 200 else f"HTTP {status}"
            self.done.append(Handshake(port, start, time.monotonic(), leaf, error))

    def count(self, *, since: float = 0.0) -> int:
        return sum(1 for h in self.done if h.start > since)

    async def stop(self) -> list[Handshake]:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        return self.done


async def _revision(node: Running) -> int:
    _, status = await node.status.json("/status")
    return int(status["trust"]["revision"])


async def _rotate_under_load(
    pki: E2ePki, api: Api, nodes: Sequence[Running], new: trustme.LeafCert
) -> Reply:
    """Rotate `shop` to `new` while LOAD_CLIENTS clients hammer `nodes`, with one keep-alive
    connection opened before. Asserts no handshake failed, each saw the old leaf before the
    rotation and the new one once its node had applied it, and the kept connection still serves."""
    kept = connection(pki, nodes[0].port, HOST, pki.alice)
    assert (await asyncio.to_thread(exchange, kept)).status == 200
    old_der = kept.sock.getpeercert(binary_form=True)
    load = Load(pki, [n.port for n in nodes])
    try:
        await poll(lambda: load.count() >= LOAD_EACH_SIDE, "handshakes before the rotation")
        before = [await _revision(n) for n in nodes]
        body = {
            "certificateChainPem": "".join(b.bytes().decode() for b in new.cert_chain_pems),
            "privateKeyPem": new.private_key_pem.bytes().decode(),
        }
        rotate_sent = time.monotonic()
        reply = await _call(api, "PUT", f"{EDGE}/shop/certificate", body)
        assert reply.status == 200, reply.body
        applied: dict[int, float] = {}  # port -> when its /status showed the new revision
        for node, revision in zip(nodes, before, strict=True):

            async def moved(node: Running = node, revision: int = revision) -> bool:
                return await _revision(node) > revision

            await poll(moved, f"{node.node.files.name} to apply the rotation")
            applied[node.port] = time.monotonic()
        after = max(applied.values())
        await poll(lambda: load.count(since=after) >= LOAD_EACH_SIDE, "handshakes after it")
    finally:
        done = await load.stop()
    assert [h.error for h in done if h.error] == []
    early = [h for h in done if h.end < rotate_sent]
    late = [h for h in done if h.start > applied[h.port]]
    assert len(early) >= LOAD_EACH_SIDE
    assert len(late) >= LOAD_EACH_SIDE
    assert all(h.leaf == old_der for h in early)
    assert all(h.leaf == _der(new) for h in late)
    assert {h.port for h in late} == set(applied)
    # The keep-alive connection opened before the rotation: still served, on its old context.
    try:
        assert (await asyncio.to_thread(exchange, kept)).status == 200
        assert kept.sock.getpeercert(binary_form=True) == old_der
    finally:
        kept.close()
    return reply


def _der(leaf: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


async def _call(api: Api, method: str, path: str, body: Any = None) -> Reply:
    if body is None:
        return await api.call(method, path, base=False)
    return await api.call(method, path, body, base=False)


async def _create(running: Running, leaf: trustme.LeafCert) -> None:
    body = {
        "name": "shop",
        "hostnames": [HOST],
        "origin": running.node.files.origin_url,
        "certificateChainPem": "".join(b.bytes().decode() for b in leaf.cert_chain_pems),
        "privateKeyPem": leaf.private_key_pem.bytes().decode(),
    }
    created = await _call(running.admin.api, "POST", EDGE, body)
    assert created.status == 201, created.body


async def _bind(running: Running) -> dict[str, Any]:
    api = running.admin.api
    change = await _call(
        api, "PUT", f"{EDGE}/shop/mutual-authentication/STAGING", {"caSetName": "partners"}
    )
    assert change.status == 202, change.body

    async def settled() -> dict[str, Any] | None:
        got = await _call(api, "GET", change.body["changeLink"])
        return got.body if got.body["status"] != "IN_PROGRESS" else None

    return await poll(settled, "the binding change to settle", timeout=WAIT)


async def _create_and_bind(running: Running, leaf: trustme.LeafCert) -> dict[str, Any]:
    await _create(running, leaf)
    return await _bind(running)


async def test_store_managed_edge_certificates_on_postgresql_and_sqlite(
    pki: E2ePki,
    node_files: MakeFiles,
    spawn_node: StartNode,
    postgres_url: str,
    kek: Path,
    tmp_path: Path,
) -> None:
    common = {"edges": [], "kek_file": kek, "store_url": postgres_url}
    first = await spawn_node(node_files(name="pg-admin", **common))
    second = await spawn_node(node_files(name="pg-edge", roles=("edge",), **common))
    set_id, _ = await first.admin.publish([pki.ca_a.pem])
    leaf = _issue(pki)

    api = first.admin.api
    replies: list[Reply] = []

    # Created but not bound on STAGING: served, and failing closed with its own reason.
    await _create(first, leaf)
    for node in (first, second):

        async def closed(running: Running = node) -> bool:
            _, ready = await running.status.json("/readyz")
            return "shop" in ready["failClosed"]

        await poll(closed, "the unbound edge certificate to fail closed")
        await refused(pki, node.port, HOST, pki.alice)

    change = await _bind(first)
    assert change["status"] == "COMPLETE", change
    assert sorted(change["appliedNodes"]) == ["pg-admin", "pg-edge"]
    assert change["pendingNodes"] == []

    for node in (first, second):

        async def enforced(port: int = node.port) -> bool:
            try:
                return (await served(pki, port, pki.alice))[0] == 200
            except (ssl.SSLError, ConnectionError):
                return False

        await poll(enforced, "the binding to be enforced")
        await refused(pki, node.port, HOST, pki.bob)
        await refused(pki, node.port, HOST, None)

    # A set with no version active on that network: refused, naming it.
    wrong = await _call(
        api, "PUT", f"{EDGE}/shop/mutual-authentication/PRODUCTION", {"caSetName": "partners"}
    )
    assert (wrong.status, wrong.type) == (409, "ca-set-not-active")
    assert "'partners'" in wrong.body["detail"]
    replies.append(wrong)

    # Rotation under concurrent load: no handshake fails; old leaf before, new leaf after.
    new = _issue(pki)
    replies.append(await _rotate_under_load(pki, api, (first, second), new))

    # The SQLite node: the same, through its own API.
    alone = await spawn_node(node_files(name="sqlite-node", edges=[], kek_file=kek))
    await alone.admin.publish([pki.ca_a.pem])
    assert (await _create_and_bind(alone, leaf))["status"] == "COMPLETE"
    await poll(lambda: served(pki, alone.port, pki.alice), "the SQLite node to serve", timeout=WAIT)
    assert (await served(pki, alone.port, pki.alice))[0] == 200
    await refused(pki, alone.port, HOST, pki.bob)

    # The private keys: in no API response, activity, log line or file under the nodes' dirs.
    replies.append(await _call(api, "GET", EDGE))
    replies.append(await _call(api, "GET", f"{EDGE}/shop"))
    replies.append(await api.get(f"/ca-sets/{set_id}/activities"))
    activities = replies[-1].body["activities"]
    assert [a["type"] for a in activities if a["edgeCertificate"] == "shop"] == [
        "BIND_EDGE_CERTIFICATE"
    ]
    texts = [r.text for r in replies]
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file() and path.suffix != ".pem" and path.name != "kek.b64":
            texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    snapshots = [p for p in tmp_path.rglob("*.snapshot.json")]
    assert len(snapshots) == 3
    assert all('"sealedKey"' in p.read_text() for p in snapshots)
    for form in _key_forms(leaf) + _key_forms(new):
        assert not any(form in text for text in texts)


RULES: dict[str, Any] = {
    "default": "deny",
    "rules": [{"pathPrefix": "/api/", "allow": [{"sanUri": "spiffe://partner-a/*"}]}],
}


async def test_rules_in_the_binding_body_are_enforced_per_path(
    pki: E2ePki,
    node_files: MakeFiles,
    start_node: StartNode,
    kek: Path,
    origin: RecordingOrigin,
) -> None:
    running = await start_node(node_files(edges=[], kek_file=kek))
    await running.admin.publish([pki.ca_a.pem])
    await _create(running, _issue(pki))
    body = {"caSetName": "partners", "authorization": RULES}
    change = await _call(
        running.admin.api, "PUT", f"{EDGE}/shop/mutual-authentication/STAGING", body
    )
    assert change.status == 202, change.body

    async def settled() -> bool:
        got = await _call(running.admin.api, "GET", change.body["changeLink"])
        return got.body["status"] == "COMPLETE"

    await poll(settled, "the binding change to complete", timeout=WAIT)
    requests = [("GET", "/api/orders"), ("GET", "/admin/"), ("POST", "/api/orders")]
    results = await curl_keepalive(pki, running.port, HOST, pki.alice, requests)
    assert [status for status, _ in results] == [200, 403, 200]
    assert [connects for _, connects in results][1:] == [0, 0]  # one kept-alive connection
    assert origin.paths() == ["/api/orders", "/api/orders"]


def _alpn(pki: E2ePki, port: int, offer: list[str]) -> str | None:
    """A new connection to `HOST` offering `offer` by ALPN: the protocol the edge selected (the
    handshake refused raises, like any refusal)."""
    context = pki.client_context(pki.alice)
    context.set_alpn_protocols(offer)
    with (
        socket.create_connection(("127.0.0.1", port), TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=HOST) as tls,
    ):
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        tls.recv(1)  # TLS 1.3: a refusal shows on the first read
        return tls.selected_alpn_protocol()


alpn = in_thread(_alpn)


async def _curl_version(pki: E2ePki, port: int) -> str:
    """`curl --http2` to `HOST` on a new connection: the HTTP version it spoke."""
    # This --write-out replaces curl()'s: the version on the line before the status.
    write_out = "\n%{http_version}\n%{http_code}"
    extra = ("--http2", "--write-out", write_out)
    run, status, body = await curl(pki, port, HOST, pki.alice, extra=extra)
    assert status == 200, run.stderr
    return body.decode().rpartition("\n")[2]


async def test_an_edge_certificate_patched_to_http_1_1_serves_h2_clients_http_1_1(
    pki: E2ePki, node_files: MakeFiles, start_node: StartNode, kek: Path
) -> None:
    """/edge/v1 `alpn` reaches the edge: new connections of an HTTP/2 client get HTTP/1.1 (curl
    falls back), an h2-only offer is refused in the handshake, and a PATCH back restores h2."""
    running = await start_node(node_files(edges=[], kek_file=kek))
    await running.admin.publish([pki.ca_a.pem])
    assert (await _create_and_bind(running, _issue(pki)))["status"] == "COMPLETE"
    assert await alpn(pki, running.port, ["h2", "http/1.1"]) == "h2"
    assert await _curl_version(pki, running.port) == "2"

    async def patch(protocols: list[str]) -> None:
        _, status = await running.status.json("/status")
        patched = await _call(running.admin.api, "PATCH", f"{EDGE}/shop", {"alpn": protocols})
        assert (patched.status, patched.body["alpn"]) == (200, protocols), patched.body
        await running.status.wait_revision_after(status["trust"]["revision"])

    await patch(["http/1.1"])
    assert await alpn(pki, running.port, ["h2", "http/1.1"]) == "http/1.1"
    assert await _curl_version(pki, running.port) == "1.1"
    with pytest.raises(REFUSALS):
        await alpn(pki, running.port, ["h2"])
    await patch(["h2", "http/1.1"])
    assert await alpn(pki, running.port, ["h2"]) == "h2"
    assert await _curl_version(pki, running.port) == "2"
