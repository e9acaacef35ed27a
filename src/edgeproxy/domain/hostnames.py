"""Host names an edge certificate serves (SNI): DNS names, lower-cased, `*.` on the first label
only. One rule for the config file and the admin API."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def hostname_problem(text: str, *, wildcard: bool = True) -> str | None:
    """Why `text` is not a host name we serve, or None when it is one."""
    if not text.isascii():  # before lower(): "\u212a".lower() is "k"
        return "must be ASCII (write internationalised names in their xn-- form)"
    labels = text.lower().split(".")
    rest = labels[1:] if wildcard and labels[0] == "*" else labels
    if len(text) > 253 or not rest or not all(_LABEL.fullmatch(label) for label in rest):
        return "is not a valid host name" + (" (only '*.' may start one)" if wildcard else "")
    if rest is not labels and len(rest) < 2:
        return "a wildcard needs at least two labels after '*.'"
    if rest[-1].isdigit():  # SNI carries DNS names only, never address literals (RFC 6066 §3)
        return "must be a DNS name, not an IP address"
    return None


def covered_by(hostname: str, san: str) -> bool:
    """Whether a certificate's DNS subjectAltName `san` covers `hostname` (RFC 6125 §6.4.3: a
    `*` only as the whole left-most label, matching exactly one label)."""
    host, pattern = hostname.lower().rstrip("."), san.lower().rstrip(".")
    if host == pattern:
        return True
    if not pattern.startswith("*."):
        return False
    if host.startswith("*."):  # a wildcard host name is covered by the same wildcard only
        return False
    label, dot, parent = host.partition(".")
    return bool(label and dot) and parent == pattern[2:]


# An origin's schemes: `http` (HTTP/1.1) and `h2c` (HTTP/2 with prior knowledge, e.g. gRPC).
ORIGIN_SCHEMES = ("http", "h2c")


def url_problem(text: str, *schemes: str) -> str | None:
    """Why `text` is not `scheme://host[:port][/]` (an origin or an OCSP responder), or None.
    The message never echoes the text: a URL may hold credentials."""
    shape = f"must be {' or '.join(s + '://host:port' for s in schemes)}"
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        return shape
    if parts.scheme not in schemes or not parts.hostname or port == 0:
        return shape
    if parts.username or parts.password or parts.query or parts.fragment:
        return shape + " (no credentials, query or fragment)"
    if "https" not in schemes and parts.path not in ("", "/"):  # an origin: no path
        return shape + " (no path)"
    return None
