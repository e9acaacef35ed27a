"""The conformance matrix (docs/dataplane.md "HTTP/2"): every kind of client, over HTTP/1.1 and
HTTP/2, gets the same outcome, and the origin sees the same request, identity headers included."""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.origin import RecordingOrigin

from .clients import curl
from .conftest import Running
from .pki import Client, E2ePki, crl_revoking

pytestmark = pytest.mark.slow
IDENTITY = ("X-Client-Cert-Verify", "X-Forwarded-Client-Cert", "Client-Cert", "Client-Cert-Chain")
# (status, requests that reached the origin, the identity fields it saw, the problem body)
Outcome = tuple[int | None, int, tuple[tuple[str, tuple[str, ...]], ...] | None, Any]

# (case, client attribute of E2ePki or None, host, expected status: None = handshake refused)
CASES = [
    ("no certificate", None, "api.test", None),
    ("untrusted CA", "bob", "api.test", None),
    ("revoked", "alice", "api.test", None),
    ("denied", "bob", "other.test", 403),
    ("denied without certificate", None, "other.test", 403),
    ("valid", "alice", "api.test", 200),
    ("forwarded unverified", "bob", "forward.test", 200),
]


async def _outcome(
    node: Running, pki: E2ePki, origin: RecordingOrigin, client: Client | None, host: str,
    protocol: str, path: str,
) -> Outcome:  # fmt: skip
    forged = {"X-Client-Cert-Verify": "SUCCESS", "Client_Cert": ":Zm9yZ2Vk:"}
    _run, status, body = await curl(
        pki, node.port, host, client, path, headers=forged, extra=(protocol,)
    )
    seen = [r for r in origin.requests if r.path == path]
    at_origin = tuple(
        (name, tuple(seen[0].all(name))) for name in IDENTITY
    ) if seen else None  # fmt: skip
    problem = json.loads(body) if status is not None and status >= 400 else None
    return status, len(seen), at_origin, problem


@pytest.mark.parametrize(("case", "who", "host", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_http1_and_http2_get_the_same_outcome(
    node: Running, pki: E2ePki, origin: RecordingOrigin, case: str, who: str | None, host: str,
    expected: int | None,
) -> None:  # fmt: skip
    if case == "revoked":
        before = (await node.status.json("/status"))[1]["trust"]["revision"]
        crl = crl_revoking(pki.ca_a, pki.alice.leaf)
        await node.admin.call(
            "POST", f"/ca-sets/{node.set_id}/crls", {"crlPem": crl}, expect=(201,)
        )
        await node.status.wait_revision_after(before)
    client = None if who is None else getattr(pki, who)
    h1 = await _outcome(node, pki, origin, client, host, "--http1.1", "/m/h1")
    h2 = await _outcome(node, pki, origin, client, host, "--http2", "/m/h2")
    assert h1 == h2
    status, reached, at_origin, _ = h2
    assert status == expected
    assert reached == (1 if expected == 200 else 0)
    if at_origin is not None:
        verify = dict(at_origin)["X-Client-Cert-Verify"]
        assert verify == (("SUCCESS",) if case == "valid" else ("FAILED:unknown_ca",))
        assert dict(at_origin)["Client-Cert"] != (":Zm9yZ2Vk:",)
