"""The seed workflow end to end through `main()`: create a set, add a version from a bundle,
validate, clone, activate, look back at the history, deactivate and delete."""

from __future__ import annotations

import json

from .conftest import Cli, Pki


def test_seed_workflow(cli: Cli, pki: Pki) -> None:
    created = cli("ca-sets", "create", "partners", "--description", "Partner client CAs")
    assert created.code == 0, created.err
    assert "caSetName:" in created.out
    assert "partners" in created.out

    checked = cli("validate", pki.path("bundle.pem"))
    assert checked.code == 0, checked.err
    assert "valid: 3 certificate(s), 0 error(s)" in checked.out
    assert f"{pki.path('bundle.pem')}#2" in checked.out  # each certificate named by file#block

    version = cli("versions", "create", "partners", pki.path("bundle.pem"), "--description", "v1")
    assert version.code == 0, version.err
    assert "version:                1" in version.out
    assert version.out.count("SHA256_WITH_ECDSA") == 3  # the bundle became three entries

    certificates = json.loads(cli("versions", "show", "partners", "1", "--json").out)[
        "certificates"
    ]
    issuers = [c["issuer"] for c in certificates]
    assert issuers.count(certificates[0]["subject"]) == 2  # the root and its intermediate

    cloned = cli("versions", "clone", "partners", "1")
    assert cloned.code == 0
    assert "version:                2" in cloned.out

    none_expired = cli("versions", "certificates", "partners", "1", "--expired")
    assert (none_expired.code, none_expired.out.strip()) == (0, "no certificates")

    activated = cli("activate", "partners", "1", "--network", "staging", "--wait")
    assert activated.code == 0, activated.err
    assert activated.out.splitlines()[-1] == "COMPLETE 100%"

    # Already active: a success with a note by default; --strict keeps the API's 409.
    again = cli("activate", "partners", "1", "--network", "STAGING")
    assert (again.code, again.out.startswith("note: version 1 is already active")) == (0, True)
    strict = cli("activate", "partners", "1", "--network", "STAGING", "--strict")
    assert strict.code == 1
    assert strict.err.startswith("error: 409 version-already-active: version 1 is already active")

    locked = cli("versions", "update", "partners", "1", pki.path("other.pem"))
    assert locked.code == 1
    assert "ca-set-version-was-previously-active" in locked.err
    editable = cli("versions", "update", "partners", "2", pki.path("other.pem"))
    assert editable.code == 0, editable.err

    activations = cli("activations", "partners")
    assert "ACTIVATE  1        STAGING  COMPLETE  100" in activations.out

    refused = cli("ca-sets", "delete", "partners")
    assert refused.code == 1
    assert "409 ca-set-is-active" in refused.err

    deactivated = cli("deactivate", "partners", "1", "--network", "STAGING", "--wait")
    assert deactivated.code == 0, deactivated.err
    assert "DEACTIVATE version 1 on STAGING" in deactivated.out

    history = cli("ca-sets", "activities", "partners")
    types = [line.split()[2] for line in history.out.splitlines()[1:]]
    assert types == [
        "DEACTIVATE_CA_SET_VERSION",
        "UPDATE_CA_SET_VERSION",
        "ACTIVATE_CA_SET_VERSION",
        "CLONE_CA_SET_VERSION",
        "CREATE_CA_SET_VERSION",
        "CREATE_CA_SET",
    ]

    deleted = cli("ca-sets", "delete", "partners", "--wait", "--poll-interval", "0.05")
    assert deleted.code == 0, deleted.err
    assert deleted.out.splitlines()[-1] == "COMPLETE"
    assert cli("ca-sets", "list").out.strip() == "no CA sets"
    assert "caSetStatus:       DELETED" in cli("ca-sets", "show", "1").out  # history, by id


def test_json_output_is_the_api_json(cli: Cli, pki: Pki) -> None:
    made = json.loads(cli("ca-sets", "create", "partners", "--json").out)
    assert made["caSetName"] == "partners"
    assert isinstance(made["caSetId"], int)
    version = cli("--json", "versions", "create", str(made["caSetId"]), pki.path("bundle.pem"))
    assert len(json.loads(version.out)["certificates"]) == 3
    listed = json.loads(cli("ca-sets", "list", "--json").out)
    assert [s["caSetName"] for s in listed["caSets"]] == ["partners"]
    waited = cli("activate", "partners", "1", "--network", "STAGING", "--wait", "--json")
    assert json.loads(waited.out)["activationStatus"] == "COMPLETE"  # progress went to stderr
    assert "COMPLETE 100%" in waited.err


def test_json_errors_print_the_problem_document(cli: Cli) -> None:
    cli("ca-sets", "create", "partners")
    duplicate = cli("ca-sets", "create", "partners", "--json")
    assert duplicate.code == 1
    assert json.loads(duplicate.out)["status"] == 409
    assert duplicate.err.startswith("error: 409 ca-set-name-taken:")


def test_duplicate_version_names_the_version_it_repeats(cli: Cli, pki: Pki) -> None:
    cli("ca-sets", "create", "partners")
    assert cli("versions", "create", "partners", pki.path("bundle.pem")).code == 0
    again = cli("versions", "create", "partners", pki.path("bundle.pem"))
    assert again.code == 1
    assert again.err.splitlines()[0] == (
        "error: 422 duplicate-ca-set-version: version 1 already holds exactly these certificates"
    )


def test_versions_delete_removes_an_editable_version(cli: Cli, pki: Pki) -> None:
    cli("ca-sets", "create", "partners")
    cli("versions", "create", "partners", pki.path("bundle.pem"))
    cli("versions", "create", "partners", pki.path("other.pem"))
    removed = cli("versions", "delete", "partners", "2")
    assert (removed.code, removed.out.strip()) == (0, "deleted version 2 of CA set partners")
    assert "no versions" not in cli("versions", "list", "partners").out
    assert len(json.loads(cli("versions", "list", "partners", "--json").out)["versions"]) == 1


def test_versions_delete_refuses_an_activated_version(cli: Cli, pki: Pki) -> None:
    cli("ca-sets", "create", "partners")
    cli("versions", "create", "partners", pki.path("bundle.pem"))
    cli("activate", "partners", "1", "--network", "STAGING")
    refused = cli("versions", "delete", "partners", "1")
    assert refused.code == 1
    assert "ca-set-version-was-previously-active" in refused.err


def test_list_filters_by_prefix_and_network(cli: Cli, pki: Pki) -> None:
    for name in ("partners", "partners-eu", "internal"):
        cli("ca-sets", "create", name)
    cli("versions", "create", "partners-eu", pki.path("bundle.pem"))
    cli("activate", "partners-eu", "1", "--network", "STAGING")

    def names(*flags: str) -> list[str]:
        listed = json.loads(cli("ca-sets", "list", "--json", *flags).out)["caSets"]
        return [s["caSetName"] for s in listed]

    assert names("--prefix", "partners") == ["partners", "partners-eu"]
    assert names("--prefix", "nobody") == []
    assert names("--activated-on", "staging") == ["partners-eu"]
    assert names("--activated-on", "PRODUCTION") == []


def test_descriptions_are_shown_as_given(cli: Cli) -> None:
    description = "Partner CAs (EU) \u00e9t\u00e9 2025"  # non-ASCII text is kept as it is
    cli("ca-sets", "create", "partners", "--description", description)
    assert f"description:       {description}\n" in cli("ca-sets", "show", "partners").out


def test_control_characters_from_the_api_cannot_drive_the_terminal(cli: Cli) -> None:
    cli("ca-sets", "create", "partners", "--description", "ok\x1b[2J\x1b]0;pwned\x07 text")
    shown = cli("ca-sets", "show", "partners").out
    assert "\x1b" not in shown
    assert "ok\\x1b[2J\\x1b]0;pwned\\x07 text" in shown
