"""`[log]` in a node process (docs/operations.md "Logs"): lines go to `log.file`, access lines to
`log.access_file`, `access = false` leaves request lines out but never a refused handshake, and
SIGUSR1 reopens both files after logrotate moved them."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from support.nodes import SubprocessNode, poll

from .clients import aget, refused
from .conftest import MakeFiles, StartNode
from .pki import E2ePki

pytestmark = pytest.mark.slow


def lines_of(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_log_files_are_reopened_on_sigusr1(
    pki: E2ePki, node_files: MakeFiles, spawn_node: StartNode
) -> None:
    files = node_files()
    main_log, access_log = files.directory / "edge.log", files.directory / "access.log"
    files.log = {"file": str(main_log), "access_file": str(access_log), "access": False}
    running = await spawn_node(files)
    node = running.node
    assert isinstance(node, SubprocessNode)
    await running.admin.publish([pki.ca_a.pem])
    assert (await aget(pki, running.port, "api.test", pki.alice, "/served")).status == 200
    await refused(pki, running.port, "api.test", pki.bob)

    def messages(path: Path) -> list[str]:
        return [line["message"] for line in lines_of(path)]

    await poll(lambda: "handshake failed" in messages(access_log), "the refusal in access.log")
    assert "node started" in messages(main_log)
    assert "request" not in messages(access_log)  # access = false: no request lines
    assert "handshake failed" not in messages(main_log)  # the access file has its own lines
    assert not node.log_lines()  # nothing on stderr

    main_log.rename(files.directory / "edge.log.1")
    access_log.rename(files.directory / "access.log.1")
    node.send(signal.SIGUSR1)
    await poll(lambda: "log files reopened" in messages(main_log), "a fresh edge.log")
    await refused(pki, running.port, "api.test", pki.expired)
    await poll(lambda: "handshake failed" in messages(access_log), "a fresh access.log")
    [line] = lines_of(access_log)
    assert line["verify_reason"] == "expired"
    assert node.process is not None
    assert node.process.returncode is None
