"""The installed `edgeproxy` console script, run as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import ADMIN_TOKEN, AdminServer, Pki, closed_port

SCRIPT = Path(sys.executable).parent / "edgeproxy"


def _run(*argv: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EDGEPROXY_ADMIN_URL": url, "EDGEPROXY_TOKEN": ADMIN_TOKEN}
    return subprocess.run(
        [str(SCRIPT), *argv], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_console_script_drives_the_admin_api(server: AdminServer, pki: Pki) -> None:
    assert _run("ca-sets", "create", "partners", url=server.url).returncode == 0
    created = _run("versions", "create", "partners", pki.path("bundle.pem"), url=server.url)
    assert created.returncode == 0, created.stderr
    listed = _run("--json", "versions", "list", "partners", url=server.url)
    assert [v["version"] for v in json.loads(listed.stdout)["versions"]] == [1]
    assert ADMIN_TOKEN not in listed.stdout + listed.stderr + created.stdout


def test_console_script_exits_3_when_the_api_is_down() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = _run("nodes", url=url)
    assert result.returncode == 3
    assert (
        result.stderr
        == f"error: cannot reach the admin API at {url} (is edgeproxy serve running?)\n"
    )
