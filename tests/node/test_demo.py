"""The embedded demo: dev PKI, demo CA set (real SQLite store), demo origin, printed commands."""

from __future__ import annotations

import asyncio
import base64
import os
import shlex
import shutil
import ssl
import stat
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import NameOID

from edgeproxy.config.kek import read_kek_file
from edgeproxy.config.model import HostPort
from edgeproxy.domain.certificates import CertificateInput
from edgeproxy.domain.model import ActivationStatus, Network, Node
from edgeproxy.node.demo import (
    DemoOrigin,
    DevPki,
    curl_commands,
    ensure_demo_ca_set,
    ensure_dev_kek,
    ensure_dev_pki,
)
from edgeproxy.service.fleet import FleetService
from edgeproxy.service.shared import Actor
from edgeproxy.service.truststore import Truststore
from edgeproxy.service.versions import VersionDraft
from edgeproxy.store import open_store
from support.loopback import serve_app


def make_pki(root: Path) -> DevPki:
    return ensure_dev_pki(
        root / "pki", root / "pki" / "server-chain.pem", root / "pki" / "server.key"
    )


def files(pki: DevPki) -> dict[str, bytes]:
    paths = (
        pki.server_chain,
        pki.server_key,
        pki.server_ca,
        pki.client_ca,
        pki.client_cert,
        pki.client_key,
    )
    return {p.name: p.read_bytes() for p in paths}


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture
def pki(tmp_path: Path) -> DevPki:
    return make_pki(tmp_path)


# -- dev PKI -------------------------------------------------------------------------------------


def test_second_call_reuses_every_file_byte_for_byte(tmp_path: Path, pki: DevPki) -> None:
    before = files(pki)
    assert make_pki(tmp_path) == pki
    assert files(pki) == before


def test_a_missing_client_file_remakes_the_client_group_only(tmp_path: Path, pki: DevPki) -> None:
    before = files(pki)
    pki.client_key.unlink()
    after = files(make_pki(tmp_path))
    for name in ("client-ca.pem", "client.pem", "client.key"):
        assert after[name] != before[name]
    for name in ("server-chain.pem", "server.key", "server-ca.pem"):
        assert after[name] == before[name]
    cert(pki.client_cert).verify_directly_issued_by(cert(pki.client_ca))


def test_client_certificate_verifies_against_the_client_ca(pki: DevPki) -> None:
    client = cert(pki.client_cert)
    client.verify_directly_issued_by(cert(pki.client_ca))
    assert client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "demo-client"
    san = client.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://demo/client"]
    assert client.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_client_certificate_does_not_verify_against_the_server_ca(pki: DevPki) -> None:
    with pytest.raises(ValueError, match=r"[Ii]ssuer"):
        cert(pki.client_cert).verify_directly_issued_by(cert(pki.server_ca))


def _handshake(pki: DevPki, cafile: Path, hostname: str) -> None:
    """A real TLS handshake between stdlib peers over memory BIOs, presenting the server chain."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(pki.server_chain, pki.server_key)
    client_ctx = ssl.create_default_context(cafile=str(cafile))
    bios = [ssl.MemoryBIO() for _ in range(4)]
    client = client_ctx.wrap_bio(bios[0], bios[1], server_hostname=hostname)
    server = server_ctx.wrap_bio(bios[2], bios[3], server_side=True)
    done = {id(client): False, id(server): False}
    for _ in range(10):
        for side, outgoing, peer_incoming in (
            (client, bios[1], bios[2]),
            (server, bios[3], bios[0]),
        ):
            if not done[id(side)]:
                try:
                    side.do_handshake()
                    done[id(side)] = True
                except ssl.SSLWantReadError:
                    pass
            if outgoing.pending:
                peer_incoming.write(outgoing.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


def test_server_chain_is_trusted_for_localhost_via_server_ca(pki: DevPki) -> None:
    _handshake(pki, pki.server_ca, "localhost")
    names = cert(pki.server_chain).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "localhost" in names.value.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("which", "hostname"), [("client_ca", "localhost"), ("server_ca", "example.com")]
)
def test_server_chain_is_refused_with_the_wrong_ca_or_name(
    pki: DevPki, which: str, hostname: str
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(pki, getattr(pki, which), hostname)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("permissive_umask")
def test_private_keys_are_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    for key in (pki.server_key, pki.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "pki").stat().st_mode) == 0o700


@pytest.mark.usefixtures("permissive_umask")
def test_the_dev_key_encryption_key_is_32_random_bytes_owner_only_and_kept(
    tmp_path: Path,
) -> None:
    """`make run` seals store-managed keys with it: a node must accept it, and a restart must
    find the same key, or the keys it sealed no longer open."""
    path = tmp_path / "var" / "dev-kek.b64"
    ensure_dev_kek(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="ascii")
    assert len(base64.b64decode(text.strip(), validate=True)) == 32
    assert read_kek_file(path, "store.key_encryption_key_file") == base64.b64decode(text)
    ensure_dev_kek(path)
    assert path.read_text(encoding="ascii") == text
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    # One an operator put there is kept too.
    mine = base64.b64encode(bytes(range(32))).decode() + "\n"
    path.write_text(mine, encoding="ascii")
    ensure_dev_kek(path)
    assert path.read_text(encoding="ascii") == mine


@pytest.mark.usefixtures("permissive_umask")
def test_certificates_are_not_group_or_world_writable(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    for path in (pki.server_chain, pki.server_ca, pki.client_ca, pki.client_cert):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert not [p for p in (tmp_path / "pki").iterdir() if p.name.endswith(".tmp")]


# -- demo CA set ---------------------------------------------------------------------------------


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Truststore]:
    store = open_store(f"sqlite:///{tmp_path / 'edgeproxy.db'}")
    await store.open()
    yield Truststore.build(store)
    await store.close()


async def counts(service: Truststore) -> tuple[int, int, int, int]:
    sets = await service.ca_sets.list_ca_sets()
    set_id = sets[0].id
    return (
        len(sets),
        len(await service.versions.list_versions(set_id)),
        len(await service.activations.list_activations(set_id)),
        len(await service.ca_sets.list_activities(set_id)),
    )


async def test_demo_ca_set_is_made_once(service: Truststore, pki: DevPki) -> None:
    await ensure_demo_ca_set(service, "demo-clients", pki.client_ca_pem(), Network.STAGING)
    first = await counts(service)
    await ensure_demo_ca_set(service, "demo-clients", pki.client_ca_pem(), Network.STAGING)
    assert await counts(service) == first == (1, 1, 1, 3)
    (ca_set,) = await service.ca_sets.list_ca_sets()
    assert (ca_set.name, ca_set.staging_version, ca_set.production_version) == (
        "demo-clients",
        1,
        None,
    )
    (activation,) = await service.activations.list_activations(ca_set.id)
    assert activation.created_by == "demo"


async def test_a_new_client_ca_gets_a_new_version_activated(
    service: Truststore, pki: DevPki, tmp_path: Path
) -> None:
    await ensure_demo_ca_set(service, "demo-clients", pki.client_ca_pem(), Network.STAGING)
    other = make_pki(tmp_path / "other")
    await ensure_demo_ca_set(service, "demo-clients", other.client_ca_pem(), Network.STAGING)
    assert (await counts(service))[:3] == (1, 2, 2)
    (ca_set,) = await service.ca_sets.list_ca_sets()
    assert ca_set.staging_version == 2


async def test_another_network_reuses_the_version(service: Truststore, pki: DevPki) -> None:
    await ensure_demo_ca_set(service, "demo-clients", pki.client_ca_pem(), Network.STAGING)
    await ensure_demo_ca_set(service, "demo-clients", pki.client_ca_pem(), Network.PRODUCTION)
    assert (await counts(service))[:3] == (1, 1, 2)
    (ca_set,) = await service.ca_sets.list_ca_sets()
    assert (ca_set.staging_version, ca_set.production_version) == (1, 1)


async def test_an_operators_deactivation_stands(service: Truststore, pki: DevPki) -> None:
    await ensure_demo_ca_set(service, "demo-clients", pki.client_ca_pem(), Network.STAGING)
    (ca_set,) = await service.ca_sets.list_ca_sets()
    await service.activations.deactivate(Actor("ops"), ca_set.id, 1, Network.STAGING, force=False)
    await ensure_demo_ca_set(service, "demo-clients", pki.client_ca_pem(), Network.STAGING)
    assert (await counts(service))[:3] == (1, 1, 2)
    assert (await service.ca_sets.get_ca_set(ca_set.id)).staging_version is None


async def test_an_operators_later_activation_stands(
    service: Truststore, pki: DevPki, tmp_path: Path
) -> None:
    await ensure_demo_ca_set(service, "demo-clients", pki.client_ca_pem(), Network.STAGING)
    (ca_set,) = await service.ca_sets.list_ca_sets()
    other = make_pki(tmp_path / "other")
    draft = VersionDraft(
        allow_insecure_sha1=False,
        require_root_certificate=False,
        description="the operator's own CA",
        certificates=(CertificateInput(other.client_ca_pem(), "ops CA"),),
    )
    await service.versions.create_version(Actor("ops"), ca_set.id, draft)
    await service.activations.activate(Actor("ops"), ca_set.id, 2, Network.STAGING)
    await ensure_demo_ca_set(service, "demo-clients", pki.client_ca_pem(), Network.STAGING)
    assert (await counts(service))[:3] == (1, 2, 2)
    assert (await service.ca_sets.get_ca_set(ca_set.id)).staging_version == 2
    # The other network is still the demo's to set up: only what is missing is created.
    await ensure_demo_ca_set(service, "demo-clients", pki.client_ca_pem(), Network.PRODUCTION)
    assert (await service.ca_sets.get_ca_set(ca_set.id)).production_version == 1


# -- a restart after kill -9 ---------------------------------------------------------------------


async def _report(fleet: FleetService, name: str, applied_revision: int) -> None:
    now = datetime.now(UTC)
    await fleet.report_node(
        Node(
            name=name,
            network=Network.STAGING,
            roles=("admin", "edge"),
            started_at=now,
            last_seen=now,
            applied_revision=applied_revision,
        )
    )


@pytest.mark.parametrize("by", ["ops", "demo"])
async def test_a_restart_settles_the_activation_its_killed_process_left_in_flight(
    service: Truststore, pki: DevPki, tmp_path: Path, by: str
) -> None:
    """The node (admin and edge, the only one) was killed right after an activation, before it
    applied it: its last report still looks live, so the activation stays IN_PROGRESS, and only
    this node's own reconciler, which starts after the demo, could ever settle it. The demo's
    start refused that (activation-in-progress), and the node never came up."""
    fleet = service.fleet
    await ensure_demo_ca_set(service, "demo-clients", pki.client_ca_pem(), Network.STAGING)
    (ca_set,) = await service.ca_sets.list_ca_sets()
    await _report(fleet, "node-1", applied_revision=await service.fleet.store.revision())
    current = pki  # the PKI on disk, which the restarted node reads
    if by == "ops":
        in_flight = await service.activations.deactivate(
            Actor("ops"), ca_set.id, 1, Network.STAGING, force=True
        )
    else:
        # The demo's PKI was remade: a new version, activated by the demo.
        current = make_pki(tmp_path / "remade")
        await ensure_demo_ca_set(service, "demo-clients", current.client_ca_pem(), Network.STAGING)
        (in_flight, *_) = await service.activations.list_activations(ca_set.id)
    assert in_flight.status is ActivationStatus.IN_PROGRESS
    await _report(fleet, "node-1/w0", applied_revision=0)  # a worker of the killed process
    # kill -9; the same node starts again, in the order node.run does:
    await service.reconciler.settle_restart("node-1")
    await ensure_demo_ca_set(service, "demo-clients", current.client_ca_pem(), Network.STAGING)
    settled = await service.activations.get_activation(ca_set.id, in_flight.version, in_flight.id)
    assert settled.status is ActivationStatus.COMPLETE
    after = await service.ca_sets.get_ca_set(ca_set.id)
    # The operator's deactivation stands; the demo's own activation of the remade CA stays.
    assert after.staging_version == (None if by == "ops" else 2)
    assert (await counts(service))[2] == 2


async def test_a_restart_leaves_other_live_nodes_and_their_activations_alone(
    service: Truststore, pki: DevPki
) -> None:
    fleet = service.fleet
    await ensure_demo_ca_set(service, "demo-clients", pki.client_ca_pem(), Network.STAGING)
    (ca_set,) = await service.ca_sets.list_ca_sets()
    await _report(fleet, "node-10", applied_revision=0)  # another node, alive, not caught up
    in_flight = await service.activations.deactivate(
        Actor("ops"), ca_set.id, 1, Network.STAGING, force=True
    )
    await service.reconciler.settle_restart("node-1")
    still = await service.activations.get_activation(ca_set.id, 1, in_flight.id)
    assert still.status is ActivationStatus.IN_PROGRESS
    # The demo neither fails nor activates over the operator while it settles.
    await ensure_demo_ca_set(service, "demo-clients", pki.client_ca_pem(), Network.STAGING)
    assert (await service.ca_sets.get_ca_set(ca_set.id)).staging_version is None


# -- demo origin ---------------------------------------------------------------------------------


@pytest.fixture
async def origin() -> AsyncIterator[str]:
    role = DemoOrigin(HostPort("127.0.0.1", 0))
    await role.start()
    try:
        yield f"http://127.0.0.1:{role.port}"
    finally:
        await role.stop()


async def test_origin_echoes_method_path_and_headers(origin: str) -> None:
    headers = {"X-Forwarded-Client-Cert": 'Hash=ab;URI="spiffe://demo/client"'}
    async with (
        aiohttp.ClientSession() as http,
        http.put(f"{origin}/a/b?c=1", headers=headers, data=b"12345") as response,
    ):
        assert response.status == 200
        body = await response.json()
    assert (body["method"], body["path"], body["query"], body["bodyBytes"]) == (
        "PUT",
        "/a/b",
        "c=1",
        5,
    )
    assert body["headers"]["X-Forwarded-Client-Cert"] == headers["X-Forwarded-Client-Cert"]


async def test_origin_echoes_no_identity_header_it_was_not_sent(origin: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{origin}/") as response:
        body = await response.json()
    assert body["method"] == "GET"
    assert not {h.lower() for h in body["headers"]} & {"x-forwarded-client-cert", "client-cert"}


async def test_origin_websocket_echoes_frames(origin: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{origin}/ws") as ws:
        await ws.send_str("hello")
        assert await ws.receive_str(timeout=5) == "hello"
        await ws.send_bytes(b"\x00\x01")
        assert await ws.receive_bytes(timeout=5) == b"\x00\x01"


async def test_origin_plain_get_on_ws_path_is_an_echo_not_an_upgrade(origin: str) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{origin}/ws") as response:
        assert response.status == 200
        assert (await response.json())["path"] == "/ws"


# -- printed commands, run with curl against a TLS server that requires the demo client CA -------


def test_commands_name_the_pki_files(pki: DevPki) -> None:
    ok, refused = _commands(curl_commands(pki, HostPort("127.0.0.1", 8443), "localhost"))
    assert ok == [
        "curl", "--cacert", str(pki.server_ca), "--cert", str(pki.client_cert),
        "--key", str(pki.client_key), "https://localhost:8443/",
    ]  # fmt: skip
    assert refused == ["curl", "--cacert", str(pki.server_ca), "https://localhost:8443/"]


def test_commands_pin_a_hostname_that_may_not_resolve_to_the_listener(pki: DevPki) -> None:
    ok, refused = _commands(curl_commands(pki, HostPort("0.0.0.0", 8443), "api.example.com"))  # noqa: S104
    for command in (ok, refused):
        assert command[1:3] == ["--resolve", "api.example.com:8443:127.0.0.1"]
        assert command[-1] == "https://api.example.com:8443/"


def _commands(text: str) -> tuple[list[str], list[str]]:
    ok, refused = [shlex.split(line) for line in text.splitlines() if line.startswith("  curl ")]
    return ok, refused


async def _curl(command: list[str]) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *command, "--silent", "--max-time", "10",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return proc.returncode or 0, out


async def test_printed_commands_succeed_and_are_refused(pki: DevPki) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl not installed")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.server_chain, pki.server_key)
    tls.load_verify_locations(pki.client_ca)
    tls.verify_mode = ssl.CERT_REQUIRED  # the edge's `mode = "require"`, played by stdlib ssl

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello client")

    app = web.Application()
    app.router.add_get("/", hello)
    runner, port = await serve_app(app, ssl_context=tls)
    try:
        ok, refused = _commands(curl_commands(pki, HostPort("127.0.0.1", port), "localhost"))
        assert await _curl(ok) == (0, b"hello client")
        code, out = await _curl(refused)
        assert code != 0
        assert out == b""
    finally:
        await runner.cleanup()
