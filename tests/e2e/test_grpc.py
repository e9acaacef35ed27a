"""gRPC through the edge (docs/dataplane.md "HTTP/2 origins"): a real grpcio client with its
client certificate, a real grpcio server as the `h2c://` origin, a whole node between them.

grpcio is blocking: every call runs in a thread (`asyncio.to_thread`) while the in-process node
serves on the test's event loop."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from edgeproxy.domain.secrets import generate_kek
from support.grpc_origin import SERVICE, WAIT, GrpcOrigin, client_channel
from support.nodes import EdgeSpec, poll

from .conftest import AccessLog, MakeFiles, Running, StartNode
from .pki import Client, E2ePki

pytestmark = pytest.mark.slow


@pytest.fixture
def grpc_origin() -> Iterator[GrpcOrigin]:
    origin = GrpcOrigin()
    origin.start()
    yield origin
    origin.stop()


@pytest.fixture
async def grpc_node(
    pki: E2ePki, node_files: MakeFiles, start_node: StartNode, grpc_origin: GrpcOrigin
) -> Running:
    """A node whose `api` edge certificate sends its requests to the grpcio server over h2c."""
    edges = [
        EdgeSpec("api", ("api.test",), identity_headers=("xfcc", "rfc9440"), origin=grpc_origin.url)
    ]
    running = await start_node(node_files(edges=edges))
    running.set_id, running.version = await running.admin.publish([pki.ca_a.pem])
    return running


@pytest.fixture
async def channel(pki: E2ePki, grpc_node: Running) -> AsyncIterator[grpc.Channel]:
    with _channel(pki, grpc_node.port, pki.alice) as opened:
        yield opened


def _channel(
    pki: E2ePki, port: int, client: Client | None, authority: str = "api.test"
) -> grpc.Channel:
    root = pki.server_ca.ca.cert_pem.bytes()
    cert = key = None
    if client is not None:
        cert, key = client.cert.read_bytes(), client.key.read_bytes()
    return client_channel(port, authority, root, cert, key)


def _method(name: str) -> str:
    return f"/{SERVICE}/{name}"


async def test_a_unary_call_reaches_the_origin_with_the_identity(
    channel: grpc.Channel, grpc_origin: GrpcOrigin, pki: E2ePki, access_log: AccessLog
) -> None:
    call = channel.unary_unary(_method("Unary"))
    answer = await asyncio.to_thread(
        call, b"hello", timeout=WAIT, metadata=(("x-client-cert-verify", "forged"),)
    )
    assert answer == b"echo:hello"
    [(method, metadata)] = grpc_origin.calls
    assert method == "Unary"
    assert pki.alice.subject.split(",")[0] in metadata["x-forwarded-client-cert"]
    assert metadata["client-cert"] == pki.alice.rfc9440
    assert metadata["x-client-cert-verify"] == "SUCCESS"  # the client's own copy is gone
    [line] = [r for r in access_log.records("request") if r.path == _method("Unary")]
    assert (line.protocol, line.status) == ("h2", 200)


async def test_a_bidirectional_stream_interleaves_messages(
    channel: grpc.Channel, grpc_origin: GrpcOrigin
) -> None:
    """Each answer arrives before the next message is sent: nothing is buffered whole."""
    outgoing: queue.Queue[bytes | None] = queue.Queue()

    def messages() -> Iterator[bytes]:
        while (message := outgoing.get(timeout=WAIT)) is not None:
            yield message

    def converse() -> tuple[list[bytes], list[bytes]]:
        call = channel.stream_stream(_method("Chat"))(messages(), timeout=WAIT)
        answers = []
        for i in range(4):
            outgoing.put(b"m%d" % i)
            answers.append(next(call))
        outgoing.put(None)
        return answers, list(call)

    answers, rest = await asyncio.to_thread(converse)
    assert answers == [b"got:m0", b"got:m1", b"got:m2", b"got:m3"]
    assert rest == []
    assert [method for method, _ in grpc_origin.calls] == ["Chat"]


async def test_a_non_ok_status_and_its_details_reach_the_client(channel: grpc.Channel) -> None:
    call = channel.unary_unary(_method("Fail"))
    with pytest.raises(grpc.RpcError) as failed:
        await asyncio.to_thread(call, b"x", timeout=WAIT)
    error = failed.value
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == "the widget is not ready"


async def test_an_expired_deadline_cancels_the_origin_call_and_the_edge_serves_on(
    channel: grpc.Channel, grpc_origin: GrpcOrigin, access_log: AccessLog
) -> None:
    hold = channel.unary_unary(_method("Hold"))
    with pytest.raises(grpc.RpcError) as failed:
        await asyncio.to_thread(hold, b"x", timeout=0.5)
    assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # grpc-timeout reached the origin untouched (its deadline, not the edge's), and the client's
    # cancel reached it as a reset of its stream.
    [remaining] = grpc_origin.remaining
    assert remaining is not None
    assert 0 < remaining <= 0.5
    assert await asyncio.to_thread(grpc_origin.cancelled.wait, WAIT)
    again = channel.unary_unary(_method("Unary"))
    assert await asyncio.to_thread(again, b"after", timeout=WAIT) == b"echo:after"
    [line] = [r for r in access_log.records("request") if r.path == _method("Hold")]
    assert line.status == 499


async def test_a_client_without_a_certificate_is_refused_in_the_handshake(
    pki: E2ePki, grpc_node: Running, grpc_origin: GrpcOrigin
) -> None:
    with _channel(pki, grpc_node.port, None) as anonymous:
        call = anonymous.unary_unary(_method("Unary"))
        with pytest.raises(grpc.RpcError) as failed:
            await asyncio.to_thread(call, b"hello", timeout=WAIT)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert grpc_origin.calls == []


async def test_a_store_managed_edge_certificate_with_an_h2c_origin_carries_grpc(
    pki: E2ePki,
    node_files: MakeFiles,
    start_node: StartNode,
    grpc_origin: GrpcOrigin,
    tmp_path: Path,
) -> None:
    """/edge/v1 takes `h2c://` as an origin, and the edge nodes serve it like a TOML one."""
    kek = tmp_path / "kek.b64"
    kek.write_text(generate_kek())
    kek.chmod(0o600)
    running = await start_node(node_files(edges=[], kek_file=kek))
    await running.admin.publish([pki.ca_a.pem])
    api = running.admin.api
    leaf = pki.server_ca.ca.issue_cert("shop.test")
    body = {
        "name": "shop",
        "hostnames": ["shop.test"],
        "origin": grpc_origin.url,
        "certificateChainPem": "".join(b.bytes().decode() for b in leaf.cert_chain_pems),
        "privateKeyPem": leaf.private_key_pem.bytes().decode(),
    }
    created = await api.call("POST", "/edge/v1/edge-certificates", body, base=False)
    assert created.status == 201, created.body
    assert created.body["origin"] == grpc_origin.url
    path = "/edge/v1/edge-certificates/shop/mutual-authentication/STAGING"
    change = await api.call("PUT", path, {"caSetName": "partners"}, base=False)
    assert change.status == 202, change.body

    async def complete() -> bool:
        got = await api.call("GET", change.body["changeLink"], base=False)
        return got.body["status"] == "COMPLETE"

    await poll(complete, "the binding change to complete", timeout=WAIT)
    with _channel(pki, running.port, pki.alice, "shop.test") as shop:
        call = shop.unary_unary(_method("Unary"))
        assert await asyncio.to_thread(call, b"store", timeout=WAIT) == b"echo:store"
    [(_, metadata)] = grpc_origin.calls
    assert metadata["x-forwarded-host"] == "shop.test"
    assert pki.alice.subject.split(",")[0] in metadata["x-forwarded-client-cert"]
