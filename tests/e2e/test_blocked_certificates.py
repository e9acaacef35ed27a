"""Blocking one leaked client certificate (docs/management.md "Blocked certificates"), end to end:
two edge nodes on one store refuse its handshakes (reason `blocked`) once they applied the block,
its open keep-alive connection serves no further request, other clients are untouched, and
unblocking lets it back in."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time

import pytest

from support.nodes import poll
from support.origin import RecordingOrigin

from .clients import REFUSALS, aget, connection, exchange, handshake_done, refused, s_client
from .conftest import MakeFiles, Running, StartNode
from .pki import Client, E2ePki
from .test_open_connections import assert_no_further_request, assert_still_served, opened

pytestmark = pytest.mark.slow


async def refuses(node: Running, pki: E2ePki, client: Client) -> bool:
    try:
        await refused(pki, node.port, "api.test", client)
    except AssertionError:
        return False
    return True


async def blocked_handshakes(node: Running) -> float:
    metrics = await node.status.metrics()
    return metrics.value(
        "edgeproxy_tls_handshakes_total",
        edge_certificate="api",
        network="STAGING",
        result="failure",
        reason="blocked",
    )


async def test_a_blocked_certificate_is_refused_on_every_node_and_cut_off_when_open(
    node: Running,
    pki: E2ePki,
    node_files: MakeFiles,
    spawn_node: StartNode,
    origin: RecordingOrigin,
) -> None:
    # A second edge node on the same store.
    files = node_files(
        name="e2e-edge-2", roles=("edge",), store_url=f"sqlite:///{node.node.files.database}"
    )
    second = await spawn_node(files)
    assert (await aget(pki, second.port, "api.test", pki.alice, "/second")).status == 200
    alice = await opened(pki, node.port, pki.alice, "/alice-1")
    carol = await opened(pki, node.port, pki.carol, "/carol-1")
    try:
        started = time.monotonic()
        block = await node.admin.call(
            "POST",
            f"/ca-sets/{node.set_id}/blocked-certificates",
            {"fingerprintSha256": hashlib.sha256(pki.alice.der).hexdigest(), "reason": "leaked"},
            expect=(201,),
        )
        for each in (node, second):
            await poll(functools.partial(refuses, each, pki, pki.alice), "alice refused")
        applied_in = time.monotonic() - started
        print(f"block applied on both nodes in {applied_in:.3f}s")  # measured, not asserted
        for each in (node, second):
            assert await blocked_handshakes(each) >= 1
        # openssl too (TLS 1.2: the refusal comes before the server's Finished).
        alice_files = ("-cert", str(pki.alice.cert), "-key", str(pki.alice.key))
        assert not handshake_done(
            await s_client(pki, node.port, "api.test", "-tls1_2", *alice_files)
        )
        chain, key = str(pki.carol.cert), str(pki.carol.key)
        carol_files = ("-cert", chain, "-cert_chain", chain, "-key", key)
        assert handshake_done(await s_client(pki, node.port, "api.test", "-tls1_2", *carol_files))
        # The open connection: its next request never reaches the origin; carol's goes on.
        await assert_no_further_request(alice, origin, "/alice-2")
        await assert_still_served(carol, "/carol-2")
        assert (await aget(pki, second.port, "api.test", pki.carol, "/carol-3")).status == 200

        await node.admin.call(
            "DELETE",
            f"/ca-sets/{node.set_id}/blocked-certificates/{block['blockId']}",
            expect=(204,),
        )

        async def admitted() -> bool:
            try:
                response = await aget(pki, second.port, "api.test", pki.alice, "/again")
            except REFUSALS:
                return False  # not applied there yet
            return response.status == 200

        await poll(admitted, "alice admitted again on the second node")
    finally:
        alice.close()
        carol.close()


async def test_block_by_issuer_and_serial(node: Running, pki: E2ePki) -> None:
    leaf = pki.carol.leaf
    await node.admin.call(
        "POST",
        f"/ca-sets/{node.set_id}/blocked-certificates",
        {
            "issuer": leaf.issuer.rfc4514_string(),
            "serialNumber": f"{leaf.serial_number:X}",
            "reason": "lost laptop",
        },
        expect=(201,),
    )
    await poll(lambda: refuses(node, pki, pki.carol), "carol refused")
    assert (await aget(pki, node.port, "api.test", pki.alice, "/alice")).status == 200
    conn = connection(pki, node.port, "api.test", pki.alice)
    assert (await asyncio.to_thread(exchange, conn, "/alice-2")).status == 200
    conn.close()
