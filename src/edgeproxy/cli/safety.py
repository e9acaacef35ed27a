"""Safe trust changes from the CLI (docs/management.md "Safe trust changes"): `versions impact`,
`versions diff`, `rollback`, and the confirmation `activate` and `rollback` ask for when the
version would refuse clients the nodes saw."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from edgeproxy.cli import format as fmt
from edgeproxy.cli.client import ApiError, CliError
from edgeproxy.cli.session import Session

REFUSES = "activation-would-refuse-clients"

_CLIENTS = fmt.columns(
    "SHA256=fingerprintSha256 SUBJECT=subject ISSUER=issuer REASON=reason LAST_SEEN=lastSeen "
    "HANDSHAKES=handshakes REQUESTS=requests NODES=nodes"
)
_CERTS = fmt.columns("SHA256=fingerprint SUBJECT=subject")


def clients_table(clients: Sequence[fmt.Row]) -> str:
    return fmt.table(clients, _CLIENTS, "none")


def impact(doc: fmt.Row) -> str:
    refused = doc.get("wouldBeRefused", [])
    accepted = doc.get("newlyAccepted", [])
    return "\n".join(
        [
            f"version {doc.get('version')} on {doc.get('network')} (in force: "
            f"{fmt.cell(doc.get('activeVersion'))}): {doc.get('clientsObserved')} client(s) seen",
            f"would be refused ({len(refused)}):",
            clients_table(refused),
            f"newly accepted ({len(accepted)}):",
            clients_table(accepted),
        ]
    )


def diff(doc: fmt.Row) -> str:
    lines = [f"version {doc.get('from')} -> {doc.get('to')}"]
    for key in ("added", "removed", "unchanged"):
        items = doc.get(key, [])
        lines += [f"{key} ({len(items)}):", fmt.table(items, _CERTS, "none")]
    for flag in doc.get("flags", []):
        lines.append(
            f"flag {fmt.cell(flag.get('name'))}: {fmt.cell(flag.get('from'))} -> "
            f"{fmt.cell(flag.get('to'))}"
        )
    return "\n".join(lines)


def cmd_impact(s: Session) -> int:
    doc = s.client.get(f"{s.version_path()}/impact", {"network": s.args.network})
    s.emit(doc, impact)
    return 0


def cmd_diff(s: Session) -> int:
    path = f"/ca-sets/{s.set_id()}/versions/{s.args.to_version}/diff"
    s.emit(s.client.get(path, {"from": str(s.args.from_version)}), diff)
    return 0


def _confirmed(s: Session, refused: list[Any], what: str) -> bool:
    """--yes, or a yes typed at a terminal."""
    s.note(f"{what} would refuse {len(refused)} client(s) seen on {s.args.network}:")
    s.note(clients_table(refused))
    if s.args.yes:
        return True
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{what} anyway? [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def acknowledged_call(s: Session, method: str, path: str, body: dict[str, Any], what: str) -> Any:
    """POST an activation; if it would refuse seen clients, show them and go ahead only once
    confirmed (the second call carries acknowledgeImpact)."""
    try:
        return s.client.call(method, path, body=body)
    except ApiError as error:
        if error.type != REFUSES or error.problem is None:
            raise
        refused = list(error.problem.get("wouldBeRefused") or [])
        if not _confirmed(s, refused, what):
            raise CliError(
                f"nothing changed: {what} would refuse {len(refused)} client(s) seen on "
                f"{s.args.network}; pass --yes to go ahead"
            ) from None
    return s.client.call(method, path, body={**body, "acknowledgeImpact": True})


def impact_note(s: Session) -> None:
    """Before an activation: one line on what it does to the clients seen there (none seen:
    nothing to say)."""
    doc = s.client.get(f"{s.version_path()}/impact", {"network": s.args.network})
    if doc.get("clientsObserved"):
        s.note(
            f"impact on {s.args.network}: {doc.get('clientsObserved')} client(s) seen, "
            f"{len(doc.get('wouldBeRefused', []))} would be refused, "
            f"{len(doc.get('newlyAccepted', []))} newly accepted"
        )


def cmd_rollback(s: Session, follow: Callable[[Session, Any, str], int]) -> int:
    set_id = s.set_id()
    doc = acknowledged_call(
        s, "POST", f"/ca-sets/{set_id}/rollback", {"network": s.args.network}, "rolling back"
    )
    return follow(s, doc, f"/ca-sets/{set_id}/versions/{doc['version']}")


POSITIONALS: dict[str, dict[str, Any]] = {
    "from_version": {"metavar": "A", "type": int, "help": "the version to compare with"},
    "to_version": {"metavar": "B", "type": int, "help": "the version compared"},
}
# group, command, handler, help, positionals, option bundles (as cli._COMMANDS); `rollback` is in
# main.py, which follows the activation it starts.
COMMANDS: list[tuple[str, str, Callable[[Session], int], str, str, str]] = [
    ("versions", "impact", cmd_impact,
     "which clients seen on a network a version would refuse or newly accept", "set version",
     "network"),
    ("versions", "diff", cmd_diff, "certificates added and removed from version A to B",
     "set from_version to_version", ""),
]  # fmt: skip
BUNDLES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "yes": [("--yes", {"action": "store_true", "help": "go ahead although seen clients would "
                                                       "be refused"})],
}  # fmt: skip
