"""`check-config` and `serve`: the config is loaded once, and a bad one stops before anything."""

from __future__ import annotations

import hashlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from edgeproxy.node.main import main

CONFIG = """
[node]
name = "cli-test"
network = "PRODUCTION"
roles = ["admin"]

[store]
url = "sqlite:///var/test.db"

[admin]
listen = "127.0.0.1:0"
tokens = [{ name = "ops", role = "admin", token_sha256 = "%s" }]
""" % ("0" * 64)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def typo_file(tmp_path: Path) -> Path:
    path = tmp_path / "typo.toml"
    path.write_text(CONFIG.replace('network = "PRODUCTION"', 'netwrok = "PRODUCTION"'))
    return path


def test_check_config_summarises_a_good_file(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "-c", str(config_file)]) == 0
    assert capsys.readouterr().out == (
        f"{config_file}: ok: node cli-test, network PRODUCTION, roles admin, "
        "0 edge certificate(s)\n"
    )


def test_check_config_names_the_key_of_a_typo(
    typo_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "--config", str(typo_file)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{typo_file}: error: node.netwrok")


def test_check_config_of_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "-c", str(tmp_path / "absent.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_admin(url: str, process: subprocess.Popen[bytes]) -> None:
    """Poll until the node answers; bounded in count so a broken build fails, not hangs."""
    for _ in range(200):
        if process.poll() is not None:
            raise AssertionError(f"serve exited early with {process.returncode}")
        try:
            urllib.request.urlopen(url + "/openapi.json", timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the admin API never answered")


@pytest.mark.slow
def test_serve_runs_a_node_until_sigterm(tmp_path: Path) -> None:
    token = "serve-test-token"
    admin, status = _free_port(), _free_port()
    config = tmp_path / "node.toml"
    config.write_text(
        CONFIG.replace("0" * 64, hashlib.sha256(token.encode()).hexdigest()).replace(
            "127.0.0.1:0", f"127.0.0.1:{admin}"
        )
        + f'\n[status]\nlisten = "127.0.0.1:{status}"\n'
    )
    url = f"http://127.0.0.1:{admin}"
    process = subprocess.Popen(
        [sys.executable, "-m", "edgeproxy", "serve", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_admin(url, process)
        assert main(["--admin-url", url, "--token", token, "ca-sets", "create", "served"]) == 0
        assert (tmp_path / "var" / "test.db").exists()  # the store path is relative to the file
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert b'"message": "node stopping"' in err
    assert token.encode() not in err


def test_serve_refuses_a_bad_config_before_starting(
    typo_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "-c", str(typo_file)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {typo_file}: node.netwrok")
    assert not (typo_file.parent / "var").exists()  # nothing was created or bound


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["versions", "show", "partners", "one"]) == 2
    assert "invalid int value: 'one'" in capsys.readouterr().err
    assert main(["activate", "partners", "1", "--network", "moon"]) == 2
    assert "invalid choice: 'MOON'" in capsys.readouterr().err
    assert main([]) == 2


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("serve", "check-config", "ca-sets", "versions", "validate", "activate"):
        assert command in out
