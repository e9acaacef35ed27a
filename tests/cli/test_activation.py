"""Activation progress as live edge nodes report applying it, and the fleet-facing commands."""

from __future__ import annotations

import json
from datetime import timedelta

from .conftest import AdminServer, Cli, Pki

FAST = ("--poll-interval", "0.05")


def _set_with_version(cli: Cli, pki: Pki, file: str = "bundle.pem") -> None:
    assert cli("ca-sets", "create", "partners").code == 0
    assert cli("versions", "create", "partners", pki.path(file)).code == 0


def test_activate_wait_shows_progress_until_complete(
    cli: Cli, pki: Pki, server: AdminServer
) -> None:
    _set_with_version(cli, pki)
    before = server.run(server.revision())
    for name in ("edge-a", "edge-b"):
        server.run(server.report(name))
    nodes = server.spawn(
        server.apply_after_change([(0.0, "edge-a", None), (0.6, "edge-b", None)], since=before)
    )
    result = cli("activate", "partners", "1", "--network", "STAGING", "--wait", *FAST)
    nodes.result(5)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "activation 1: ACTIVATE version 1 on STAGING"
    # While it waits, it names the nodes it waits for.
    assert "IN_PROGRESS 0% (waiting for edge-a, edge-b)" in lines
    assert "IN_PROGRESS 50% (waiting for edge-b)" in lines
    assert lines[-1] == "COMPLETE 100%"
    assert result.err == ""


def test_activate_wait_reports_the_failure_reason(cli: Cli, pki: Pki, server: AdminServer) -> None:
    _set_with_version(cli, pki)
    before = server.run(server.revision())
    server.run(server.report("edge-a"))
    reason = {"partners": "cannot build the trust store: test failure"}
    nodes = server.spawn(server.apply_after_change([(0.0, "edge-a", reason)], since=before))
    result = cli("activate", "partners", "1", "--network", "STAGING", "--wait", *FAST)
    nodes.result(5)
    assert result.code == 1
    assert result.out.splitlines()[-1].startswith("FAILED")
    assert result.err == (
        "error: activation 1 failed: edge-a: cannot build the trust store: test failure\n"
    )
    # The network went back to its previous state (none), as docs/management.md says.
    assert json.loads(cli("ca-sets", "show", "partners", "--json").out)["stagingVersion"] is None


def test_activate_wait_gives_up_at_the_timeout(cli: Cli, pki: Pki, server: AdminServer) -> None:
    _set_with_version(cli, pki)
    server.run(server.report("edge-a"))  # live, but never applies anything
    result = cli(
        "activate", "partners", "1", "--network", "STAGING", "--wait", "--timeout", "0.3", *FAST
    )
    assert result.code == 1
    assert result.err.startswith(
        "error: activation 1 is still IN_PROGRESS 0% (waiting for edge-a) after 0.3s"
    )


def test_activate_with_no_edge_node_completes_with_a_warning(
    cli: Cli, pki: Pki, server: AdminServer
) -> None:
    _set_with_version(cli, pki)
    for wait in ((), ("--wait", *FAST)):
        network = "PRODUCTION" if wait else "STAGING"
        result = cli("activate", "partners", "1", "--network", network, *wait)
        assert result.code == 0, result.err
        assert result.out.splitlines()[-1].endswith("COMPLETE 100%")
        warnings = [line for line in result.err.splitlines() if "no-edge-nodes" in line]
        assert len(warnings) == 1, result.err
        assert warnings[0].startswith(f"warning: no-edge-nodes: no edge node of {network}")


def test_nodes_forget_stops_the_wait_and_the_activation_says_so(
    cli: Cli, pki: Pki, server: AdminServer
) -> None:
    _set_with_version(cli, pki)
    for name in ("edge-a", "edge-b"):
        server.run(server.report(name))
    started = cli("activate", "partners", "1", "--network", "STAGING", "--json")
    assert started.code == 0, started.err
    assert json.loads(started.out)["pendingNodes"] == ["edge-a", "edge-b"]
    server.run(server.report("edge-a"))  # applies; edge-b stays silent
    forgot = cli("nodes", "forget", "edge-b")
    assert forgot.code == 0, forgot.err
    assert forgot.out.splitlines()[0] == "forgot edge-b"
    # edge-a applied it, edge-b is forgotten: nothing left to wait for.
    assert forgot.out.splitlines()[1] == "  activation no longer waits for it: COMPLETE"
    listed = json.loads(cli("activations", "partners", "--json").out)["activations"][0]
    assert (listed["activationStatus"], listed["lostNodes"]) == ("COMPLETE", ["edge-b"])
    assert [w["type"] for w in listed["warnings"]] == ["nodes-lost"]
    assert "forgotten by" in listed["warnings"][0]["detail"]
    assert cli("nodes", "forget", "edge-b").code == 1  # gone already: 404
    assert [n.split()[0] for n in cli("nodes").out.splitlines()[1:]] == ["edge-a"]


def test_deactivate_is_refused_while_a_node_binds_the_set(
    cli: Cli, pki: Pki, server: AdminServer
) -> None:
    _set_with_version(cli, pki)
    assert cli("activate", "partners", "1", "--network", "STAGING").code == 0
    server.run(server.report("edge-a"))
    refused = cli("deactivate", "partners", "1", "--network", "STAGING")
    assert refused.code == 1
    assert refused.err.startswith("error: 409 ca-set-in-use: 1 edge certificate(s) on STAGING")
    assert "  associations: node=edge-a, edgeCertificate=api, network=STAGING" in refused.err


def test_deactivate_force_is_the_emergency_stop(cli: Cli, pki: Pki, server: AdminServer) -> None:
    _set_with_version(cli, pki)
    assert cli("activate", "partners", "1", "--network", "STAGING").code == 0
    server.run(server.report("edge-a"))
    forced = cli("deactivate", "partners", "1", "--network", "STAGING", "--force")
    assert forced.code == 0, forced.err
    assert forced.out.strip() == (
        "activation 2: DEACTIVATE version 1 on STAGING: IN_PROGRESS 0% (waiting for edge-a)"
    )


def test_associations_and_nodes_list_the_binding_node(
    cli: Cli, pki: Pki, server: AdminServer
) -> None:
    _set_with_version(cli, pki)
    server.run(server.report("edge-a"))
    associations = cli("ca-sets", "associations", "partners").out.splitlines()
    assert associations[1].split() == ["api", "STAGING", "config", "api.example.com", "edge-a"]
    nodes = cli("nodes").out.splitlines()
    assert nodes[1].split()[:4] == ["edge-a", "STAGING", "edge", "yes"]


def test_associations_of_an_unbound_set_say_so(cli: Cli, pki: Pki, server: AdminServer) -> None:
    _set_with_version(cli, pki)
    server.run(server.report("edge-a", ca_set="someone-else"))
    result = cli("ca-sets", "associations", "partners")
    assert (result.code, result.out.strip()) == (0, "no edge certificate binds this CA set")


def test_certificates_expired_and_expiring_follow_the_clock(
    cli: Cli, pki: Pki, server: AdminServer
) -> None:
    _set_with_version(cli, pki, "short.pem")  # valid for five more days

    def subjects(*flags: str) -> list[str]:
        result = cli("versions", "certificates", "partners", "1", *flags, "--json")
        assert result.code == 0, result.err
        return [c["subject"] for c in json.loads(result.out)["certificates"]]

    assert subjects("--expired") == []
    assert subjects("--expiring", "--days", "2") == []
    assert subjects("--expiring") == ["CN=Short-lived CA 5d"]
    server.clock.offset = timedelta(days=10)
    assert subjects("--expired") == ["CN=Short-lived CA 5d"]
    assert subjects("--expiring") == []
    table = cli("versions", "certificates", "partners", "1", "--expired").out.splitlines()
    assert table[0].split() == ["SUBJECT", "ISSUER", "NOT_AFTER", "SIGNATURE", "SHA256"]


def test_an_expired_version_cannot_be_activated(cli: Cli, pki: Pki, server: AdminServer) -> None:
    _set_with_version(cli, pki, "short.pem")
    server.clock.offset = timedelta(days=10)
    result = cli("activate", "partners", "1", "--network", "STAGING", "--wait")
    assert result.code == 1
    assert result.err.startswith(
        "error: 400 certificate-validation-failure-activate: version 1 cannot be activated"
    )
    assert "\n  /certificates/0: " in result.err
