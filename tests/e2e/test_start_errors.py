"""What a node that cannot start says (docs/operations.md "Starting"): one "node not started"
line naming the config key or the edge certificate and its file, exit status 1, no traceback."""

from __future__ import annotations

import socket

import pytest

from support.nodes import not_started

from .conftest import MakeFiles

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
