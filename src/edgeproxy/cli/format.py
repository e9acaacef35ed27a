"""Human output of the operator CLI: aligned tables, `key: value` blocks, problem lines.

Every value shown comes from the API and may hold operator- or node-supplied text; `cell` keeps it
on one line and escapes control characters so nothing can repaint the operator's terminal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from edgeproxy.cli.client import ApiError, CertificateSource, slug

Row = Mapping[str, Any]
Column = tuple[str, Callable[[Row], Any]]
_ISO = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$")
_POINTER = re.compile(r"^/certificates/(\d+)")


def cell(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    text = " ".join(str(value).split())
    if match := _ISO.match(text):
        text = f"{match[1]} {match[2]}{'Z' if match[3] in ('Z', '+00:00') else match[3]}"
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def key(name: str) -> Callable[[Row], Any]:
    return lambda row: row.get(name)


def table(rows: Sequence[Row], columns: Sequence[Column], empty: str) -> str:
    if not rows:
        return empty
    lines = [[header for header, _ in columns]]
    lines += [[cell(get(row)) for _, get in columns] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def block(pairs: Sequence[tuple[str, Any]]) -> str:
    width = max(len(label) for label, _ in pairs) + 1
    return "\n".join(f"{label + ':':<{width}} {cell(value)}" for label, value in pairs)


def _fields(doc: Row, names: str) -> list[tuple[str, Any]]:
    return [(name, doc.get(name)) for name in names.split()]


def columns(spec: str) -> list[Column]:
    """`"ID=caSetId NAME=caSetName"`: a column per `HEADER=field`."""
    return [(header, key(name)) for header, name in (item.split("=") for item in spec.split())]


def _lister(field: str, spec: str, empty: str) -> Callable[[Row], str]:
    """A formatter for a list answer `{field: [...]}`."""
    chosen = columns(spec)
    return lambda doc: table(doc.get(field, []), chosen, empty)


ca_sets = _lister(
    "caSets",
    "ID=caSetId NAME=caSetName STATUS=caSetStatus LATEST=latestVersion STAGING=stagingVersion "
    "PRODUCTION=productionVersion CREATED=createdDate BY=createdBy DESCRIPTION=description",
    "no CA sets",
)
activities = _lister(
    "activities",
    "DATE=activityDate TYPE=type VERSION=version NETWORK=network BY=activityBy",
    "no activities",
)
associations = _lister(
    "associations",
    "EDGE_CERTIFICATE=edgeCertificate NETWORK=network SOURCE=source HOSTNAMES=hostnames "
    "NODES=nodes",
    "no edge certificate binds this CA set",
)
nodes = _lister(
    "nodes",
    "NAME=name NETWORK=network ROLES=roles LIVE=live LOST=lost LAST_SEEN=lastSeenDate "
    "REVISION=appliedRevision APPLIED=appliedVersions ERRORS=applyErrors",
    "no nodes have registered",
)
activations = _lister(
    "activations",
    "ID=activationId TYPE=activationType VERSION=version NETWORK=network "
    "STATUS=activationStatus PERCENT=percentComplete CREATED=createdDate BY=createdBy "
    "FAILURE=failureReason",
    "no activations",
)
_VERSION_COLUMNS = columns(
    "VERSION=version STAGING=stagingStatus PRODUCTION=productionStatus EDITABLE=editable "
    "CREATED=createdDate BY=createdBy DESCRIPTION=description"
)
_VERSION_COLUMNS.insert(4, ("CERTS", lambda v: len(v.get("certificates", []))))
_CERTIFICATE_COLUMNS = columns(
    "SUBJECT=subject ISSUER=issuer NOT_AFTER=endDate SIGNATURE=signatureAlgorithm "
    "SHA256=fingerprint"
)


def ca_set(doc: Row) -> str:
    names = "caSetId caSetName description caSetStatus latestVersion stagingVersion "
    names += "productionVersion createdBy createdDate"
    text = block(_fields(doc, names + (" deletedBy deletedDate" if doc.get("deletedDate") else "")))
    return _with_warnings(text, doc.get("warnings", []))


def _with_warnings(text: str, warnings: Sequence[Row]) -> str:
    if not warnings:
        return text
    return "\n".join([text, "", "warnings:", _indent("\n".join(issue_lines(warnings, "")))])


crls = _lister(
    "crls",
    "ID=crlId ISSUER=issuer THIS_UPDATE=thisUpdate NEXT_UPDATE=nextUpdate NUMBER=crlNumber "
    "REVOKED=revokedCount EFFECTIVE=effective EXPIRED=expired DESCRIPTION=description",
    "no CRLs",
)


def crl(doc: Row) -> str:
    names = "crlId caSetId issuer issuerFingerprint thisUpdate nextUpdate crlNumber "
    names += "revokedCount fingerprint effective expired description createdBy createdDate"
    return _with_warnings(block(_fields(doc, names)), doc.get("warnings", []))


def delete_status(doc: Row) -> str:
    return block(_fields(doc, "caSetId caSetName status startTime endTime failureReason"))


def versions(doc: Row) -> str:
    return table(doc.get("versions", []), _VERSION_COLUMNS, "no versions yet")


def version(doc: Row) -> str:
    names = "caSetId version description stagingStatus productionStatus editable "
    names += (
        "allowInsecureSha1 requireRootCertificate createdBy createdDate modifiedBy modifiedDate"
    )
    certs = certificates({"certificates": doc.get("certificates", [])})
    parts = [block(_fields(doc, names)), "", "certificates:", _indent(certs)]
    warnings = doc.get("validation", {}).get("warnings", [])
    if warnings:
        parts += ["", "warnings:", _indent("\n".join(issue_lines(warnings, "")))]
    return "\n".join(parts)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def certificates(doc: Row) -> str:
    return table(doc.get("certificates", []), _CERTIFICATE_COLUMNS, "no certificates")


def validation(doc: Row, sources: Sequence[CertificateSource]) -> str:
    errors, warnings = doc.get("errors", []), doc.get("warnings", [])
    certs = doc.get("certificates", [])
    by_fingerprint = {s.fingerprint: s.where for s in sources if s.fingerprint}
    file: Column = ("FILE", lambda c: by_fingerprint.get(c.get("fingerprint", "")))
    lines = [table(certs, [file, *_CERTIFICATE_COLUMNS], "no certificate could be read"), ""]
    lines += issue_lines(errors, "error", sources) + issue_lines(warnings, "warning", sources)
    verdict = "invalid" if errors else "valid"
    lines.append(
        f"{verdict}: {len(certs)} certificate(s), {len(errors)} error(s), "
        f"{len(warnings)} warning(s)"
    )
    return "\n".join(lines)


def where(pointer: str, sources: Sequence[CertificateSource]) -> str:
    """`/certificates/3` → `/certificates/3 (bundle.pem#2)` when we know which file it came from."""
    match = _POINTER.match(pointer)
    if match and int(match[1]) < len(sources):
        return f"{pointer} ({sources[int(match[1])].where})"
    return pointer


def issue_lines(
    items: Sequence[Row], label: str, sources: Sequence[CertificateSource] = ()
) -> list[str]:
    """`label: pointer (file#block): type: detail`, one per error or warning."""
    out = []
    for item in items:
        pointer = where(str(item.get("pointer") or ""), sources)
        parts = [p for p in (label, pointer, slug(str(item.get("type", "")))) if p]
        out.append(f"{': '.join(parts)}: {cell(item.get('detail'))}")
    return out


# -- activations -------------------------------------------------------------------------------


def progress(doc: Row, status_key: str = "activationStatus") -> str:
    """`IN_PROGRESS 50% (waiting for edge-2)`: the nodes named while a change converges."""
    percent = doc.get("percentComplete")
    text = f"{doc.get(status_key)}" + (f" {percent}%" if percent is not None else "")
    pending = doc.get("pendingNodes") or []
    if doc.get(status_key) == "IN_PROGRESS" and pending:
        text += f" (waiting for {', '.join(pending)})"
    return text


def forgotten(doc: Row) -> str:
    lines = [f"forgot {', '.join(doc.get('forgottenNodes', []))}"]
    for change in doc.get("changes", []):
        lines.append(
            f"  {change.get('kind')} no longer waits for it: {change.get('status')}"
            + (
                f" (waiting for {', '.join(change['pendingNodes'])})"
                if change.get("pendingNodes")
                else ""
            )
        )
    return "\n".join(lines)


def activation(doc: Row, *, status: bool = True) -> str:
    text = (
        f"activation {doc.get('activationId')}: {doc.get('activationType')} version "
        f"{doc.get('version')} on {doc.get('network')}"
    )
    if status:
        text += f": {progress(doc)}"
        text += f" ({cell(doc['failureReason'])})" if doc.get("failureReason") else ""
    return text


# -- errors ------------------------------------------------------------------------------------


def problem_lines(
    error: ApiError, *, has_token: bool, sources: Sequence[CertificateSource] = ()
) -> list[str]:
    """`error: 422 type: detail`, one line per `errors[]` item and extra field, and a hint."""
    if error.problem is None:
        lines = [f"error: {error.status} {error.reason} from the admin API"]
    else:
        # The API speaks of its body fields; the operator types flags.
        detail = error.detail.replace("force=true", "--force")
        lines = [f"error: {error.status} {error.type}: {cell(detail)}"]
    for item in error.errors:
        if item.get("detail") == error.detail and not item.get("pointer"):
            continue  # the same sentence again adds nothing
        lines += ["  " + line for line in issue_lines([item], "", sources)]
    lines += [f"  {name}: {cell(value)}" for name, value in error.extra.items()]
    if error.status == 401:
        lines.append(
            "hint: pass a valid admin API token with --token or EDGEPROXY_TOKEN"
            if has_token
            else "hint: no token given: pass one with --token or set EDGEPROXY_TOKEN"
        )
    elif error.status == 403:
        lines.append(
            "hint: this token's role is not enough; use one with the needed role "
            "(--token or EDGEPROXY_TOKEN)"
        )
    return lines
