"""Trust changes reach open connections (docs/dataplane.md): after an activation that drops a
client's CA, a forced deactivation, or a CRL that names the client, its open keep-alive
connection serves no further request; a connection whose client is still trusted keeps working on
the same socket. `edge.limits.max_connection_age` retires every connection as a second line."""

from __future__ import annotations

import asyncio
import http.client
import logging
from dataclasses import replace

import aiohttp
import pytest

from support.nodes import default_edges, poll
from support.origin import RecordingOrigin

from .clients import REFUSALS, PinnedHTTPSConnection, connection, exchange
from .conftest import MakeFiles, Running, StartNode
from .pki import Client, E2ePki, crl_revoking
from .test_websocket import Loopback

pytestmark = pytest.mark.slow
CLOSED = "edgeproxy_connections_closed_total"


async def opened(pki: E2ePki, port: int, client: Client, path: str) -> PinnedHTTPSConnection:
    """A keep-alive connection that has served one request."""
    conn = connection(pki, port, "api.test", client)
    assert (await asyncio.to_thread(exchange, conn, path)).status == 200
    return conn


async def closed_count(node: Running, reason: str) -> float:
    return (await node.status.metrics()).value(CLOSED, edge_certificate="api", reason=reason)


async def wait_closed(node: Running, reason: str, count: float = 1) -> None:
    async def enough() -> bool:
        return await closed_count(node, reason) >= count

    await poll(enough, f"{count:g} connection(s) closed with reason {reason}")


async def assert_no_further_request(
    conn: http.client.HTTPSConnection, origin: RecordingOrigin, path: str
) -> None:
    with pytest.raises(REFUSALS):
        await asyncio.to_thread(exchange, conn, path)
    assert path not in origin.paths()


async def assert_still_served(conn: PinnedHTTPSConnection, path: str) -> None:
    sock = conn.sock
    assert (await asyncio.to_thread(exchange, conn, path)).status == 200
    assert conn.sock is sock  # the same connection, not a new one


async def test_an_activation_that_drops_the_ca_closes_its_open_connections_only(
    node: Running, pki: E2ePki, origin: RecordingOrigin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edgeproxy.dataplane.connections")
    alice = await opened(pki, node.port, pki.alice, "/alice-1")  # CA A
    carol = await opened(pki, node.port, pki.carol, "/carol-1")  # under the root
    try:
        # Version 2 keeps the root and drops CA A.
        version = await node.admin.create_version(node.set_id, [pki.root.pem])
        final = await node.admin.settle(
            node.set_id, await node.admin.activate(node.set_id, version)
        )
        assert final["activationStatus"] == "COMPLETE"
        await wait_closed(node, "unknown_ca")

        await assert_no_further_request(alice, origin, "/alice-2")
        await assert_still_served(carol, "/carol-2")
        assert await closed_count(node, "unknown_ca") == 1  # carol's was judged and kept
        lines = [r for r in caplog.records if r.getMessage().startswith("closing a connection")]
        extra = [vars(r) for r in lines]  # the fields the log call passed as `extra`
        assert [(e["edge_certificate"], e["reason"]) for e in extra] == [("api", "unknown_ca")]
    finally:
        alice.close()
        carol.close()


async def test_a_forced_deactivation_closes_the_open_connections_of_that_set_only(
    pki: E2ePki, node_files: MakeFiles, start_node: StartNode, origin: RecordingOrigin
) -> None:
    # `other` binds a second set, which trusts CA B.
    edges = [replace(e, ca_set="second") if e.name == "other" else e for e in default_edges()]
    node = await start_node(node_files(edges=edges))
    node.set_id, node.version = await node.admin.publish([pki.ca_a.pem])
    second = await node.admin.create_set("second")
    version = await node.admin.create_version(second, [pki.ca_b.pem])
    await node.admin.settle(second, await node.admin.activate(second, version))
    alice = await opened(pki, node.port, pki.alice, "/alice-1")
    bob = connection(pki, node.port, "other.test", pki.bob)
    try:
        assert (await asyncio.to_thread(exchange, bob, "/bob-1")).status == 200
        stop = await node.admin.deactivate(node.set_id, node.version, force=True)
        assert (await node.admin.settle(node.set_id, stop))["activationStatus"] == "COMPLETE"
        await wait_closed(node, "no_active_version")
        await assert_no_further_request(alice, origin, "/alice-2")
        await assert_still_served(bob, "/bob-2")
    finally:
        alice.close()
        bob.close()


async def test_a_crl_that_names_the_client_closes_its_open_connection_only(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    alice = await opened(pki, node.port, pki.alice, "/alice-1")
    carol = await opened(pki, node.port, pki.carol, "/carol-1")
    try:
        before = (await node.status.json("/status"))[1]["trust"]["revision"]
        await node.admin.call(
            "POST",
            f"/ca-sets/{node.set_id}/crls",
            {"crlPem": crl_revoking(pki.ca_a, pki.alice.leaf)},
            expect=(201,),
        )
        await node.status.wait_revision_after(before)
        await wait_closed(node, "revoked")

        await assert_no_further_request(alice, origin, "/alice-2")
        await assert_still_served(carol, "/carol-2")
    finally:
        alice.close()
        carol.close()


async def test_a_websocket_tunnel_of_a_client_no_longer_trusted_is_closed(
    node: Running, pki: E2ePki
) -> None:
    connector = aiohttp.TCPConnector(resolver=Loopback(), force_close=True)
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        url = f"wss://api.test:{node.port}/ws"
        async with session.ws_connect(url, ssl=pki.client_context(pki.alice)) as ws:
            await ws.send_str("before")
            assert (await ws.receive(timeout=10)).data == "echo:before"

            version = await node.admin.create_version(node.set_id, [pki.root.pem])
            await node.admin.settle(node.set_id, await node.admin.activate(node.set_id, version))
            await wait_closed(node, "unknown_ca")

            message = await ws.receive(timeout=10)
            assert message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
            )


async def test_max_connection_age_retires_a_trusted_connection(
    pki: E2ePki, node_files: MakeFiles, start_node: StartNode, origin: RecordingOrigin
) -> None:
    running = await start_node(node_files(limits={"max_connection_age": 0.5}))
    running.set_id, running.version = await running.admin.publish([pki.ca_a.pem])
    alice = await opened(pki, running.port, pki.alice, "/alice-1")
    try:
        await wait_closed(running, "max_age")
        await assert_no_further_request(alice, origin, "/alice-2")
    finally:
        alice.close()
