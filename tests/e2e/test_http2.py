"""HTTP/2 to clients (docs/dataplane.md "HTTP/2"): real clients (curl, httpx, nghttp) through a
whole node; the same identity at the origin as over HTTP/1.1."""

from __future__ import annotations

import httpx
import pytest

from support.origin import RecordingOrigin

from .clients import curl, server_ca_file
from .conftest import AccessLog, Running
from .pki import E2ePki

pytestmark = pytest.mark.slow


async def test_curl_http2_reaches_the_origin_with_the_identity(
    node: Running, pki: E2ePki, origin: RecordingOrigin, access_log: AccessLog
) -> None:
    run, status, _body = await curl(
        pki, node.port, "api.test", pki.alice, "/h2?x=1",
        headers={"X-Client-Cert-Verify": "SUCCESS", "X_Forwarded_Client_Cert": "forged"},
        extra=("--http2",),
    )  # fmt: skip
    assert status == 200, run
    seen = origin.last("/h2?x=1")
    assert seen.one("X-Client-Cert-Verify") == "SUCCESS"
    assert pki.alice.subject.split(",")[0] in seen.one("X-Forwarded-Client-Cert")
    assert "forged" not in str(seen.headers)
    assert seen.one("Host") == f"api.test:{node.port}"
    [line] = [r for r in access_log.records("request") if r.path == "/h2?x=1"]
    assert (line.protocol, line.status) == ("h2", 200)


async def test_httpx_http2_many_streams_on_one_connection(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    ctx = pki.client_context(pki.alice)
    async with httpx.AsyncClient(http2=True, verify=ctx) as client:
        responses = [
            await client.get(
                f"https://127.0.0.1:{node.port}/n/{i}",
                headers={"Host": "api.test"},
                extensions={"sni_hostname": "api.test"},
            )
            for i in range(3)
        ]
    assert [r.http_version for r in responses] == ["HTTP/2"] * 3
    assert [r.status_code for r in responses] == [200] * 3
    assert {f"/n/{i}" for i in range(3)} <= set(origin.paths())
    assert server_ca_file(pki).exists()


def _client(pki: E2ePki, port: int) -> httpx.AsyncClient:
    """An HTTP/2 client whose every request goes to 127.0.0.1:port with SNI api.test."""
    return httpx.AsyncClient(
        http2=True, verify=pki.client_context(pki.alice), base_url=f"https://127.0.0.1:{port}"
    )


async def _get(client: httpx.AsyncClient, path: str, authority: str) -> httpx.Response:
    return await client.get(
        path, headers={"Host": authority}, extensions={"sni_hostname": "api.test"}
    )


async def test_connection_reuse_serves_its_binding_and_421s_another(
    node: Running, pki: E2ePki, origin: RecordingOrigin, access_log: AccessLog
) -> None:
    """One connection, SNI api.test: a name of the same edge certificate (the wildcard) is
    served; a name of another edge certificate gets 421 and never reaches its origin."""
    async with _client(pki, node.port) as client:
        same = await _get(client, "/reuse/same", "a.api.test")
        other = await _get(client, "/reuse/other", "other.test")
        unknown = await _get(client, "/reuse/unknown", "nowhere.test")
        again = await _get(client, "/reuse/again", "api.test")
    assert (same.status_code, other.status_code, unknown.status_code) == (200, 421, 421)
    assert again.status_code == 200
    assert other.json()["type"].endswith("/misdirected-request")
    assert "/reuse/other" not in origin.paths()
    assert "/reuse/unknown" not in origin.paths()
    assert all("alt-svc" not in r.headers for r in (same, other, again))
    lines = [r for r in access_log.records("request") if r.path.startswith("/reuse/")]
    assert len({line.client_port for line in lines}) == 1  # all four on one connection
    assert [line.status for line in lines] == [200, 421, 421, 200]


async def test_an_origin_alt_svc_is_not_passed_on(
    node: Running, pki: E2ePki, origin: RecordingOrigin
) -> None:
    async with _client(pki, node.port) as client:
        answer = await _get(client, "/alt?altsvc=1", "api.test")
    assert answer.status_code == 200
    assert "alt-svc" not in answer.headers
    assert answer.headers["via"].endswith("edgeproxy")
