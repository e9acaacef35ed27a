"""`/metrics` after real traffic passes `promtool check metrics` (docs/operations.md) and names
every docs/operations.md family."""

from __future__ import annotations

import pytest

from support.nodes import Metrics, poll

from .clients import aget, curl, curl_keepalive, refused, run_tool, tool
from .conftest import Running
from .pki import E2ePki

pytestmark = pytest.mark.slow

FAMILIES = (
    "edgeproxy_tls_handshakes_total",
    "edgeproxy_tls_handshake_duration_seconds_bucket",
    "edgeproxy_client_cert_verifications_total",
    "edgeproxy_connections_active",
    "edgeproxy_http_requests_total",
    "edgeproxy_origin_request_duration_seconds_bucket",
    "edgeproxy_trust_active_version",
    "edgeproxy_trust_reloads_total",
    "edgeproxy_trust_apply_latency_seconds_bucket",
    "edgeproxy_ca_certificate_expiry_timestamp_seconds",
    "edgeproxy_ocsp_responses_total",
    "edgeproxy_ocsp_cache_hits_total",
    "edgeproxy_store_reachable",
)


def promtool() -> str:
    return tool("promtool", "prometheus")  # in CI a missing promtool fails the test


async def test_metrics_after_traffic_pass_promtool(node: Running, pki: E2ePki) -> None:
    assert (await aget(pki, node.port, "api.test", pki.alice)).status == 200
    assert (await aget(pki, node.port, "other.test", None)).status == 403
    await refused(pki, node.port, "api.test", pki.bob)
    text = await node.status.metrics_text()
    for family in FAMILIES:
        assert f"\n{family}" in text, family
    # Bounded labels: never a DN or a serial (docs/operations.md).
    assert pki.alice.subject not in text
    assert "alice" not in text

    run = await run_tool(promtool(), "check", "metrics", stdin=text.encode())
    assert run.code == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    "exposition",
    [
        "# HELP edgeproxy_bad A counter without _total.\n# TYPE edgeproxy_bad counter\n"
        "edgeproxy_bad 1\n",
        'edgeproxy_broken{edge_certificate="api" 1\n',
    ],
    ids=["lint", "syntax"],
)
async def test_promtool_rejects_a_bad_exposition(exposition: str) -> None:
    run = await run_tool(promtool(), "check", "metrics", stdin=exposition.encode())
    assert run.code != 0


async def test_http2_requests_are_counted_with_protocol_h2(node: Running, pki: E2ePki) -> None:
    """`edgeproxy_http_requests_total{protocol}` tells the protocols apart (docs/operations.md):
    streams of one curl --http2 connection count as h2, a curl --http1.1 request as h1."""
    name = "edgeproxy_http_requests_total"
    series = [("api", "200", "h2"), ("other", "403", "h2"), ("api", "200", "h1")]

    def counts(metrics: Metrics) -> list[float]:
        return [metrics.value(name, edge_certificate=e, code=c, protocol=p) for e, c, p in series]

    before = counts(await node.status.metrics())
    streams = [("GET", f"/counted/{i}") for i in range(3)]
    results = await curl_keepalive(pki, node.port, "api.test", pki.alice, streams, http2=True)
    assert results == [(200, 1), (200, 0), (200, 0)]
    _, denied, _ = await curl(pki, node.port, "other.test", None, extra=("--http2",))
    assert denied == 403  # request mode, deny: answered by the edge
    _, status, _ = await curl(pki, node.port, "api.test", pki.alice, extra=("--http1.1",))
    assert status == 200
    expected = [b + d for b, d in zip(before, (3, 1, 1), strict=True)]

    async def counted() -> list[float] | None:
        now = counts(await node.status.metrics())
        return now if all(n >= e for n, e in zip(now, expected, strict=True)) else None

    assert await poll(counted, "the requests to be counted") == expected
