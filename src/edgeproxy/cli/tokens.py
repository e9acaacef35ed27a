"""`edgeproxy token new|hash`: admin API tokens for `[admin] tokens` (docs/configuration.md).

Local only: nothing is sent. The config keeps a token's SHA-256 (`token_sha256`, lower-case hex of
its UTF-8), never the token; these commands print the line to paste.
"""

from __future__ import annotations

import hashlib
import secrets
import sys
from typing import Any

from edgeproxy.cli.client import CliError
from edgeproxy.cli.session import Session

TOKEN_BYTES = 32  # 256 bits of randomness, 43 URL-safe characters


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def config_line(name: str, role: str, token: str) -> str:
    return f'{{ name = "{name}", role = "{role}", token_sha256 = "{token_sha256(token)}" }},'


def cmd_token_new(s: Session) -> int:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    print(token)
    print(f"# for [admin] tokens: {config_line(s.args.name, s.args.role, token)}", file=sys.stderr)
    return 0


def cmd_token_hash(s: Session) -> int:
    """The token from stdin (one line), never from argv: argv is visible to every user."""
    token = sys.stdin.readline().rstrip("\r\n")
    if not token:
        raise CliError(
            "no token on stdin: pipe it in, e.g. `printenv TOKEN | edgeproxy token hash`",
            exit_code=2,
        )
    print(token_sha256(token))
    print(f"# for [admin] tokens: {config_line(s.args.name, s.args.role, token)}", file=sys.stderr)
    return 0


_WHO: list[tuple[str, dict[str, Any]]] = [
    ("--name", {"default": "ops", "help": "the token's name in the config line (ops)"}),
    (
        "--role",
        {
            "choices": ("viewer", "editor", "admin"),
            "default": "viewer",
            "help": "the token's role in the config line (viewer)",
        },
    ),
]
POSITIONALS: dict[str, dict[str, Any]] = {}
BUNDLES: dict[str, list[tuple[str, dict[str, Any]]]] = {"who": _WHO}
COMMANDS = [
    ("token", "new", cmd_token_new,
     "print a new random token (stdout) and its [admin] tokens line (stderr)", "", "who"),
    ("token", "hash", cmd_token_hash,
     "print the token_sha256 of a token read from stdin, and its config line (stderr)", "",
     "who"),
]  # fmt: skip
