"""nghttp2's own clients against the edge: nghttp (one connection, client certificate) and h2load
(many streams over few connections)."""

from __future__ import annotations

import pytest

from support.nodes import EdgeSpec, default_edges
from support.origin import RecordingOrigin

from .clients import run_tool, tool
from .conftest import MakeFiles, StartNode
from .pki import E2ePki

pytestmark = pytest.mark.slow


async def test_nghttp_and_h2load(
    pki: E2ePki, node_files: MakeFiles, start_node: StartNode, origin: RecordingOrigin
) -> None:
    edges = [EdgeSpec("api", ("api.test",), default=True), *default_edges()[1:]]
    running = await start_node(node_files(edges=edges))
    running.set_id, running.version = await running.admin.publish([pki.ca_a.pem])
    port = running.port

    # nghttp sends no SNI to an IP address: the default edge, with :authority set by hand.
    run = await run_tool(
        tool("nghttp", "nghttp2-client"), "--cert", str(pki.alice.cert), "--key",
        str(pki.alice.key), "-H", ":authority: api.test", "--stat", f"https://127.0.0.1:{port}/ng",
    )  # fmt: skip
    assert run.code == 0, run
    assert origin.last("/ng").one("X-Client-Cert-Verify") == "SUCCESS"

    without = await run_tool(
        tool("nghttp", "nghttp2-client"), "-H", ":authority: api.test", f"https://127.0.0.1:{port}/x"
    )  # fmt: skip
    assert "processed=0" in without.stderr, without  # no certificate: refused in the handshake
    assert "/x" not in origin.paths()

    # h2load has no client-certificate option: it loads the `request` + `forward` binding,
    # whose origin is told each request's verify result.
    load = await run_tool(
        tool("h2load", "nghttp2-client"), "-n", "200", "-c", "2", "-m", "10",
        "--connect-to", f"127.0.0.1:{port}", f"https://forward.test:{port}/load",
    )  # fmt: skip
    assert load.code == 0, load
    assert "200 succeeded" in load.stdout, load.stdout
    assert "200 2xx" in load.stdout, load.stdout
    assert origin.paths().count("/load") == 200
    assert origin.last("/load").one("X-Client-Cert-Verify") == "NONE"
