"""`edgeproxy crls …`: a CA set's certificate revocation lists (docs/management.md "CRLs",
docs/api.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeproxy.cli import client as api
from edgeproxy.cli import format as fmt
from edgeproxy.cli.session import Session


def cmd_crls_list(s: Session) -> int:
    s.emit(s.client.get(f"/ca-sets/{s.set_id()}/crls"), fmt.crls)
    return 0


def cmd_crls_add(s: Session) -> int:
    text = api.read_crl_file(s.args.crl_file)  # before anything is sent: refuse a key locally
    body = {"crlPem": text, "description": s.args.description}
    path = f"/ca-sets/{s.set_id()}/crls"
    s.emit(s.client.call("POST", path, body={k: v for k, v in body.items() if v}), fmt.crl)
    return 0


def cmd_crls_delete(s: Session) -> int:
    s.client.call("DELETE", f"/ca-sets/{s.set_id()}/crls/{s.args.crl_id}")  # 204: no body
    if not s.json:
        print(f"deleted CRL {s.args.crl_id} of CA set {s.args.set}")
    return 0


POSITIONALS: dict[str, dict[str, Any]] = {
    "crl_file": {"metavar": "CRL_FILE", "help": "PEM file holding one X509 CRL block"},
    "crl_id": {"metavar": "CRL_ID", "type": int, "help": "the CRL's id (`crls list`)"},
}
BUNDLES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "crl": [("--description", {"help": "the CRL's description"})],
}
# group, command, handler, help, positionals, option bundles (as cli._COMMANDS)
COMMANDS: list[tuple[str, str, Callable[[Session], int], str, str, str]] = [
    ("crls", "list", cmd_crls_list, "list a CA set's CRLs (which are in effect)", "set", ""),
    ("crls", "add", cmd_crls_add, "upload a CRL signed by a CA of the set", "set crl_file", "crl"),
    ("crls", "delete", cmd_crls_delete, "delete a CRL", "set crl_id", ""),
]
