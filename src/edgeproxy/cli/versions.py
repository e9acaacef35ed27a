"""`edgeproxy versions update`: change an editable version, keeping what the command line does
not name (docs/management.md "Versions").

The API's PUT replaces the whole version; the CLI reads the version first and sends back every
field not given: its description, its two flags, and, without PEM files, its certificates (each
with its description); with files, a certificate already in the version keeps its description.
"""

from __future__ import annotations

import argparse
from typing import Any

from edgeproxy.cli import client as api
from edgeproxy.cli import format as fmt
from edgeproxy.cli.session import Session


def _given(args: argparse.Namespace, name: str, current: Any) -> Any:
    value = getattr(args, name, None)
    return current if value is None else value


def cmd_versions_update(s: Session) -> int:
    if s.args.files_opt:  # files first: a private key is refused before anything is sent
        s.sources = api.read_certificate_files(s.args.files_opt)
    path = s.version_path()
    current = s.client.get(path)
    known = {c["fingerprint"]: c.get("description") for c in current.get("certificates", [])}
    if s.args.files_opt:
        entries = [
            {"certificatePem": src.pem, "description": known.get(src.fingerprint or "")}
            for src in s.sources
        ]
    else:
        entries = [
            {"certificatePem": c["certificatePem"], "description": c.get("description")}
            for c in current.get("certificates", [])
        ]
    if s.args.cert_description is not None:
        entries = [{**e, "description": s.args.cert_description} for e in entries]
    body = {
        "description": _given(s.args, "description", current.get("description")),
        "allowInsecureSha1": _given(
            s.args, "allow_insecure_sha1", current.get("allowInsecureSha1", False)
        ),
        "requireRootCertificate": _given(
            s.args, "require_root_certificate", current.get("requireRootCertificate", False)
        ),
        "certificates": [{k: v for k, v in e.items() if v is not None} for e in entries],
    }
    s.emit(
        s.client.call("PUT", path, body={k: v for k, v in body.items() if v is not None}),
        fmt.version,
    )
    return 0


UPDATE_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("--description", {"help": "the version's new description (kept when not given)"}),
    ("--cert-description", {"help": "description of every certificate (kept when not given)"}),
    (
        "--allow-insecure-sha1",
        {
            "action": argparse.BooleanOptionalAction,
            "default": None,
            "help": "accept SHA-1 signed CAs (kept when not given)",
        },
    ),
    (
        "--require-root-certificate",
        {
            "action": argparse.BooleanOptionalAction,
            "default": None,
            "help": "every CA must chain to a self-signed root given (kept when not given)",
        },
    ),
]
