"""`versions impact`, `versions diff`, `rollback`, and `activate` asking before it refuses clients
the nodes saw (docs/management.md "Safe trust changes")."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from edgeproxy.domain.clients import ClientObservation, describe
from edgeproxy.domain.model import Network

from .conftest import ADMIN_TOKEN, AdminServer, Cli, Pki


def _seen(server: AdminServer, pki: Pki) -> str:
    """The fleet saw the client of `leaf.pem` (issued by the bundle's root) on STAGING."""
    text = Path(pki.path("leaf.pem")).read_bytes().split(b"\n", 1)[1]
    leaf = x509.load_pem_x509_certificate(text).public_bytes(Encoding.DER)
    fingerprint = hashlib.sha256(leaf).hexdigest()
    subject, issuer, sans = describe(leaf)
    now = datetime.now(UTC)
    record = ClientObservation(
        Network.STAGING, "api", "partners", "edge-1", fingerprint, subject, issuer, sans,
        (leaf,), now, now, 3, 9, "accepted",
    )  # fmt: skip
    server.run(
        server.fleet.record_clients("edge-1", [record], now=now, window=timedelta(days=7), keep=10)
    )
    return fingerprint


def _two_versions_and_a_client_seen(cli: Cli, pki: Pki, server: AdminServer) -> str:
    """partners: version 1 (the bundle, active on STAGING) and version 2 (another CA), and the
    fleet saw version 1's client: the fingerprint of the client version 2 would refuse."""
    assert cli("ca-sets", "create", "partners").code == 0
    assert cli("versions", "create", "partners", pki.path("bundle.pem")).code == 0
    assert cli("versions", "create", "partners", pki.path("other.pem")).code == 0
    fingerprint = _seen(server, pki)
    assert cli("activate", "partners", "1", "--network", "STAGING").code == 0
    return fingerprint


def test_impact_activate_confirmation_diff_and_rollback(
    cli: Cli, pki: Pki, server: AdminServer
) -> None:
    fingerprint = _two_versions_and_a_client_seen(cli, pki, server)

    shown = cli("versions", "impact", "partners", "2", "--network", "staging", "--json")
    assert shown.code == 0, shown.err
    (refused,) = json.loads(shown.out)["wouldBeRefused"]
    assert (refused["fingerprintSha256"], refused["reason"]) == (fingerprint, "unknown_ca")
    table = cli("versions", "impact", "partners", "2", "--network", "STAGING")
    assert "would be refused (1):" in table.out
    assert fingerprint in table.out

    # No terminal to ask and no --yes: nothing changes.
    declined = cli("activate", "partners", "2", "--network", "STAGING")
    assert declined.code == 1
    assert "1 would be refused" in declined.out
    assert "nothing changed" in declined.err
    assert "--yes" in declined.err
    staging = json.loads(cli("ca-sets", "show", "partners", "--json").out)["stagingVersion"]
    assert staging == 1

    done = cli("activate", "partners", "2", "--network", "STAGING", "--yes")
    assert done.code == 0, done.err
    assert fingerprint in done.out  # the list it went ahead with

    diff = json.loads(cli("versions", "diff", "partners", "1", "2", "--json").out)
    assert (len(diff["removed"]), len(diff["added"]), diff["unchanged"]) == (3, 1, [])

    back = cli("rollback", "partners", "--network", "STAGING")
    assert back.code == 0, back.err
    assert "ACTIVATE version 1 on STAGING" in back.out
    staging = json.loads(cli("ca-sets", "show", "partners", "--json").out)["stagingVersion"]
    assert staging == 1


def _activate_at_a_terminal(server: AdminServer, answer: str) -> subprocess.CompletedProcess[str]:
    """`edgeproxy activate` as an operator runs it: standard input is a terminal (a pseudo-terminal
    here) on which `answer` is typed."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "EDGEPROXY_ADMIN_URL": server.url, "EDGEPROXY_TOKEN": ADMIN_TOKEN}
    try:
        os.write(controller, answer.encode() + b"\n")  # held by the terminal until read
        argv = ["activate", "partners", "2", "--network", "STAGING"]
        return subprocess.run(
            [sys.executable, "-m", "edgeproxy", *argv],
            stdin=terminal, capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
    finally:
        os.close(terminal)
        os.close(controller)


def test_activate_asks_at_a_terminal_and_goes_ahead_only_on_yes(
    cli: Cli, pki: Pki, server: AdminServer
) -> None:
    fingerprint = _two_versions_and_a_client_seen(cli, pki, server)

    def staging() -> int:
        return int(json.loads(cli("ca-sets", "show", "partners", "--json").out)["stagingVersion"])

    declined = _activate_at_a_terminal(server, "n")
    assert declined.returncode == 1, declined.stderr
    assert "anyway? [y/N]" in declined.stdout
    assert fingerprint in declined.stdout + declined.stderr  # shown before the question
    assert "nothing changed" in declined.stderr
    assert staging() == 1

    accepted = _activate_at_a_terminal(server, "y")
    assert accepted.returncode == 0, accepted.stderr
    assert staging() == 2
