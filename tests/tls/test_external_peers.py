"""Real third-party TLS clients against the adapter: curl and `openssl s_client` (processes)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from edgeproxy.tls.session import Reason, VerifyResult
from edgeproxy.tls.trust import TrustState

from .conftest import API, Pki

pytestmark = pytest.mark.slow


async def run(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(20):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


@pytest.fixture
def files(pki: Pki, tmp_path: Path) -> dict[str, str]:
    paths = {"ca": tmp_path / "server-ca.pem", "good": tmp_path / "good.pem"}
    pki.server_ca.cert_pem.write_to_path(str(paths["ca"]))
    pki.good.private_key_and_cert_chain_pem.write_to_path(str(paths["good"]))
    return {k: str(v) for k, v in paths.items()}


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
async def test_curl(pki: Pki, start: Callable[..., Any], files: dict[str, str]) -> None:
    server = await start()
    base = ["curl", "-sS", "--http1.1", "--max-time", "10", "--cacert", files["ca"]]
    base += ["--resolve", f"{API}:{server.port}:127.0.0.1", f"https://{API}:{server.port}/"]
    code, out = await run(*base[:-1], "--cert", files["good"], "--key", files["good"], base[-1])
    assert (code, out) == (0, "ok")
    [(session, _)] = server.observer.done
    assert session.verify_result is VerifyResult.SUCCESS
    assert session.tls_version == "TLSv1.3"
    code, out = await run(*base)  # no client certificate
    assert code != 0
    await server.observer.wait_failed()
    assert server.observer.failed[0][0] is Reason.NO_CERTIFICATE


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize("send", [True, False])
@pytest.mark.parametrize("tls", ["-tls1_2", "-tls1_3"])
async def test_s_client_sees_the_ca_list_only_when_configured(
    pki: Pki,
    start: Callable[..., Any],
    state_for: Callable[..., TrustState],
    files: dict[str, str],
    send: bool,
    tls: str,
) -> None:
    server = await start(state_for(send_ca_list=send))
    code, out = await run(
        "openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-servername", API,
        "-CAfile", files["ca"], "-cert", files["good"], "-key", files["good"], tls,
    )  # fmt: skip
    assert code == 0, out
    assert "Verify return code: 0 (ok)" in out
    if send:
        names = out.split("Acceptable client certificate CA names", 1)[1].split("---", 1)[0]
        client_ca = x509.load_pem_x509_certificate(pki.client_ca.cert_pem.bytes())
        [ou] = client_ca.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        assert isinstance(ou.value, str)
        assert f"OU = {ou.value}" in names
    else:
        assert "No client certificate CA names sent" in out
    async with asyncio.timeout(5):
        while not server.observer.done:
            await asyncio.sleep(0.01)
