"""What a node that cannot start says (docs/operations.md "Starting"): one "node not started"
line naming the config key or the edge certificate and its file, exit status 1, no traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from support.nodes import not_started, poll

from .conftest import MakeFiles, StartNode
from .pki import E2ePki
from .test_static_stability import unreachable_store

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("key", ["edge.listen", "status.listen", "admin.listen"])
async def test_a_port_in_use_is_one_line_naming_its_key(node_files: MakeFiles, key: str) -> None:
    files = node_files()
    files.use_free_ports()
    port = {
        "edge.listen": files.edge_port,
        "status.listen": files.status_port,
        "admin.listen": files.admin_port,
    }[key]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        line, _ = await not_started(files)
    in_use = "cannot listen there: Address already in use"
    assert line["error"] == f'{key} = "127.0.0.1:{port}": {in_use}'


async def test_an_edge_certificate_that_does_not_load_names_the_edge_and_the_file(
    node_files: MakeFiles,
) -> None:
    files = node_files()
    files.server_chain.write_text("not a certificate\n")
    line, _ = await not_started(files)
    assert line["error"].startswith(
        "the first trust state does not build: "
        f"edge certificate 'api': certificate file {files.server_chain} does not load as a PEM "
        "certificate chain (no start line"
    )


async def test_a_name_both_in_the_file_and_the_store_is_one_line_naming_it(
    pki: E2ePki, node_files: MakeFiles, start_node: StartNode, kek: Path
) -> None:
    """Whether the node reads the store at start or, the store unreachable, its snapshot."""
    first_files = node_files(name="store-only", edges=[], kek_file=kek)
    first = await start_node(first_files)
    await first.admin.publish([pki.ca_a.pem])
    leaf = pki.server_ca.ca.issue_cert("named-twice.test")
    body = {
        "name": "api",  # the name node_files' default [[edge.certificates]] declares
        "hostnames": ["named-twice.test"],
        "origin": first_files.origin_url,
        "certificateChainPem": "".join(b.bytes().decode() for b in leaf.cert_chain_pems),
        "privateKeyPem": leaf.private_key_pem.bytes().decode(),
    }
    created = await first.admin.api.call("POST", "/edge/v1/edge-certificates", body, base=False)
    assert created.status == 201, created.body

    def snapshot_holds_it() -> bool:
        return first_files.snapshot.is_file() and '"api"' in first_files.snapshot.read_text()

    await poll(snapshot_holds_it, "the store-managed certificate in the snapshot")
    assert await first.in_process.stop() == 0

    from_store = node_files(
        name="declares-api", kek_file=kek, store_url=f"sqlite:///{first_files.database}"
    )
    from_snapshot = node_files(
        name="declares-api",
        roles=("edge",),
        kek_file=kek,
        store_url=unreachable_store(),
        snapshot_at=first_files.snapshot,
    )
    for files in (from_store, from_snapshot):
        line, _ = await not_started(files)
        assert line["error"] == (
            "edge certificate(s) 'api' are defined both in this node's [[edge.certificates]] "
            "and in the store; rename or remove one of them"
        )
