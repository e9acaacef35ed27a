"""`edgeproxy edge-certs …`, `bind`, `unbind`: edge certificates and their mutual-authentication
bindings (docs/management.md "Edge certificates", docs/api.md "/edge/v1")."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from edgeproxy.cli import client as api
from edgeproxy.cli import format as fmt
from edgeproxy.cli.client import EDGE_PATH, CliError
from edgeproxy.cli.session import Session

CERTS = f"{EDGE_PATH}/edge-certificates"
Row = dict[str, Any]


def _bound(doc: Row, network: str) -> str:
    binding = doc["mutualAuthentication"].get(network)
    return binding["caSetName"] if binding else "-"


def edge_certificates(doc: Row) -> str:
    rows = [
        {
            "name": c["name"],
            "source": c["source"],
            "hostnames": ",".join(c["hostnames"]),
            "expires": (c["certificate"] or {}).get("endDate") or "-",
            "staging": _bound(c, "STAGING"),
            "production": _bound(c, "PRODUCTION"),
        }
        for c in doc["edgeCertificates"]
    ]
    return fmt.table(
        rows,
        fmt.columns(
            "NAME=name SOURCE=source HOSTNAMES=hostnames EXPIRES=expires STAGING=staging "
            "PRODUCTION=production"
        ),
        "no edge certificates",
    )


def edge_certificate(doc: Row) -> str:
    leaf = doc.get("certificate") or {}
    text = fmt.block(
        [
            ("name", doc["name"]),
            ("source", doc["source"]),
            ("hostnames", ", ".join(doc["hostnames"])),
            ("origin", doc["origin"]),
            ("default", doc["default"]),
            ("alpn", ", ".join(doc["alpn"]) if doc.get("alpn") else None),
            ("subject", leaf.get("subject")),
            ("expires", leaf.get("endDate")),
            ("fingerprint", leaf.get("fingerprint")),
            ("generation", doc["generation"]),
            ("staging", _bound(doc, "STAGING")),
            ("production", _bound(doc, "PRODUCTION")),
            ("nodes", ", ".join(doc["nodes"]) or "-"),
        ]
    )
    lines = fmt.issue_lines(doc.get("warnings", []), "warning")
    return "\n".join([text, *lines])


def change(doc: Row) -> str:
    parts = [f"binding change {doc['changeId']}: {doc['changeType']} {doc['edgeCertificate']}"]
    parts.append(f"on {doc['network']} ({doc['caSetName']}): {doc['status']}")
    for key in ("appliedNodes", "pendingNodes", "failedNodes", "lostNodes"):
        if doc[key]:
            parts.append(f"{key.removesuffix('Nodes')}: {', '.join(doc[key])}")
    if doc.get("failureReason"):
        parts.append(f"reason: {doc['failureReason']}")
    return "; ".join(parts)


def _files(s: Session) -> dict[str, str]:
    chain, key = api.read_server_files(s.args.cert, s.args.key)
    return {"certificateChainPem": chain, "privateKeyPem": key}


def _alpn(text: str) -> list[str]:
    """`--alpn h2,http/1.1`: the protocols in the server's order of preference (the API checks
    them; blanks around commas are dropped)."""
    return [p.strip() for p in text.split(",") if p.strip()]


def cmd_list(s: Session) -> int:
    s.emit(s.client.get(CERTS), edge_certificates)
    return 0


def cmd_show(s: Session) -> int:
    s.emit(s.client.get(f"{CERTS}/{s.args.name}"), edge_certificate)
    return 0


def cmd_create(s: Session) -> int:
    if not s.args.hostname or not s.args.origin:
        raise CliError("create needs --hostname (one or more) and --origin", exit_code=2)
    body = {
        "name": s.args.name,
        "hostnames": s.args.hostname,
        "origin": s.args.origin,
        "default": bool(s.args.default),
        **({"alpn": s.args.alpn} if s.args.alpn is not None else {}),
        **_files(s),
    }
    s.emit(s.client.call("POST", CERTS, body=body), edge_certificate)
    return 0


def cmd_update(s: Session) -> int:
    body = {
        "hostnames": s.args.hostname,
        "origin": s.args.origin,
        "default": s.args.default,
        "alpn": s.args.alpn,
    }
    path = f"{CERTS}/{s.args.name}"
    doc = s.client.call("PATCH", path, body={k: v for k, v in body.items() if v is not None})
    s.emit(doc, edge_certificate)
    return 0


def cmd_rotate(s: Session) -> int:
    doc = s.client.call("PUT", f"{CERTS}/{s.args.name}/certificate", body=_files(s))
    s.emit(doc, edge_certificate)
    return 0


def cmd_delete(s: Session) -> int:
    s.client.call("DELETE", f"{CERTS}/{s.args.name}")
    if not s.json:
        print(f"deleted edge certificate {s.args.name}")
    return 0


def _follow(s: Session, doc: Row) -> int:
    for line in fmt.issue_lines(doc.get("warnings", []), "warning"):
        print(line, file=sys.stderr)
    if not s.args.wait:
        s.emit(doc, change)
        return 0
    if doc["status"] == "IN_PROGRESS":
        s.note(f"waiting for {', '.join(doc['pendingNodes'])}")
    final = api.wait_for(
        doc,
        lambda: s.client.get(doc["changeLink"]),
        status_key="status",
        interval=s.args.poll_interval,
        timeout=s.args.timeout,
        on_change=lambda state: s.note(change(state)),
    )
    if s.json:
        s.emit(final, str)
    if final["status"] == "COMPLETE":
        return 0
    if final["status"] == "FAILED":
        raise CliError(f"binding change {final['changeId']} failed: {final['failureReason']}")
    raise CliError(
        f"binding change {final['changeId']} is still IN_PROGRESS after {s.args.timeout:g}s; "
        f"waiting for {', '.join(final['pendingNodes'])}"
    )


def cmd_bind(s: Session) -> int:
    a = s.args
    body: Row = {"caSetName": a.ca_set, "mode": a.mode, "onFailure": a.on_failure}
    body["sendCaListToClient"] = a.send_ca_list
    if a.identity_header:
        body["identityHeaders"] = a.identity_header
    if a.verify_depth is not None:
        body["verifyDepth"] = a.verify_depth
    if a.ocsp or a.ocsp_responder or a.ocsp_check_intermediates:
        body["ocsp"] = {
            "enabled": True,
            "failureMode": a.ocsp_failure_mode,
            "responder": a.ocsp_responder,
            "checkIntermediates": a.ocsp_check_intermediates,
        }
    path = f"{CERTS}/{a.cert}/mutual-authentication/{a.network}"
    return _follow(s, s.client.call("PUT", path, body=body))


def cmd_unbind(s: Session) -> int:
    path = f"{CERTS}/{s.args.cert}/mutual-authentication/{s.args.network}"
    return _follow(s, s.client.call("DELETE", path))


Options = list[tuple[str, dict[str, Any]]]
POSITIONALS: dict[str, dict[str, Any]] = {
    "cert": {"metavar": "CERT", "help": "the edge certificate's name"},
}
BUNDLES: dict[str, Options] = {
    "edge": [
        ("--hostname", {"action": "append", "help": "a host name it serves (repeat for more)"}),
        ("--origin", {"help": "where requests go: http://host:port or h2c://host:port (HTTP/2)"}),
        ("--default", {"action": argparse.BooleanOptionalAction, "default": None,
                       "help": "served when SNI is absent or unknown (--no-default: not)"}),
        ("--alpn", {"type": _alpn, "metavar": "PROTOCOLS",
                    "help": "ALPN protocols, preferred first: h2,http/1.1 (default), http/1.1 "
                            "or h2"}),
    ],
    "files": [
        ("--cert", {"required": True, "help": "PEM file: the server chain, leaf first"}),
        ("--key", {"required": True, "help": "PEM file: its private key (never printed)"}),
    ],
    "binding": [
        ("--ca-set", {"required": True, "help": "CA set name, active on the network"}),
        ("--mode", {"choices": ("require", "request"), "default": "require",
                    "help": "require: no valid certificate, no handshake (require)"}),
        ("--on-failure", {"choices": ("deny", "forward"), "default": "deny",
                          "help": "request mode: deny (403) or forward the verdict (deny)"}),
        ("--send-ca-list", {"action": "store_true", "help": "list the CAs to clients"}),
        ("--identity-header", {"action": "append", "choices": ("xfcc", "rfc9440"),
                               "help": "identity header format (repeat for both; xfcc)"}),
        ("--verify-depth", {"type": int, "help": "longest client chain, 1..10 (5)"}),
        ("--ocsp", {"action": "store_true", "help": "check client certificates by OCSP"}),
        ("--ocsp-failure-mode", {"choices": ("soft", "hard"), "default": "soft",
                                 "help": "no OCSP answer: soft lets through, hard refuses"}),
        ("--ocsp-responder", {"help": "OCSP responder URL (default: the certificate's AIA)"}),
        ("--ocsp-check-intermediates", {"action": "store_true",
                                        "help": "also check each intermediate sent"}),
    ],
}  # fmt: skip
COMMANDS: list[tuple[str, str, Callable[[Session], int], str, str, str]] = [
    ("edge-certs", "list", cmd_list, "list edge certificates (store and config)", "", ""),
    ("edge-certs", "show", cmd_show, "show an edge certificate", "name", ""),
    ("edge-certs", "create", cmd_create, "create an edge certificate from PEM files", "name",
     "edge files"),
    ("edge-certs", "update", cmd_update, "change host names, origin, default or ALPN", "name",
     "edge"),
    ("edge-certs", "rotate", cmd_rotate, "replace the chain and key in one change", "name",
     "files"),
    ("edge-certs", "delete", cmd_delete, "delete an edge certificate bound nowhere", "name", ""),
    ("", "bind", cmd_bind, "bind an edge certificate to a CA set on a network", "cert",
     "network binding wait"),
    ("", "unbind", cmd_unbind, "remove an edge certificate's binding on a network", "cert",
     "network wait"),
]  # fmt: skip
