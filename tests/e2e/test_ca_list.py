"""The CertificateRequest lists the active version's CA names only where the binding says so
(docs/dataplane.md),
as `openssl s_client` reports it."""

from __future__ import annotations

import re

import pytest
from cryptography import x509

from .clients import s_client
from .conftest import Running
from .pki import E2ePki

pytestmark = pytest.mark.slow

HEADING = "Acceptable client certificate CA names"


def oneline(cert: x509.Certificate) -> str:
    """A subject as s_client prints it: `O = Partner A, OU = e2e client CA A` (DER order)."""
    return ", ".join(f"{a.rfc4514_attribute_name} = {a.value!s}" for a in cert.subject)


def ca_names(output: str) -> str:
    """The block s_client prints after HEADING (up to its next section)."""
    assert HEADING in output, output
    block = output.split(HEADING, 1)[1]
    return re.split(r"Client Certificate Types|Requested Signature Algorithms", block)[0]


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
async def test_send_ca_list_edge_names_the_active_cas(
    node: Running, pki: E2ePki, version: str
) -> None:
    run = await s_client(pki, node.port, "api.test", version)
    names = ca_names(run.stdout).split("\n")
    assert oneline(pki.ca_a.cert) in names
    assert oneline(pki.root.cert) in names
    assert oneline(pki.ca_b.cert) not in names  # not in the active version
    assert [n for n in names if n.strip()] == [oneline(pki.ca_a.cert), oneline(pki.root.cert)]


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
async def test_edge_without_send_ca_list_names_no_ca(
    node: Running, pki: E2ePki, version: str
) -> None:
    run = await s_client(pki, node.port, "other.test", version)
    assert HEADING not in run.stdout
    assert "No client certificate CA names sent" in run.stdout
    assert oneline(pki.ca_a.cert) not in run.stdout
