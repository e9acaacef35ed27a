"""Blocked certificates and authorization rules in the browser (issue 13): an editor blocks
alice's certificate by its fingerprint and the edge refuses her handshake at once; a malformed
fingerprint is refused in words next to the form; a block by issuer and serial number is listed;
the activity is recorded; a viewer sees the list but no button; unblocking lets alice in again.
Every action is a call to /mtls-edge-truststore/v2/ca-sets/{id}/blocked-certificates. A binding's
rules are shown read-only in its mutual authentication section, and saving that section in the
console keeps them."""

from __future__ import annotations

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import hashes
from playwright.async_api import Dialog, expect

from .conftest import (
    ConsoleNode,
    Pages,
    api,
    make_set,
    mtls_get,
    serve_bound,
    until,
    until_converged,
)
from .conftest import activate as activate_by_api

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]
EDGE = "block-portal"
HOST = "block.api.test"  # covered by the edge certificate's *.api.test
LOCAL_TO_UTC = "(local) => new Date(local).toISOString().replace('.000Z', 'Z')"


async def accept(dialog: Dialog) -> None:
    await dialog.accept()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def set_url(pages: Pages, node: ConsoleNode) -> str:
    """The set `blocklist` (Partner A) active on staging and bound to the edge certificate
    `block-portal` of HOST."""
    made = await make_set(await pages("editor"), "blocklist", node.pki.ca_a.pem)
    await activate_by_api(node, int(made.rsplit("/", 1)[1]), 1)
    await serve_bound(node, "blocklist", EDGE, HOST)
    return made


async def test_block_and_unblock_a_client_certificate(
    pages: Pages, node: ConsoleNode, set_url: str
) -> None:
    editor = await pages("editor")
    alice = node.pki.alice.leaf
    fingerprint = alice.fingerprint(hashes.SHA256()).hex()

    await editor.goto(set_url + "/blocked-certificates")
    await expect(editor.get_by_text("No certificate of this set is blocked.")).to_be_visible()
    form = editor.locator("form", has=editor.get_by_role("heading", name="Block a certificate"))
    # A malformed fingerprint: the API's refusal in words, next to the form.
    await form.get_by_label("SHA-256 fingerprint", exact=True).fill("not-a-fingerprint")
    await form.get_by_label("Reason").fill("leaked laptop")
    await form.get_by_role("button", name="Block certificate").click()
    refusal = form.locator(".problem")
    await expect(refusal).to_contain_text("The certificate was not blocked.")
    await expect(refusal).to_contain_text("fingerprint")

    await form.get_by_label("SHA-256 fingerprint", exact=True).fill(fingerprint)
    await form.get_by_role("button", name="Block certificate").click()
    row = editor.locator("tr", has_text=fingerprint)
    await expect(row).to_contain_text("leaked laptop")
    await expect(row).to_contain_text("In force")
    await expect(row).to_contain_text("Until unblocked")

    async def refused() -> bool:
        return await mtls_get(node, "alice", HOST) is None

    await until(refused, "alice's handshake to be refused")

    # By issuer and serial number, with an expiry: listed with both.
    await form.get_by_label("its issuer and serial number").check()
    await form.get_by_label("Issuer", exact=True).fill(
        node.pki.expired.leaf.issuer.rfc4514_string()
    )
    await form.get_by_label("Serial number", exact=True).fill(
        format(node.pki.expired.leaf.serial_number, "x")
    )
    await form.get_by_label("Reason").fill("retired")
    await form.get_by_label("Expires (optional").fill("2099-01-31T12:00")
    await form.get_by_role("button", name="Block certificate").click()
    serial_row = editor.locator("tr", has_text="retired")
    await expect(serial_row).to_contain_text(format(node.pki.expired.leaf.serial_number, "x"))
    # The local time typed, sent and shown back as UTC.
    sent = await editor.evaluate(LOCAL_TO_UTC, "2099-01-31T12:00")
    await expect(serial_row.locator("time").first).to_have_attribute("datetime", sent)

    await editor.get_by_role("link", name="Activities").click()
    await expect(editor.locator("tr", has_text="Blocked a certificate").first).to_contain_text(
        "dev"
    )

    # A viewer reads the list, with no button to change it.
    viewer = await pages("viewer")
    await viewer.goto(set_url + "/blocked-certificates")
    await expect(viewer.locator("tr", has_text=fingerprint)).to_be_visible()
    await expect(viewer.get_by_role("button", name="Block certificate")).to_have_count(0)
    await expect(viewer.get_by_role("button", name="Unblock", exact=False)).to_have_count(0)

    await editor.goto(set_url + "/blocked-certificates")
    editor.once("dialog", accept)
    await row.get_by_role("button", name="Unblock").click()
    await expect(row).to_have_count(0)

    async def accepted() -> bool:
        return await mtls_get(node, "alice", HOST) is not None

    await until(accepted, "alice to be accepted again")


RULES = {
    "mode": "enforce",
    "default": "deny",
    "rules": [
        {
            "pathPrefix": "/api/",
            "methods": ["GET"],
            "allow": [{"sanUri": "spiffe://partner-a/*"}],
            "deny": [{"subject": {"CN": "old-alice"}}],
        }
    ],
}


async def test_a_bindings_rules_are_shown_and_kept_when_the_section_is_saved(
    pages: Pages, node: ConsoleNode, set_url: str
) -> None:
    binding = f"/edge/v1/edge-certificates/{EDGE}/mutual-authentication/STAGING"
    change = await api(node, "PUT", binding, {"caSetName": "blocklist", "authorization": RULES})
    await until_converged(node, change)
    admin = await pages("admin")
    await admin.goto(f"/console/#/edge-certificates/{EDGE}")
    staging = admin.get_by_role("region", name="Mutual authentication on staging")
    rules = staging.get_by_role("table", name="Authorization rules on staging")
    await expect(rules).to_contain_text("1. /api/")
    await expect(rules).to_contain_text("sanUri spiffe://partner-a/*")
    await expect(rules).to_contain_text("subject CN=old-alice")
    await expect(staging.get_by_text("A request that matches no rule: denied")).to_be_visible()

    await staging.get_by_label("Send CA list to client").check()
    await staging.get_by_label("OCSP", exact=True).check()
    await staging.get_by_role("button", name="Save on staging").click()
    # Drawn again once the change converged: the CA list sent, the rules still there.
    await expect(staging.locator(".facts")).to_contain_text("Send CA list to clientYes")
    await expect(staging.locator(".facts")).to_contain_text("OCSPon (soft)")
    await expect(rules).to_contain_text("sanUri spiffe://partner-a/*")
    saved = await api(node, "GET", binding)
    assert saved["authorization"] == RULES
