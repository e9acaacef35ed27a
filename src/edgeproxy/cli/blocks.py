"""`edgeproxy block|unblock|blocks`: cut off one client certificate of a CA set now, lift the
block, list them (docs/management.md "Blocked certificates", docs/api.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from edgeproxy.cli import client as api
from edgeproxy.cli import format as fmt
from edgeproxy.cli.client import CliError
from edgeproxy.cli.session import Session

_COLUMNS = fmt.columns(
    "ID=blockId SHA256=fingerprintSha256 ISSUER=issuer SERIAL=serialNumber REASON=reason "
    "EXPIRES=expiresAt EXPIRED=expired CREATED=createdDate BY=createdBy"
)


def blocks(doc: fmt.Row) -> str:
    return fmt.table(doc.get("blockedCertificates", []), _COLUMNS, "no blocked certificates")


def blocked(doc: fmt.Row) -> str:
    names = "blockId caSetId fingerprintSha256 issuer serialNumber reason expiresAt expired "
    names += "createdBy createdDate"
    return fmt.block([(name, doc.get(name)) for name in names.split()])


def _certificate(args: Any) -> dict[str, str]:
    """How the command names the certificate: one of --fingerprint, --issuer with --serial, or
    --cert (the certificate file itself: its SHA-256 is computed here)."""
    given = [bool(args.fingerprint), bool(args.issuer or args.serial), bool(args.cert)]
    if sum(given) != 1:
        raise CliError(
            "name the certificate with one of --fingerprint, --issuer and --serial, or --cert",
            exit_code=2,
        )
    if args.fingerprint:
        return {"fingerprintSha256": args.fingerprint}
    if args.cert:
        prints = [s.fingerprint for s in api.read_certificate_files([args.cert]) if s.fingerprint]
        if len(prints) != 1:
            raise CliError(f"{args.cert}: expected exactly one certificate", exit_code=2)
        return {"fingerprintSha256": prints[0]}
    if not (args.issuer and args.serial):
        raise CliError("--issuer and --serial go together", exit_code=2)
    return {"issuer": args.issuer, "serialNumber": args.serial}


def cmd_block(s: Session) -> int:
    body: dict[str, Any] = {**_certificate(s.args), "reason": s.args.reason}
    if s.args.expires:
        body["expiresAt"] = s.args.expires
    path = f"/ca-sets/{s.set_id()}/blocked-certificates"
    s.emit(s.client.call("POST", path, body=body), blocked)
    return 0


def cmd_unblock(s: Session) -> int:
    path = f"/ca-sets/{s.set_id()}/blocked-certificates/{s.args.block_id}"
    s.client.call("DELETE", path)  # 204: no body
    if not s.json:
        print(f"unblocked {s.args.block_id} of CA set {s.args.set}")
    return 0


def cmd_blocks(s: Session) -> int:
    s.emit(s.client.get(f"/ca-sets/{s.set_id()}/blocked-certificates"), blocks)
    return 0


POSITIONALS: dict[str, dict[str, Any]] = {
    "block_id": {"metavar": "BLOCK_ID", "type": int, "help": "the block's id (`blocks SET`)"},
}
BUNDLES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "block": [
        ("--fingerprint", {"help": "the certificate's SHA-256 fingerprint (hex)"}),
        ("--issuer", {"help": 'its issuer DN, RFC 4514 ("CN=Partner CA,O=Example")'}),
        ("--serial", {"help": "its serial number in hex (with --issuer)"}),
        ("--cert", {"metavar": "PEM_FILE", "help": "the certificate file itself"}),
        ("--reason", {"required": True, "help": "why (recorded and shown)"}),
        ("--expires", {"metavar": "DATE", "help": "when the block lapses (RFC 3339)"}),
    ],
}
# group, command, handler, help, positionals, option bundles (as cli._COMMANDS)
COMMANDS: list[tuple[str, str, Callable[[Session], int], str, str, str]] = [
    ("", "block", cmd_block, "refuse one client certificate of a CA set now", "set", "block"),
    ("", "unblock", cmd_unblock, "lift a block", "set block_id", ""),
    ("", "blocks", cmd_blocks, "list a CA set's blocked certificates", "set", ""),
]
