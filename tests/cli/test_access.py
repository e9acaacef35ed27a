"""Reaching the admin API: tokens and roles, unreachable URLs, TLS, and naming a CA set."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from edgeproxy.node.main import main

from .conftest import ADMIN_TOKEN, VIEWER_TOKEN, AdminServer, Cli, Pki, closed_port


def test_the_right_token_is_accepted(cli: Cli) -> None:
    assert cli("ca-sets", "list", "--token", ADMIN_TOKEN).code == 0


def test_a_wrong_token_is_refused_with_a_hint_and_never_echoed(cli: Cli) -> None:
    result = cli("ca-sets", "list", "--token", "not-the-token-5e1d")
    assert result.code == 1
    assert result.err.splitlines() == [
        "error: 401 invalid-token: the bearer token is not valid",
        "hint: pass a valid admin API token with --token or EDGEPROXY_TOKEN",
    ]
    assert "not-the-token-5e1d" not in result.text
    assert ADMIN_TOKEN not in result.text


def test_a_missing_token_says_how_to_give_one(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGEPROXY_TOKEN")
    result = cli("ca-sets", "list")
    assert result.code == 1
    assert "hint: no token given" in result.err


def test_a_viewer_reads_but_cannot_activate(cli: Cli, pki: Pki) -> None:
    cli("ca-sets", "create", "partners")
    cli("versions", "create", "partners", pki.path("bundle.pem"))
    assert cli("versions", "list", "partners", "--token", VIEWER_TOKEN).code == 0
    refused = cli("activate", "partners", "1", "--network", "STAGING", "--token", VIEWER_TOKEN)
    assert refused.code == 1
    assert refused.err.startswith("error: 403 insufficient-role: this operation needs the admin")
    assert "hint: this token's role is not enough" in refused.err
    assert VIEWER_TOKEN not in refused.text


def test_global_options_go_before_or_after_the_command(cli: Cli, server: AdminServer) -> None:
    before = cli("--admin-url", server.url, "--json", "ca-sets", "list")
    after = cli("ca-sets", "list", "--admin-url", server.url, "--json")
    assert json.loads(before.out) == json.loads(after.out) == {"caSets": []}


def test_an_unreachable_admin_api_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    assert main(["ca-sets", "list", "--admin-url", url, "--token", ADMIN_TOKEN]) == 3
    err = capsys.readouterr().err
    assert err == f"error: cannot reach the admin API at {url} (is edgeproxy serve running?)\n"


def test_a_reachable_admin_api_from_the_environment(cli: Cli) -> None:
    assert cli("nodes").out.strip() == "no nodes have registered"


def test_a_bad_admin_url_is_a_usage_error(cli: Cli) -> None:
    result = cli("ca-sets", "list", "--admin-url", "ftp://127.0.0.1:21")
    assert result.code == 2
    assert "must be an http:// or https:// URL" in result.err


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[AdminServer, Path]]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path / "admin-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = AdminServer(tmp_path / "tls.db", ssl_context=context)
    server.start()
    yield server, ca_file
    server.stop()


def test_https_is_verified_against_cacert(
    tls_server: tuple[AdminServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    server, ca_file = tls_server
    argv = ["ca-sets", "list", "--admin-url", server.url, "--token", ADMIN_TOKEN]
    assert main([*argv, "--cacert", str(ca_file)]) == 0
    assert capsys.readouterr().out.strip() == "no CA sets"


def test_https_with_an_unknown_ca_is_refused(
    tls_server: tuple[AdminServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    server, _ = tls_server
    assert main(["ca-sets", "list", "--admin-url", server.url, "--token", ADMIN_TOKEN]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"error: TLS verification of the admin API at {server.url} failed")
    assert "--cacert" in err


# -- naming a CA set ---------------------------------------------------------------------------


def test_a_set_is_found_by_name_by_id_and_by_explicit_name(cli: Cli) -> None:
    cli("ca-sets", "create", "partners")
    made = json.loads(cli("ca-sets", "create", "partners-eu", "--json").out)
    cli("ca-sets", "create", "1234")  # an all-digit name is legal
    by_name = json.loads(cli("ca-sets", "show", "partners-eu", "--json").out)
    by_id = json.loads(cli("ca-sets", "show", str(made["caSetId"]), "--json").out)
    assert by_name == by_id
    assert by_name["caSetName"] == "partners-eu"
    prefix_only = json.loads(cli("ca-sets", "show", "partners", "--json").out)
    assert prefix_only["caSetName"] == "partners"  # exact match, not the first with the prefix
    assert json.loads(cli("ca-sets", "show", "name:1234", "--json").out)["caSetName"] == "1234"


def test_an_unknown_set_name_is_a_clear_error(cli: Cli) -> None:
    cli("ca-sets", "create", "partners-eu")
    result = cli("versions", "list", "partners")
    assert result.code == 1
    assert result.err == (
        "error: no CA set named 'partners' (names starting so: partners-eu); "
        "`edgeproxy ca-sets list` shows them\n"
    )
    unknown_id = cli("ca-sets", "show", "99")
    assert unknown_id.code == 1
    assert unknown_id.err.startswith("error: 404 ca-set-not-found: no CA set with id 99")
