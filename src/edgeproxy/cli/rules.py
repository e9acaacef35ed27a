"""`edgeproxy rules show|set|clear CERT --network N`: a store-managed binding's authorization
rules (docs/dataplane.md "Authorization", docs/api.md). `set` reads a TOML file in the config
file's spelling (snake_case keys, as `mutual_authentication.authorization`), checks it here (one
line naming the key at fault, nothing sent), then puts the binding back with the new rules; the
change converges like any binding change (`--wait`)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeproxy.authz.parse import PolicyError, parse_policy
from edgeproxy.cli.client import CliError
from edgeproxy.cli.edge import CERTS, _follow
from edgeproxy.cli.session import Session

# The binding fields a PUT takes back (the GET adds who changed it and its latest change).
_BODY = ("caSetName", "mode", "onFailure", "sendCaListToClient", "identityHeaders", "verifyDepth")


def _path(s: Session) -> str:
    return f"{CERTS}/{s.args.cert}/mutual-authentication/{s.args.network}"


def read_rules(path: str) -> dict[str, Any]:
    """The file's rules as the API's JSON document; CliError (exit 2) on any problem."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise CliError(f"{path}: cannot read: {error.strerror or error}", exit_code=2) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise CliError(f"{path}: not valid TOML: {error}", exit_code=2) from None
    try:
        return parse_policy(data, path="rules", style="toml").document
    except PolicyError as error:
        raise CliError(f"{path}: {error}", exit_code=2) from None


def _put(s: Session, rules: dict[str, Any] | None) -> int:
    current = s.client.get(_path(s))
    body: dict[str, Any] = {k: current[k] for k in _BODY}
    ocsp = current["ocsp"]
    body["ocsp"] = {
        k: ocsp[k] for k in ("enabled", "failureMode", "responder", "checkIntermediates")
    }
    body["authorization"] = rules
    return _follow(s, s.client.call("PUT", _path(s), body=body))


def cmd_rules_show(s: Session) -> int:
    rules = s.client.get(_path(s)).get("authorization")
    if s.json or rules is not None:
        print(json.dumps(rules, indent=2))
    else:
        print(f"no authorization rules on {s.args.cert} ({s.args.network})")
    return 0


def cmd_rules_set(s: Session) -> int:
    return _put(s, read_rules(s.args.file))


def cmd_rules_clear(s: Session) -> int:
    return _put(s, None)


POSITIONALS: dict[str, dict[str, Any]] = {}
BUNDLES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "rules_file": [("--file", {"required": True, "help": "TOML file of the rules (snake_case)"})],
}
# group, command, handler, help, positionals, option bundles (as cli._COMMANDS)
COMMANDS: list[tuple[str, str, Callable[[Session], int], str, str, str]] = [
    ("rules", "show", cmd_rules_show, "a binding's authorization rules", "cert", "network"),
    ("rules", "set", cmd_rules_set, "replace a binding's rules from a TOML file", "cert",
     "network rules_file wait"),
    ("rules", "clear", cmd_rules_clear, "remove a binding's rules", "cert", "network wait"),
]  # fmt: skip
