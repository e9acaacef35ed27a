"""CLI habits (docs/management.md "CLI"): update keeps what is not given, activating the active
version is a success with a note, errors name flags, every command and option explains itself
with examples, --version, and local token commands."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tomllib

import pytest

from edgeproxy import __version__
from edgeproxy.cli.main import build_parser
from edgeproxy.node.main import NODE_COMMANDS

from .conftest import AdminServer, Cli, Pki


def test_versions_update_keeps_the_fields_not_given(cli: Cli, pki: Pki) -> None:
    assert cli("ca-sets", "create", "partners").code == 0
    created = cli(
        "versions", "create", "partners", pki.path("bundle.pem"),
        "--description", "Q1 partners", "--cert-description", "from the partner portal",
        "--allow-insecure-sha1",
    )  # fmt: skip
    assert created.code == 0, created.err
    # Only the description changes: certificates, their descriptions and the flag stay.
    renamed = cli("versions", "update", "partners", "1", "--description", "Q2 partners", "--json")
    assert renamed.code == 0, renamed.err
    version = json.loads(renamed.out)
    assert version["description"] == "Q2 partners"
    assert version["allowInsecureSha1"] is True
    assert len(version["certificates"]) == 3
    assert {c["description"] for c in version["certificates"]} == {"from the partner portal"}
    # New files: the description stays, and a certificate already there keeps its own.
    replaced = cli("versions", "update", "partners", "1", pki.path("bundle.pem"), "--json")
    assert replaced.code == 0, replaced.err
    version = json.loads(replaced.out)
    assert version["description"] == "Q2 partners"
    assert {c["description"] for c in version["certificates"]} == {"from the partner portal"}
    off = cli("versions", "update", "partners", "1", "--no-allow-insecure-sha1", "--json")
    assert json.loads(off.out)["allowInsecureSha1"] is False


def test_activating_the_active_version_is_a_success_with_a_note(cli: Cli, pki: Pki) -> None:
    assert cli("ca-sets", "create", "partners").code == 0
    assert cli("versions", "create", "partners", pki.path("bundle.pem")).code == 0
    assert cli("activate", "partners", "1", "--network", "STAGING").code == 0
    again = cli("activate", "partners", "1", "--network", "STAGING")
    assert again.code == 0, again.err
    assert again.out.strip() == "note: version 1 is already active on STAGING; nothing to do"
    strict = cli("activate", "partners", "1", "--network", "STAGING", "--strict")
    assert strict.code == 1
    assert strict.err.startswith("error: 409 version-already-active: ")


def test_errors_name_the_cli_flag(cli: Cli, pki: Pki, server: AdminServer) -> None:
    assert cli("ca-sets", "create", "partners").code == 0
    assert cli("versions", "create", "partners", pki.path("bundle.pem")).code == 0
    assert cli("activate", "partners", "1", "--network", "STAGING").code == 0
    server.run(server.report("edge-a"))
    refused = cli("deactivate", "partners", "1", "--network", "STAGING")
    assert refused.code == 1
    assert "--force" in refused.err
    assert "force=true" not in refused.err


def _commands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((name, sub))
                found += [(f"{name} {n}", s) for n, s in _commands(sub)]
    return found


def test_every_command_and_option_has_a_help_line_and_examples() -> None:
    parser = build_parser(NODE_COMMANDS)
    commands = _commands(parser)
    assert len(commands) > 30
    for name, sub in commands:
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            if action.help == argparse.SUPPRESS:
                continue
            assert action.help, f"`edgeproxy {name}` {action.option_strings or action.dest}"
        leaf = not any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
        if leaf:
            examples = sub.format_help().partition("\nexamples:\n  ")[2]
            assert "edgeproxy " in examples, name


def test_version(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    result = cli("--version")
    assert (result.code, result.out.strip()) == (0, f"edgeproxy {__version__}")


def test_token_new_prints_a_token_and_its_config_line(cli: Cli) -> None:
    result = cli("token", "new", "--name", "ci", "--role", "editor")
    assert result.code == 0
    token = result.out.strip()
    assert len(token) >= 43
    line = result.err.removeprefix("# for [admin] tokens: ").strip().rstrip(",")
    entry = tomllib.loads(f"t = {line}")["t"]
    assert entry == {
        "name": "ci",
        "role": "editor",
        "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
    }
    assert cli("token", "new").out.strip() != token


def test_token_hash_reads_stdin(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("dev-admin-token\n"))
    result = cli("token", "hash")
    assert result.code == 0
    # The demo config's hash of the README's demo token.
    assert result.out.strip() == (
        "1734d503f6aa6a047c36d113cbad769f719c93784b469b771c4c3e7c63adbefd"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    empty = cli("token", "hash")
    assert (empty.code, empty.err.startswith("error: no token on stdin")) == (2, True)
