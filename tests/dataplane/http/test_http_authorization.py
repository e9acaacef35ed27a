"""The binding's authorization rules in the HTTP layer, over real sockets on one keep-alive
connection: allowed requests reach the origin, refused ones get a problem and never do, report
mode forwards, and every decision lands in the access record."""

from __future__ import annotations

import json
from typing import Any

from edgeproxy.authz.parse import parse_policy
from edgeproxy.tls.session import Reason, VerifyResult
from support.origin import RecordingOrigin

from .edgehttp_origin import StartProxy
from .edgehttp_support import ClientPki, RawClient

# The test leaf: URI spiffe://partners.example/ns/a;b, DNS client.partners.example,
# O=Partner, Inc., CN=client "one".
RULES: dict[str, Any] = {
    "default": "deny",
    "rules": [
        {"pathPrefix": "/api/admin/", "deny": [{"sanDns": "*.partners.example"}]},
        {
            "name": "reads",
            "pathPrefix": "/api/",
            "methods": ["GET"],
            "allow": [{"anyVerified": True}],
        },
        {"pathPrefix": "/api/", "allow": [{"sanUri": "spiffe://other.example/**"}]},
        {"pathPrefix": "/spiffe/", "allow": [{"sanUri": "spiffe://partners.example/ns/*"}]},
    ],
}


def _decisions(records: list[Any]) -> list[tuple[str, int, str | None, str | None]]:
    return [
        (
            r.path,
            r.status,
            r.authorization.decision if r.authorization else None,
            r.authorization.rule if r.authorization else None,
        )
        for r in records
    ]


async def test_allow_and_deny_per_path_and_method_on_one_connection(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url, authorization=parse_policy(RULES))
    client = await RawClient.connect(proxy.port)
    asked = [
        ("GET", "/api/orders", 200),
        ("GET", "/api/admin/users", 403),  # a deny that precedes an allow
        ("POST", "/api/orders", 403),  # the method falls to the next rule, whose allow refuses
        ("GET", "/spiffe/x", 200),
        ("GET", "/admin/", 403),  # no rule: the default
        ("HEAD", "/api/orders", 403),  # HEAD is not GET: rule 2 decides
        ("GET", "/api/orders?again", 200),  # still the same connection
    ]
    for method, path, status in asked:
        resp = await client.request(path, method=method)
        assert resp.status == status, (method, path)
        if status == 403 and method != "HEAD":
            doc = json.loads(resp.body)
            assert doc["reason"] == "policy_denied"
            assert doc["type"].endswith("/policy-denied")
            assert resp.header("connection") == "keep-alive"
    assert origin.paths() == ["/api/orders", "/spiffe/x", "/api/orders?again"]
    assert _decisions(proxy.records) == [
        ("/api/orders", 200, "allow", "reads"),
        ("/api/admin/users", 403, "deny", "0"),
        ("/api/orders", 403, "deny", "2"),
        ("/spiffe/x", 200, "allow", "3"),
        ("/admin/", 403, "deny", "default"),
        ("/api/orders", 403, "deny", "2"),
        ("/api/orders?again", 200, "allow", "reads"),
    ]


async def test_report_mode_forwards_and_records_would_deny(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url, authorization=parse_policy({**RULES, "mode": "report"}))
    client = await RawClient.connect(proxy.port)
    for path in ("/api/admin/users", "/admin/", "/api/orders"):
        assert (await client.request(path)).status == 200
    assert origin.paths() == ["/api/admin/users", "/admin/", "/api/orders"]
    assert _decisions(proxy.records) == [
        ("/api/admin/users", 200, "would_deny", "0"),
        ("/admin/", 200, "would_deny", "default"),
        ("/api/orders", 200, "allow", "reads"),
    ]
    first = proxy.records[0].authorization
    assert first is not None
    assert first.reason == "policy_denied"


async def test_an_ambiguous_path_is_400_and_never_reaches_the_origin(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    policy = parse_policy(
        {
            "default": "allow",
            "rules": [{"pathPrefix": "/admin/", "allow": [{"sanDns": "nobody.example"}]}],
        }
    )
    proxy = await start_proxy(origin.url, authorization=policy)
    client = await RawClient.connect(proxy.port)
    for path in ("/x/../admin/", "/admin%2fx", "/%61dmin/"):
        resp = await client.request(path)
        assert resp.status in (400, 403), path
    assert origin.requests == []
    assert [r.authorization.reason if r.authorization else None for r in proxy.records] == [
        "invalid_path",
        "invalid_path",
        "policy_denied",  # %61 is "a": the rule for /admin/ applies
    ]
    assert json.loads(resp.body)["reason"] == "policy_denied"


async def test_a_certificate_required_on_some_paths_only(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    policy = parse_policy(
        {"default": "allow", "rules": [{"pathPrefix": "/private/", "requireCertificate": True}]}
    )
    proxy = await start_proxy(
        origin.url,
        verify=VerifyResult.NONE,
        reason=Reason.NO_CERTIFICATE,
        mode="request",
        on_failure="forward",
        authorization=policy,
    )
    client = await RawClient.connect(proxy.port)
    assert (await client.request("/open")).status == 200
    resp = await client.request("/private/x")
    assert resp.status == 403
    assert json.loads(resp.body)["reason"] == "no_certificate"
    assert origin.paths() == ["/open"]
    assert _decisions(proxy.records)[1] == ("/private/x", 403, "deny", "0")


async def test_a_verified_client_passes_where_a_certificate_is_required(
    origin: RecordingOrigin, start_proxy: StartProxy, pki: ClientPki
) -> None:
    policy = parse_policy(
        {"default": "deny", "rules": [{"pathPrefix": "/private/", "requireCertificate": True}]}
    )
    proxy = await start_proxy(
        origin.url, mode="request", on_failure="forward", authorization=policy
    )
    client = await RawClient.connect(proxy.port)
    assert (await client.request("/private/x")).status == 200
    assert (await client.request("/other")).status == 403
    assert origin.paths() == ["/private/x"]


async def test_without_rules_no_decision_is_recorded(
    origin: RecordingOrigin, start_proxy: StartProxy
) -> None:
    proxy = await start_proxy(origin.url)
    client = await RawClient.connect(proxy.port)
    assert (await client.request("/admin/")).status == 200
    assert proxy.records[0].authorization is None
