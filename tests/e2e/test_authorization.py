"""Authorization rules end to end (docs/dataplane.md "Authorization"): a node whose TOML bindings
carry rules, real curl clients holding different certificates, several requests per kept-alive
connection, and what the origin, the access log and the metrics saw."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from support.nodes import EdgeSpec, InProcessNode
from support.origin import RecordingOrigin

from .clients import connection, curl_keepalive, exchange
from .conftest import AccessLog, MakeFiles, Running, StartNode
from .pki import Client, E2ePki

pytestmark = pytest.mark.slow


def spki_pin(client: Client) -> str:
    """curl's --pinnedpubkey form of the client's key."""
    der = client.leaf.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def api_rules(pki: E2ePki) -> dict[str, Any]:
    """alice: spiffe://partner-a/alice, alice.clients.test, CN=alice, O=Partner A (CA A).
    bob: spiffe://partner-b/bob, bob.clients.test, CN=bob, O=Partner B (CA B).
    carol: spiffe://partner-c/carol, carol.clients.test, CN=carol, O=Partner C (intermediate of
    root C)."""
    return {
        "default": "deny",
        "rules": [
            {
                "path_prefix": "/api/admin/",
                "deny": [{"subject": {"O": "Partner C"}}],  # a deny that precedes an allow
                "allow": [{"any_verified": True}],
            },
            {
                "name": "reads",
                "path_prefix": "/api/",
                "methods": ["GET"],
                "allow": [{"san_uri": "spiffe://partner-a/*"}, {"san_dns": "*.clients.test"}],
            },
            {
                "name": "writes",
                "path_prefix": "/api/",
                "allow": [{"spki_sha256": spki_pin(pki.alice)}],
            },
            {
                "name": "named",
                "path_prefix": "/named/",
                # A subject glob: alice's CN, neither an exact value nor a prefix of it.
                "allow": [{"subject": {"CN": "a*e"}}],
            },
            {"path_prefix": "/health"},  # last: a test replaces it
        ],
    }


@pytest.fixture
async def ruled(pki: E2ePki, node_files: MakeFiles, start_node: StartNode) -> Running:
    edges = [
        EdgeSpec("api", ("api.test", "*.api.test"), authorization=api_rules(pki)),
        EdgeSpec(
            "other",
            ("other.test",),
            mode="request",
            authorization={"mode": "report", "default": "deny"},
        ),
        EdgeSpec(
            "forward",
            ("forward.test",),
            mode="request",
            on_failure="forward",
            authorization={
                "default": "allow",
                "rules": [{"path_prefix": "/private/", "require_certificate": True}],
            },
        ),
    ]
    running = await start_node(node_files(edges=edges))
    running.set_id, running.version = await running.admin.publish(
        [pki.ca_a.pem, pki.ca_b.pem, pki.root.pem]
    )
    return running


# (client, method, path, status): each client's rows run in order on one curl connection.
TABLE = [
    ("alice", "GET", "/api/orders", 200),  # SPIFFE ID glob
    ("alice", "POST", "/api/orders", 200),  # the only key pinned for writes
    ("alice", "GET", "/api/admin/users", 200),
    ("alice", "GET", "/admin/", 403),  # no rule: default deny
    ("alice", "GET", "/api/orders?again", 200),
    ("alice", "GET", "/named/profile", 200),  # subject CN glob
    ("bob", "GET", "/health", 200),  # verified (CA B) ...
    ("bob", "GET", "/named/profile", 403),  # ... but his CN is not matched by the glob
    ("carol", "GET", "/api/orders", 200),  # DNS glob
    ("carol", "POST", "/api/orders", 403),  # another key
    ("carol", "GET", "/api/admin/users", 403),  # the subject deny precedes anyVerified
    ("carol", "GET", "/health", 200),
    ("carol", "GET", "/named/profile", 403),
]


@pytest.mark.parametrize("protocol", ["h1", "h2"])
@pytest.mark.parametrize("who", ["alice", "bob", "carol"])
async def test_allow_and_deny_per_certificate_path_and_method_on_kept_alive_connections(
    ruled: Running,
    pki: E2ePki,
    origin: RecordingOrigin,
    access_log: AccessLog,
    who: str,
    protocol: str,
) -> None:
    """The same table over HTTP/1.1 keep-alive and over streams of one HTTP/2 connection."""
    rows = [(m, p, s) for c, m, p, s in TABLE if c == who]
    client = getattr(pki, who)
    results = await curl_keepalive(
        pki, ruled.port, "api.test", client, [(m, p) for m, p, _ in rows], http2=protocol == "h2"
    )
    assert [status for status, _ in results] == [s for _, _, s in rows]
    assert [connects for _, connects in results][1:] == [0] * (len(rows) - 1)  # one connection
    allowed = [(m, p) for m, p, s in rows if s == 200]
    assert [(r.method, r.path) for r in origin.requests] == allowed
    lines = access_log.records("request")
    assert [(line.path, line.status) for line in lines] == [(p, s) for _, p, s in rows]
    assert {line.protocol for line in lines} == {protocol}
    denied = [line for line in lines if line.status == 403]
    assert denied
    assert {(line.authorization, line.authorization_reason) for line in denied} == {
        ("deny", "policy_denied")
    }
    metrics = await ruled.status.metrics_text()
    for line in lines:
        decision, rule = line.authorization, line.authorization_rule
        sample = (
            f'edgeproxy_authorization_decisions_total{{decision="{decision}",'
            f'edge_certificate="api",rule="{rule}"}}'
        )
        assert sample in metrics


async def test_report_mode_forwards_and_counts_would_deny(
    ruled: Running, pki: E2ePki, origin: RecordingOrigin, access_log: AccessLog
) -> None:
    results = await curl_keepalive(
        pki, ruled.port, "other.test", pki.alice, [("GET", "/a"), ("DELETE", "/b")]
    )
    assert [status for status, _ in results] == [200, 200]
    assert origin.paths() == ["/a", "/b"]
    assert [
        (line.authorization, line.authorization_rule) for line in access_log.records("request")
    ] == [
        ("would_deny", "default"),
        ("would_deny", "default"),
    ]
    metrics = await ruled.status.metrics_text()
    assert (
        'edgeproxy_authorization_decisions_total{decision="would_deny",edge_certificate="other",'
        'rule="default"} 2.0'
    ) in metrics


async def test_a_certificate_required_on_private_paths_only(
    ruled: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    requests = [("GET", "/open"), ("GET", "/private/x"), ("GET", "/open2")]
    anonymous = await curl_keepalive(pki, ruled.port, "forward.test", None, requests)
    assert [status for status, _ in anonymous] == [200, 403, 200]
    with_cert = await curl_keepalive(pki, ruled.port, "forward.test", pki.alice, requests)
    assert [status for status, _ in with_cert] == [200, 200, 200]
    assert origin.paths() == ["/open", "/open2", "/open", "/private/x", "/open2"]


async def test_new_rules_reach_an_open_keep_alive_connection(
    ruled: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    conn = connection(pki, ruled.port, "api.test", pki.carol)
    try:
        assert (await asyncio.to_thread(exchange, conn, "/health")).status == 200
        sock = conn.sock
        # A reload that closes /health to everyone but alice's key.
        assert isinstance(ruled.node, InProcessNode)
        files = ruled.node.files
        rules = api_rules(pki)
        rules["rules"][-1] = {
            "path_prefix": "/health",
            "allow": [{"spki_sha256": spki_pin(pki.alice)}],
        }
        files.edges = [
            replace(e, authorization=rules) if e.name == "api" else e for e in files.edges
        ]
        files.write()
        await ruled.node.reload()
        response = await asyncio.to_thread(exchange, conn, "/health")
        assert (response.status, response.json()["reason"]) == (403, "policy_denied")
        assert conn.sock is sock  # the same connection, judged by the new rules
        assert origin.paths() == ["/health"]
    finally:
        conn.close()
