"""One CLI invocation: the admin client, the parsed arguments and how to print."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgeproxy.cli import client as api
from edgeproxy.cli.client import AdminClient, CertificateSource


@dataclass
class Session:
    client: AdminClient
    args: argparse.Namespace
    json: bool
    sources: list[CertificateSource] = field(default_factory=list)

    def emit(self, doc: Any, human: Callable[[Any], str]) -> None:
        print(json.dumps(doc, indent=2) if self.json else human(doc))

    def note(self, text: str) -> None:
        """Progress and warnings: stdout for people, stderr under --json (stdout stays JSON)."""
        print(text, file=sys.stderr if self.json else sys.stdout, flush=True)

    def set_id(self) -> int:
        return api.resolve_set(self.client, self.args.set)

    def version_path(self) -> str:
        return f"/ca-sets/{self.set_id()}/versions/{self.args.version}"
