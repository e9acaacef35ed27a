"""`/metrics` after real traffic passes `promtool check metrics` (docs/operations.md) and names
every docs/operations.md family."""

from __future__ import annotations

import pytest

from .clients import aget, refused, run_tool, tool
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
