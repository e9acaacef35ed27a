"""Examples shown by each command's `--help` (the epilog), keyed by (group, command)."""

from __future__ import annotations

_EXAMPLES: dict[tuple[str, str], tuple[str, ...]] = {
    # The node commands, which the executable adds (node/main.py NODE_COMMANDS).
    ("", "serve"): (
        "edgeproxy serve -c /etc/edgeproxy/edgeproxy.toml",
        "edgeproxy serve -c config/edgeproxy.toml   # the demo, as `make run` starts it",
    ),
    ("", "check-config"): (
        "edgeproxy check-config -c /etc/edgeproxy/edgeproxy.toml   # exit 2 on errors",
        "edgeproxy check-config -c new.toml && systemctl reload edgeproxy",
    ),
    ("", "rotate-kek"): (
        "edgeproxy rotate-kek -c /etc/edgeproxy/edgeproxy.toml --old-key-file old-kek.b64",
    ),
    ("ca-sets", "list"): (
        "edgeproxy ca-sets list",
        "edgeproxy ca-sets list --activated-on PRODUCTION --json",
    ),
    ("ca-sets", "create"): ('edgeproxy ca-sets create partners --description "partner CAs"',),
    ("ca-sets", "show"): ("edgeproxy ca-sets show partners", "edgeproxy ca-sets show name:2024"),
    ("ca-sets", "delete"): ("edgeproxy ca-sets delete partners --wait",),
    ("ca-sets", "activities"): ("edgeproxy ca-sets activities partners",),
    ("ca-sets", "associations"): ("edgeproxy ca-sets associations partners",),
    ("versions", "list"): ("edgeproxy versions list partners",),
    ("versions", "show"): ("edgeproxy versions show partners 3 --json",),
    ("versions", "create"): (
        "edgeproxy versions create partners root.pem intermediates.pem --description 2026-Q1",
    ),
    ("versions", "update"): (
        "edgeproxy versions update partners 3 bundle.pem   # new certificates, the rest kept",
        'edgeproxy versions update partners 3 --description "rotated Q2"   # certificates kept',
    ),
    ("versions", "delete"): ("edgeproxy versions delete partners 3",),
    ("versions", "clone"): ("edgeproxy versions clone partners 2",),
    ("versions", "certificates"): (
        "edgeproxy versions certificates partners 3 --expiring --days 60",
    ),
    ("", "validate"): ("edgeproxy validate root.pem intermediates.pem",),
    ("", "activate"): (
        "edgeproxy activate partners 3 --network STAGING --wait",
        "edgeproxy activate partners 3 --network PRODUCTION --strict   # 409 if already active",
    ),
    ("", "deactivate"): (
        "edgeproxy deactivate partners 3 --network STAGING --wait",
        "edgeproxy deactivate partners 3 --network PRODUCTION --force   # emergency stop",
    ),
    ("", "activations"): ("edgeproxy activations partners --json",),
    ("nodes", "list"): ("edgeproxy nodes",),
    ("nodes", "forget"): ("edgeproxy nodes forget edge-3",),
    ("crls", "list"): ("edgeproxy crls list partners",),
    ("crls", "add"): ('edgeproxy crls add partners partner-ca.crl.pem --description "weekly"',),
    ("crls", "delete"): ("edgeproxy crls delete partners 7",),
    ("", "block"): (
        'edgeproxy block partners --cert stolen.pem --reason "laptop stolen"',
        'edgeproxy block partners --issuer "CN=Partner CA" --serial 1f3a --reason leaked',
    ),
    ("", "unblock"): ("edgeproxy unblock partners 4",),
    ("", "blocks"): ("edgeproxy blocks partners",),
    ("rules", "show"): ("edgeproxy rules show shop --network STAGING",),
    ("rules", "set"): ("edgeproxy rules set shop --network STAGING --file rules.toml --wait",),
    ("rules", "clear"): ("edgeproxy rules clear shop --network PRODUCTION",),
    ("edge-certs", "list"): ("edgeproxy edge-certs list",),
    ("edge-certs", "show"): ("edgeproxy edge-certs show api",),
    ("edge-certs", "create"): (
        "edgeproxy edge-certs create api --hostname api.example.com --origin "
        "http://127.0.0.1:8080 --cert chain.pem --key api.key",
    ),
    ("edge-certs", "update"): ("edgeproxy edge-certs update api --hostname api2.example.com",),
    ("edge-certs", "rotate"): (
        "edgeproxy edge-certs rotate api --cert new-chain.pem --key new.key",
    ),
    ("edge-certs", "delete"): ("edgeproxy edge-certs delete api",),
    ("", "bind"): ("edgeproxy bind api --network STAGING --ca-set partners --wait",),
    ("", "unbind"): ("edgeproxy unbind api --network STAGING",),
    ("versions", "impact"): ("edgeproxy versions impact partners 3 --network PRODUCTION",),
    ("versions", "diff"): ("edgeproxy versions diff partners 2 3",),
    ("", "rollback"): ("edgeproxy rollback partners --network PRODUCTION --wait",),
    ("token", "new"): ("edgeproxy token new --name ci --role editor > ci.token",),
    ("token", "hash"): ("printenv EDGEPROXY_TOKEN | edgeproxy token hash --name ops --role admin",),
}


def of(group: str, command: str) -> str | None:
    """The `--help` epilog of a command: its examples, or None."""
    lines = _EXAMPLES.get((group, command))
    if not lines:
        return None
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)
