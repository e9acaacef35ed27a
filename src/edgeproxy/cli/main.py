"""`edgeproxy`: operate CA sets through the admin API (the node commands come from `node.main`).

Exit status: 0 done · 1 the API refused, validation found errors, or an activation/deletion failed
or timed out · 2 usage, config or local input error (a private key in an upload is refused here,
before anything is sent) · 3 the admin API cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from edgeproxy import __version__
from edgeproxy.cli import blocks as cli_blocks
from edgeproxy.cli import client as api
from edgeproxy.cli import crls as cli_crls
from edgeproxy.cli import edge as cli_edge
from edgeproxy.cli import examples, safety
from edgeproxy.cli import format as fmt
from edgeproxy.cli import rules as cli_rules
from edgeproxy.cli import tokens as cli_tokens
from edgeproxy.cli import versions as cli_versions
from edgeproxy.cli.client import AdminClient, ApiError, CliError
from edgeproxy.cli.session import Session
from edgeproxy.domain.model import CertificateStatus

# name, handler, help, and the command's options beyond -c/--config (flag, argparse keywords)
NodeCommand = tuple[str, Callable[[argparse.Namespace], int], str, list[tuple[str, dict[str, Any]]]]

NETWORKS = ("STAGING", "PRODUCTION")


# -- operator commands -------------------------------------------------------------------------


def _get(path: str, human: Callable[[Any], str]) -> Callable[[Session], int]:
    """A read command: GET `path` ({id}: the resolved CA set, {v}: the version) and show it."""

    def command(s: Session) -> int:
        set_id = s.set_id() if "{id}" in path else 0
        s.emit(s.client.get(path.format(id=set_id, v=getattr(s.args, "version", 0))), human)
        return 0

    return command


def cmd_sets_list(s: Session) -> int:
    query = {"caSetNamePrefix": s.args.prefix, "activatedOn": s.args.activated_on}
    s.emit(s.client.get("/ca-sets", {k: v for k, v in query.items() if v}), fmt.ca_sets)
    return 0


def cmd_sets_create(s: Session) -> int:
    body = {"caSetName": s.args.name, "description": s.args.description}
    s.emit(s.client.call("POST", "/ca-sets", body={k: v for k, v in body.items() if v}), fmt.ca_set)
    return 0


def cmd_sets_delete(s: Session) -> int:
    set_id = s.set_id()
    state = s.client.call("DELETE", f"/ca-sets/{set_id}")
    if not s.args.wait:
        s.emit(state, fmt.delete_status)
        return 0
    return _follow(s, state, lambda: s.client.get(f"/ca-sets/{set_id}/status/delete"), "status")


def _follow(s: Session, first: Any, fetch: Callable[[], Any], status_key: str) -> int:
    """Poll an asynchronous operation, one progress line per change; exit 0 only on COMPLETE."""

    def show(state: Any) -> None:
        s.note(fmt.progress(state, status_key))

    final = api.wait_for(first, fetch, status_key=status_key, interval=s.args.poll_interval,
                         timeout=s.args.timeout, on_change=show)  # fmt: skip
    if s.json:
        s.emit(final, str)
    _warn(final.get("warnings", []))
    status = final.get(status_key)
    if status == "COMPLETE":
        return 0
    what, follow = f"activation {final.get('activationId')}", "activations"
    if status_key == "status":
        what, follow = "the deletion", "ca-sets show"
    if status == "FAILED":
        raise CliError(f"{what} failed: {final.get('failureReason') or 'no reason given'}")
    raise CliError(
        f"{what} is still {fmt.progress(final, status_key)} after {s.args.timeout:g}s; "
        f"follow it with `edgeproxy {follow} {s.args.set}`"
    )


def _warn(warnings: list[Any]) -> None:
    for line in fmt.issue_lines(warnings, "warning"):
        print(line, file=sys.stderr)


def _upload(s: Session) -> dict[str, Any]:
    """The version body of the PEM files named on the command line (each block its own entry)."""
    s.sources = api.read_certificate_files(s.args.files)
    return api.version_body(
        s.sources,
        allow_insecure_sha1=s.args.allow_insecure_sha1,
        require_root_certificate=s.args.require_root_certificate,
        description=getattr(s.args, "description", None),
        certificate_description=getattr(s.args, "cert_description", None),
    )


def cmd_versions_create(s: Session) -> int:
    """create, update and clone: each answers with the version it made or changed."""
    body = _upload(s) if s.args.command != "clone" else None  # files first: refuse keys early
    path = f"/ca-sets/{s.set_id()}/versions"
    if s.args.command == "create":
        s.emit(s.client.call("POST", path, body=body), fmt.version)
    elif s.args.command == "update":
        s.emit(s.client.call("PUT", f"{path}/{s.args.version}", body=body), fmt.version)
    else:
        s.emit(s.client.call("POST", f"{path}/{s.args.version}/clone"), fmt.version)
    return 0


def cmd_versions_delete(s: Session) -> int:
    s.client.call("DELETE", s.version_path())  # 204: nothing to print under --json
    if not s.json:
        print(f"deleted version {s.args.version} of CA set {s.args.set}")
    return 0


def cmd_certificates(s: Session) -> int:
    wanted = {
        CertificateStatus.EXPIRING: s.args.expiring,
        CertificateStatus.EXPIRED: s.args.expired,
    }
    query = {"certificateStatus": ",".join(k for k, on in wanted.items() if on)}
    query["expiryThresholdInDays"] = "" if s.args.days is None else str(s.args.days)
    path = f"{s.version_path()}/certificates"
    s.emit(s.client.get(path, {k: v for k, v in query.items() if v}), fmt.certificates)
    return 0


def cmd_validate(s: Session) -> int:
    try:
        doc = s.client.call("POST", "/certificates/validate", body=_upload(s))
    except ApiError as error:
        # 400 certificate-validation-failure carries the whole report: print it as a report.
        if error.type != "certificate-validation-failure" or error.problem is None:
            raise
        problem = error.problem
        doc = {k: problem.get(k, []) for k in ("valid", "certificates", "errors", "warnings")}
        doc["errors"] = [{**e, "type": api.slug(e["type"])} for e in doc["errors"]]
    s.emit(doc, lambda d: fmt.validation(d, s.sources))
    return 1 if doc.get("errors") else 0


def cmd_activate(s: Session) -> int:
    base = s.version_path()
    body = {"network": s.args.network, "force": getattr(s.args, "force", False) or None}
    body = {k: v for k, v in body.items() if v}
    path = f"{base}/{s.args.command}"
    if s.args.command == "activate":
        safety.impact_note(s)
        try:
            doc = safety.acknowledged_call(s, "POST", path, body, f"version {s.args.version}")
        except ApiError as error:
            # Activating the version already active is what the caller wanted: a success with
            # a note (scripts can run it again), unless --strict asks for the API's 409.
            if error.type != "version-already-active" or s.args.strict:
                raise
            s.note(f"note: version {s.args.version} is already active on {s.args.network}; "
                   "nothing to do")  # fmt: skip
            return 0
    else:
        doc = s.client.call("POST", path, body=body)
    return _started(s, doc, base)


def _started(s: Session, doc: Any, base: str) -> int:
    """An activation the API accepted: its warnings, then it, or its progress with --wait."""
    _warn(doc.get("validation", {}).get("warnings", []))
    if not s.args.wait:
        _warn(doc.get("warnings", []))  # how it converges: no node to wait for, nodes lost
        s.emit(doc, fmt.activation)
        return 0
    s.note(fmt.activation(doc, status=False))
    link = f"{base}/activations/{doc['activationId']}"
    return _follow(s, doc, lambda: s.client.get(link), "activationStatus")


def cmd_nodes_forget(s: Session) -> int:
    doc = s.client.call("DELETE", f"/nodes/{urllib.parse.quote(s.args.name, safe='')}")
    s.emit(doc, fmt.forgotten)
    return 0


# -- the parser --------------------------------------------------------------------------------

Options = list[tuple[str, dict[str, Any]]]
_GLOBAL: Options = [
    ("--admin-url", {"help": f"admin API URL (env EDGEPROXY_ADMIN_URL; {api.DEFAULT_ADMIN_URL})"}),
    ("--token", {"help": "bearer token (better: env EDGEPROXY_TOKEN; argv is visible to all)"}),
    ("--json", {"action": "store_true", "help": "print the API's JSON instead of tables"}),
    ("--cacert", {"help": "PEM file of the CA that issued an https admin API's certificate"}),
    ("--request-timeout", {"type": float, "help": "seconds to wait for each answer (10)"}),
]


def _days(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError("must be a whole number of days")
    return int(value)


_CERT: Options = [
    ("--allow-insecure-sha1", {"action": "store_true", "help": "accept SHA-1 signed CAs"}),
    ("--require-root-certificate", {"action": "store_true",
                                    "help": "every CA must chain to a self-signed root given"}),
]  # fmt: skip
_BUNDLES: dict[str, Options] = {
    "list": [("--prefix", {"help": "only names starting so"}),
             ("--activated-on", {"type": str.upper, "choices": NETWORKS,
                                 "help": "only sets with a version active on this network"})],
    "describe": [("--description", {"help": "the set's description (255 characters at most)"})],
    "update": cli_versions.UPDATE_OPTIONS,
    "strict": [("--strict", {"action": "store_true",
                             "help": "fail (409) when the version is already active there"})],
    "cert": _CERT,
    "version": [*_CERT, ("--description", {"help": "the version's description"}),
                ("--cert-description", {"help": "description of each uploaded certificate"})],
    "expiry": [("--expiring", {"action": "store_true", "help": "only those expiring in --days"}),
               ("--expired", {"action": "store_true", "help": "only expired ones"}),
               ("--days", {"type": _days, "help": "expiry threshold of --expiring (30)"})],
    "network": [("--network", {"type": str.upper, "choices": NETWORKS, "required": True,
                               "help": "STAGING or PRODUCTION"})],
    "force": [("--force", {"action": "store_true", "help": "even while live nodes bind the set"})],
    "wait": [("--wait", {"action": "store_true", "help": "poll until COMPLETE or FAILED"}),
             ("--timeout", {"type": float, "default": 300.0, "help": "seconds to wait (300)"}),
             ("--poll-interval", {"type": float, "default": 0.5, "help": argparse.SUPPRESS})],
}  # fmt: skip
_POSITIONALS: dict[str, dict[str, Any]] = {
    "name": {"metavar": "NAME", "help": "the name (a CA set's is final; a node's as registered)"},
    "set": {"metavar": "SET", "help": "CA set id or name (name:NAME for an all-digit name)"},
    "version": {"metavar": "V", "type": int, "help": "version number within the set"},
    "files": {"metavar": "PEM_FILE", "nargs": "+", "help": "PEM file(s), one or more certificates"},
    "files_opt": {
        "metavar": "PEM_FILE",
        "nargs": "*",
        "help": "PEM file(s) replacing the certificates (none: keep them)",
    },
}
# group, command, handler, help, positionals, option bundles
_COMMANDS: list[tuple[str, str, Callable[[Session], int], str, str, str]] = [
    ("ca-sets", "list", cmd_sets_list, "list CA sets", "", "list"),
    ("ca-sets", "create", cmd_sets_create, "create a CA set (name is final)", "name", "describe"),
    ("ca-sets", "show", _get("/ca-sets/{id}", fmt.ca_set), "show a CA set", "set", ""),
    ("ca-sets", "delete", cmd_sets_delete, "delete a CA set (asynchronous)", "set", "wait"),
    ("ca-sets", "activities", _get("/ca-sets/{id}/activities", fmt.activities),
     "a CA set's history, newest first", "set", ""),
    ("ca-sets", "associations", _get("/ca-sets/{id}/associations", fmt.associations),
     "edge certificates that bind a CA set", "set", ""),
    ("versions", "list", _get("/ca-sets/{id}/versions", fmt.versions), "list versions", "set", ""),
    ("versions", "show", _get("/ca-sets/{id}/versions/{v}", fmt.version), "show a version",
     "set version", ""),
    ("versions", "create", cmd_versions_create, "create a version from PEM files (bundles ok)",
     "set files", "version"),
    ("versions", "update", cli_versions.cmd_versions_update,
     "change an editable version; what is not given is kept", "set version files_opt", "update"),
    ("versions", "delete", cmd_versions_delete, "delete an editable version", "set version", ""),
    ("versions", "clone", cmd_versions_create, "copy a version into a new editable one",
     "set version", ""),
    ("versions", "certificates", cmd_certificates, "list a version's certificates",
     "set version", "expiry"),
    ("", "validate", cmd_validate, "validate PEM files; nothing is stored", "files", "cert"),
    ("", "activate", cmd_activate,
     "make a version active on a network (already active: a success with a note)", "set version",
     "network yes strict wait"),
    ("", "deactivate", cmd_activate, "remove a version from a network", "set version",
     "network force wait"),
    ("", "rollback", lambda s: safety.cmd_rollback(s, _started),
     "activate again the version active before the current one", "set", "network yes wait"),
    ("", "activations", _get("/ca-sets/{id}/activations", fmt.activations),
     "a CA set's activations", "set", ""),
    ("nodes", "list", _get("/nodes", fmt.nodes), "registered nodes of the fleet (the default)",
     "", ""),
    ("nodes", "forget", cmd_nodes_forget,
     "forget a node gone for good: changes in flight stop waiting for it (and its workers)",
     "name", ""),
]  # fmt: skip
for _part in (cli_crls, cli_blocks, cli_edge, safety, cli_tokens, cli_rules):
    _COMMANDS += _part.COMMANDS
    _POSITIONALS.update(_part.POSITIONALS)
    _BUNDLES.update(_part.BUNDLES)


def build_parser(node_commands: Sequence[NodeCommand] = ()) -> argparse.ArgumentParser:
    # SUPPRESS defaults let global options go before or after the subcommand without one level
    # overwriting the other; the environment and built-in defaults are applied after parsing.
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("admin API options")
    for flag, kwargs in _GLOBAL:
        group.add_argument(flag, default=argparse.SUPPRESS, **kwargs)
    parser = argparse.ArgumentParser(
        prog="edgeproxy", description=__doc__, parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"edgeproxy {__version__}")
    top = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for name, handler, text, options in node_commands:
        p = top.add_parser(
            name,
            help=text,
            description=text,
            epilog=examples.of("", name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("-c", "--config", required=True, help="node config file (TOML)")
        for flag, kwargs in options:
            p.add_argument(flag, **kwargs)
        p.set_defaults(node_handler=handler)
    groups = {
        "": top,
        "ca-sets": top.add_parser("ca-sets", help="CA sets").add_subparsers(required=True),
        "versions": top.add_parser("versions", help="CA set versions").add_subparsers(
            required=True
        ),
        "crls": top.add_parser("crls", help="CA set CRLs").add_subparsers(required=True),
        "nodes": _nodes_group(top, common),
        "edge-certs": top.add_parser("edge-certs", help="edge certificates").add_subparsers(
            required=True
        ),
        "token": top.add_parser(
            "token", help="make an admin API token, or hash one, for [admin] tokens"
        ).add_subparsers(required=True),
        "rules": top.add_parser("rules", help="authorization rules of a binding").add_subparsers(
            required=True
        ),
    }
    for group_name, name, command, text, positionals, bundles in _COMMANDS:
        p = groups[group_name].add_parser(
            name,
            help=text,
            description=text,
            parents=[common],
            epilog=examples.of(group_name, name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(handler=command, command=name)
        for positional in positionals.split():
            p.add_argument(positional, **_POSITIONALS[positional])
        for bundle in bundles.split():
            for flag, kwargs in _BUNDLES[bundle]:
                p.add_argument(flag, **kwargs)
    return parser


def _nodes_group(top: Any, common: argparse.ArgumentParser) -> Any:
    """`edgeproxy nodes` lists the nodes, as before `nodes list` and `nodes forget` existed."""
    text = "registered nodes of the fleet; `nodes forget NAME` forgets one"
    nodes = top.add_parser("nodes", help=text, description=text, parents=[common])
    nodes.set_defaults(handler=_get("/nodes", fmt.nodes), command="nodes")
    return nodes.add_subparsers(required=False, metavar="{list,forget}")


def main(argv: Sequence[str] | None = None, node_commands: Sequence[NodeCommand] = ()) -> int:
    """Run one command; `node_commands` (serve, check-config) are added by the executable."""
    parser = build_parser(node_commands)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else 2
    session: Session | None = None
    try:
        if hasattr(args, "node_handler"):
            return int(args.node_handler(args))
        url = getattr(args, "admin_url", None) or os.environ.get("EDGEPROXY_ADMIN_URL")
        token = getattr(args, "token", None) or os.environ.get("EDGEPROXY_TOKEN")
        timeout = getattr(args, "request_timeout", 10.0)
        cacert = getattr(args, "cacert", None)
        client = AdminClient(url or api.DEFAULT_ADMIN_URL, token, cacert=cacert, timeout=timeout)
        session = Session(client, args, json=getattr(args, "json", False))
        return args.handler(session)
    except ApiError as error:
        assert session is not None
        if session.json and error.problem is not None:
            print(json.dumps(error.problem, indent=2))
        has_token = session.client.has_token
        lines = fmt.problem_lines(error, has_token=has_token, sources=session.sources)
        print("\n".join(lines), file=sys.stderr)
        return error.exit_code
    except CliError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `edgeproxy ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
