"""A node process and real signals (docs/dataplane.md, docs/configuration.md): SIGHUP reloads the
config file build-then-swap (a bad
file is refused and the node keeps serving); SIGTERM drains in-flight requests and exits 0."""

from __future__ import annotations

import asyncio
import hashlib
import re
import signal
import ssl

import aiohttp
import pytest
from h2.errors import ErrorCodes
from h2.events import SettingsAcknowledged

from support.admin import BASE
from support.h2raw import H2Raw
from support.nodes import ADMIN_TOKEN, EdgeSpec, SubprocessNode, default_edges, poll
from support.origin import RecordingOrigin

from .clients import aget, connection, exchange, read_until_closed, refused, run_tool, tool
from .conftest import MakeFiles, StartNode
from .pki import E2ePki

pytestmark = pytest.mark.slow


async def reloaded(node: SubprocessNode, message: str, count: int) -> None:
    """Wait until the node logged `message` for the count-th time."""
    await poll(lambda: node.messages().count(message) >= count, f"{message!r} #{count}")


async def test_sighup_adds_an_edge_certificate_and_refuses_an_invalid_file(
    pki: E2ePki, origin: RecordingOrigin, node_files: MakeFiles, spawn_node: StartNode
) -> None:
    files = node_files(edges=[e for e in default_edges() if e.name != "forward"])
    running = await spawn_node(files)
    node = running.node
    assert isinstance(node, SubprocessNode)
    assert node.process is not None
    pid = node.process.pid
    await running.admin.publish([pki.ca_a.pem])
    assert (await aget(pki, running.port, "api.test", pki.alice)).status == 200
    # Not served yet: no edge certificate for the name (unrecognized_name).
    error = await refused(pki, running.port, "forward.test", None)
    assert isinstance(error, ssl.SSLError)
    assert "UNRECOGNIZED_NAME" in str(error)

    files.edges = default_edges()
    files.write()
    node.send(signal.SIGHUP)
    await reloaded(node, "configuration reloaded", 1)
    response = await aget(pki, running.port, "forward.test", None, "/after-hup")
    assert response.status == 200
    assert origin.last("/after-hup").one("X-Client-Cert-Verify") == "NONE"

    files.path.write_text("[node\nthis is not TOML\n", encoding="utf-8")
    node.send(signal.SIGHUP)
    await reloaded(node, "configuration reload rejected", 1)
    (rejected,) = [m for m in node.log_lines() if m["message"] == "configuration reload rejected"]
    assert "invalid TOML" in rejected["error"]
    # Still the same process and the last good configuration.
    assert node.process.returncode is None
    assert node.process.pid == pid
    assert (await aget(pki, running.port, "api.test", pki.alice)).status == 200
    assert (await aget(pki, running.port, "forward.test", None)).status == 200


async def test_sighup_with_unusable_certificate_files_keeps_the_running_state(
    pki: E2ePki, node_files: MakeFiles, spawn_node: StartNode
) -> None:
    files = node_files()
    running = await spawn_node(files)
    node = running.node
    assert isinstance(node, SubprocessNode)
    assert node.process is not None
    await running.admin.publish([pki.ca_a.pem])
    good = (files.server_chain, files.server_key)
    certs = files.directory / "certs"
    (certs / "garbage.pem").write_text("not a certificate\n")
    (certs / "someone-else.key").write_bytes(pki.alice.key.read_bytes())
    garbage, other_key = certs / "garbage.pem", certs / "someone-else.key"
    # One line naming the edge certificate and the file, never OpenSSL's list of tuples.
    unusable = [
        (certs / "missing.pem", good[1], "ConfigError", "missing.pem"),  # the config parser's
        (
            garbage,
            good[1],
            "EdgeCertificateError",  # exists; OpenSSL cannot load it
            f"edge certificate 'api': certificate file {garbage} does not load as a PEM "
            "certificate chain (no start line",
        ),
        (
            good[0],
            other_key,
            "EdgeCertificateError",
            f"edge certificate 'api': the private key in {other_key} does not match the "
            f"certificate in {good[0]}",
        ),
    ]
    for count, (chain, key, error_type, words) in enumerate(unusable, start=1):
        files.server_chain, files.server_key = chain, key
        files.write()
        node.send(signal.SIGHUP)
        await reloaded(node, "configuration reload rejected", count)
        rejected = [m for m in node.log_lines() if m["message"] == "configuration reload rejected"]
        assert rejected[-1]["error_type"] == error_type
        assert words in rejected[-1]["error"]
        assert "[(" not in rejected[-1]["error"]
        assert node.process.returncode is None
        assert (await aget(pki, running.port, "api.test", pki.alice)).status == 200

    # The twin: usable files again are taken.
    files.server_chain, files.server_key = good
    files.write()
    node.send(signal.SIGHUP)
    await reloaded(node, "configuration reloaded", 1)
    assert (await aget(pki, running.port, "api.test", pki.alice)).status == 200


async def test_sigterm_completes_the_in_flight_request_then_exits_zero(
    pki: E2ePki, origin: RecordingOrigin, node_files: MakeFiles, spawn_node: StartNode
) -> None:
    running = await spawn_node(node_files())
    node = running.node
    assert isinstance(node, SubprocessNode)
    await running.admin.publish([pki.ca_a.pem])

    idle = connection(pki, running.port, "api.test", pki.alice)  # keep-alive, then idle
    slow = asyncio.create_task(aget(pki, running.port, "api.test", pki.alice, "/slow"))
    try:
        assert (await asyncio.to_thread(exchange, idle, "/before-term")).status == 200
        async with asyncio.timeout(10):
            await origin.slow_started.wait()  # the request is at the origin, in flight
        node.send(signal.SIGTERM)
        response = await slow
        # The idle keep-alive connection is closed, not waited for.
        assert isinstance(idle.sock, ssl.SSLSocket)
        assert await asyncio.to_thread(read_until_closed, idle.sock) == b""
    finally:
        idle.close()
        if not slow.done():
            slow.cancel()
    assert response.status == 200
    assert response.json() == {"ok": True, "path": "/slow", "length": 0}
    assert response.headers.get("connection") == "close"
    assert await node.wait() == 0
    assert "node stopping" in node.messages()
    # The twin: nothing listens any more.
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", running.port)


async def test_sigterm_sends_goaway_to_http2_connections_and_completes_the_stream_in_flight(
    pki: E2ePki, origin: RecordingOrigin, node_files: MakeFiles, spawn_node: StartNode
) -> None:
    """The HTTP/2 twin of the case above: nghttp (which prints every frame) has a stream in
    flight; the edge sends GOAWAY naming it, answers it, then exits 0. An idle HTTP/2
    connection gets GOAWAY NO_ERROR too, and is closed."""
    edges = [EdgeSpec("api", ("api.test", "*.api.test"), default=True), *default_edges()[1:]]
    running = await spawn_node(node_files(edges=edges))
    node = running.node
    assert isinstance(node, SubprocessNode)
    await running.admin.publish([pki.ca_a.pem])

    idle = await H2Raw.connect(running.port, pki.client_context(pki.alice), "api.test")
    # nghttp sends no SNI to an IP address: the default edge, with :authority set by hand.
    argv = [
        tool("nghttp", "nghttp2-client"), "--verbose", "--cert", str(pki.alice.cert),
        "--key", str(pki.alice.key), "-H", ":authority: api.test",
        f"https://127.0.0.1:{running.port}/slow",
    ]  # fmt: skip
    nghttp = asyncio.create_task(run_tool(*argv))
    try:
        await idle.read(until=SettingsAcknowledged)
        async with asyncio.timeout(10):
            await origin.slow_started.wait()  # the stream is at the origin, in flight
        node.send(signal.SIGTERM)
        run = await nghttp
        await idle.read()  # until the edge closes it
    finally:
        await idle.close()
        if not nghttp.done():
            nghttp.cancel()
    assert run.code == 0, run
    out = run.stdout
    [sid] = re.findall(r"send HEADERS frame <[^>]*stream_id=(\d+)>", out)
    goaway = re.search(r"recv GOAWAY frame .*\n\s*\(last_stream_id=(\d+), error_code=(\w+)", out)
    assert goaway is not None, out
    assert (goaway.group(1), goaway.group(2)) == (sid, "NO_ERROR")
    status = out.index(f"recv (stream_id={sid}) :status: 200")
    assert goaway.start() < status  # GOAWAY while the stream was in flight, then its answer
    assert '{"ok": true, "path": "/slow", "length": 0}' in out[status:]
    idle_goaway = idle.goaway()
    assert idle_goaway is not None
    assert idle_goaway.error_code == ErrorCodes.NO_ERROR
    assert idle.closed
    assert await node.wait() == 0
    assert "node stopping" in node.messages()


async def test_sighup_rotates_admin_tokens(
    pki: E2ePki, node_files: MakeFiles, spawn_node: StartNode, http: aiohttp.ClientSession
) -> None:
    files = node_files()
    running = await spawn_node(files)
    node = running.node
    assert isinstance(node, SubprocessNode)
    url = running.admin.api.origin + BASE + "/ca-sets"

    async def status_with(token: str) -> int:
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as reply:
            return reply.status

    rotated = "e2e-rotated-token"
    assert await status_with(ADMIN_TOKEN) == 200
    assert await status_with(rotated) == 401
    old_hash = hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()
    new_hash = hashlib.sha256(rotated.encode()).hexdigest()
    files.path.write_text(files.text().replace(old_hash, new_hash), encoding="utf-8")
    node.send(signal.SIGHUP)
    await reloaded(node, "configuration reloaded", 1)
    assert await status_with(rotated) == 200
    assert await status_with(ADMIN_TOKEN) == 401  # the old token is gone, no restart needed
