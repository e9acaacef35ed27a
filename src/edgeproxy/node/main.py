"""The `edgeproxy` executable: the node commands (`serve`, `check-config`) beside the admin CLI.

This is the composition root's entry point: the CLI package knows nothing of the node; the node
adds its two commands to the CLI's parser.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from edgeproxy.cli import main as cli
from edgeproxy.cli.client import CliError
from edgeproxy.config.kek import read_kek_file
from edgeproxy.config.model import Config, ConfigError
from edgeproxy.config.parse import load_config
from edgeproxy.node import checks
from edgeproxy.node.kek import reseal_all
from edgeproxy.node.run import run


def _load(path: str) -> Config:
    """The config file, or exit 2 with one line naming the file and the dotted key at fault."""
    try:
        return load_config(Path(path))
    except ConfigError as error:
        raise CliError(f"{path}: {error}", exit_code=2) from None


def check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.config))
    except ConfigError as error:
        # The findings' own shape ("FILE: error: key: what"), so one grep reads both.
        print(f"{args.config}: error: {error}", file=sys.stderr)
        print(f"{args.config}: 1 error(s); the node would not start", file=sys.stderr)
        return 2
    count = len(config.edge.certificates) if config.edge is not None else 0
    findings = checks.check(config)
    for finding in findings:
        print(f"{args.config}: {finding}", file=sys.stderr)
    errors = sum(f.severity == "error" for f in findings)
    if errors:
        print(f"{args.config}: {errors} error(s); the node would not start", file=sys.stderr)
        return 2
    print(
        f"{args.config}: ok: node {config.node.name}, network {config.node.network.value}, "
        f"roles {'+'.join(config.node.roles)}, {count} edge certificate(s)"
    )
    return 0


def serve(args: argparse.Namespace) -> int:
    return run(_load(args.config))


def rotate_kek(args: argparse.Namespace) -> int:
    config = _load(args.config)
    try:
        old = read_kek_file(Path(args.old_key_file), "--old-key-file")
    except ConfigError as error:
        raise CliError(str(error), exit_code=2) from None
    resealed, kept = asyncio.run(reseal_all(config, old))
    print(f"{resealed} private key(s) sealed anew under the configured key; {kept} already were")
    return 0


NODE_COMMANDS: tuple[cli.NodeCommand, ...] = (
    ("serve", serve, "run the roles of a node config until SIGTERM", []),
    ("check-config", check_config, "validate a node config without binding anything", []),
    (
        "rotate-kek",
        rotate_kek,
        "seal every stored private key anew under the key-encryption key the config names",
        [
            (
                "--old-key-file",
                {"required": True, "help": "the previous key-encryption key (read only)"},
            )
        ],
    ),
)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, NODE_COMMANDS)
