"""`edgeproxy rules show|set|clear`: a binding's authorization rules from a TOML file, against a
real admin API; a bad file is refused before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import Cli, Pki
from .test_edge import _server_files

RULES = """
default = "deny"

[[rules]]
path_prefix = "/api/"
methods = ["GET"]
allow = [{ san_uri = "spiffe://example.org/ns/*" }]
"""


def _bound_shop(cli: Cli, pki: Pki, tmp_path: Path) -> None:
    chain, key, _ = _server_files(tmp_path)
    assert cli(
        "edge-certs", "create", "shop", "--hostname", "shop.example.com",
        "--origin", "http://127.0.0.1:8080", "--cert", chain, "--key", key,
    ).code == 0  # fmt: skip
    assert cli("ca-sets", "create", "partners").code == 0
    assert cli("versions", "create", "partners", pki.path("bundle.pem")).code == 0
    assert cli("activate", "partners", "1", "--network", "STAGING").code == 0
    bound = cli("bind", "shop", "--network", "STAGING", "--ca-set", "partners", "--send-ca-list")
    assert bound.code == 0, bound.err


def test_set_show_and_clear_rules(cli: Cli, pki: Pki, tmp_path: Path) -> None:
    _bound_shop(cli, pki, tmp_path)
    net = ("--network", "STAGING")
    assert (
        cli("rules", "show", "shop", *net).out.strip() == "no authorization rules on shop (STAGING)"
    )
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    changed = cli("rules", "set", "shop", *net, "--file", str(rules))
    assert changed.code == 0, changed.err
    shown = json.loads(cli("rules", "show", "shop", *net).out)
    assert shown["rules"][0] == {
        "pathPrefix": "/api/",
        "methods": ["GET"],
        "allow": [{"sanUri": "spiffe://example.org/ns/*"}],
    }
    assert cli("rules", "clear", "shop", *net).code == 0
    assert "no authorization rules" in cli("rules", "show", "shop", *net).out


def test_a_bad_rules_file_is_refused_naming_the_key(cli: Cli, pki: Pki, tmp_path: Path) -> None:
    _bound_shop(cli, pki, tmp_path)
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.replace("san_uri", "sanUri"))
    refused = cli("rules", "set", "shop", "--network", "STAGING", "--file", str(rules))
    assert refused.code == 2
    assert "rules.rules[0].allow[0].sanUri: unknown key" in refused.err
    assert "no authorization rules" in cli("rules", "show", "shop", "--network", "STAGING").out
