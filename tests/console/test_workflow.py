"""The documents' workflow end to end in a real Chromium against a real node: sign in, create a
set, drop a bundle, see the leaf refused next to its row, remove it, create the version, activate it
on staging and watch it reach COMPLETE; then a real mTLS client of the set's CA is accepted and one
of another CA refused, first through the node's TOML binding (edge certificate `api` →
`partners`), then through an edge certificate made and bound to the set in the console."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from playwright.async_api import Page, expect

from .conftest import BOUND_SET, PORTAL_HOST, ConsoleNode, Pages, mtls_get, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]
PORTAL = "partner-portal"


async def drop_file(page: Page, name: str, text: str) -> None:
    """What the browser does when a file is dropped on the drop zone: a `drop` event whose
    DataTransfer holds the file."""
    transfer = await page.evaluate_handle(
        """([name, text]) => {
            const data = new DataTransfer();
            data.items.add(new File([text], name, { type: "application/x-pem-file" }));
            return data;
        }""",
        [name, text],
    )
    await page.dispatch_event(".drop", "drop", {"dataTransfer": transfer})


async def test_the_documents_workflow_from_sign_in_to_an_accepted_client(
    pages: Pages, node: ConsoleNode, tmp_path: Path
) -> None:
    page = await pages("admin")
    # Bound in the node's TOML but no set yet: the edge fails closed.
    assert await mtls_get(node, "alice") is None

    await page.goto("/console/#/")
    await page.get_by_role("link", name="New CA certificate set").click()
    await expect(page.get_by_text("you can't change it")).to_be_visible()
    await page.get_by_label("Name").fill("no")
    await expect(page.locator("#name-error")).to_have_text("This name breaks the rules above.")
    await page.get_by_label("Name").fill(BOUND_SET)
    await page.get_by_label("Description (optional)").fill("Partner client CAs")
    await page.get_by_role("button", name="Submit").click()
    await expect(page.get_by_role("heading", level=1, name=BOUND_SET)).to_be_visible()
    await expect(page.get_by_text("This CA set has no version yet")).to_be_visible()

    # Create version 1: a bundle with the partner CA and, by mistake, a client's leaf.
    await page.get_by_role("link", name="Create version 1").click()
    bundle = node.pki.ca_a.pem + node.pki.alice.leaf.public_bytes(Encoding.PEM).decode()
    await drop_file(page, "partner-bundle.pem", bundle)
    rows = page.locator(".cert-row")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(1)).to_contain_text("partner-bundle.pem, certificate 2")
    await page.get_by_role("button", name="Validate and add to version").click()
    leaf = page.locator(".cert-row", has_text="CN=alice")
    await expect(leaf.locator(".cert-errors")).to_contain_text("CA")
    await expect(page.locator(".cert-row.has-errors")).to_have_count(1)
    await expect(page.get_by_text("the certificates were not added")).to_be_visible()
    await screenshot(page, "version-editor", tmp_path)

    # Fix it: remove the leaf, validate again, create the version.
    await leaf.get_by_role("button", name="Remove").click()
    await page.get_by_role("button", name="Validate and add to version").click()
    await expect(page.get_by_text("1 certificate(s) validated and added")).to_be_visible()
    await page.get_by_role("button", name="Create version").click()

    # The version: certificates and the chain structure.
    await expect(page.get_by_role("heading", level=2, name="Version 1", exact=True)).to_be_visible()
    await expect(page.locator(".chain")).to_contain_text("Root (self-signed)")
    await expect(page.locator(".chain")).to_contain_text("Partner A")

    # Activate on staging, watch it reach COMPLETE.
    await page.get_by_role("button", name="Activate version 1").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_text("never been active on staging")).to_be_visible()
    await dialog.get_by_role("button", name="Activate version 1 on staging").click()
    status = dialog.locator(".activation-status")
    await expect(status).to_contain_text("COMPLETE", timeout=30_000)
    await expect(dialog.locator("progress")).to_have_attribute("value", "100")
    # The convergence the API reports: the one edge node applied it, none pending or lost.
    await expect(dialog.locator(".activation-nodes")).to_contain_text("applied: 1 (console-edge)")
    await expect(dialog.locator(".activation-nodes")).to_contain_text("pending: 0")
    await screenshot(page, "activation", tmp_path)
    await dialog.get_by_role("button", name="Close").click()
    await expect(page.get_by_text("Frozen: this version has been activated")).to_be_visible()
    await expect(page.locator(".badge", has_text="Active on staging")).to_be_visible()
    await screenshot(page, "version", tmp_path)

    # The edge enforces it: a client of Partner A is accepted, one of Partner B refused.
    accepted = await mtls_get(node, "alice")
    assert accepted is not None
    assert (accepted.status, accepted.body) == (200, b"origin says hello\n")
    assert await mtls_get(node, "bob") is None

    await page.goto("/console/#/")
    await expect(page.locator("tr", has_text=BOUND_SET)).to_contain_text("Staging v1")
    await screenshot(page, "ca-sets", tmp_path)

    # Set up mutual authentication: an edge certificate made here, bound to the set on staging.
    await page.get_by_role("link", name="Edge certificates").click()
    await page.get_by_role("link", name="New edge certificate").click()
    await page.get_by_label("Name", exact=True).fill(PORTAL)
    await page.get_by_label("Hostnames").fill(PORTAL_HOST)
    await page.get_by_label("Origin").fill(node.origin_url)
    await page.get_by_label("Certificate chain PEM").fill(node.pki.server_chain.read_text())
    await page.get_by_label("Private key PEM").fill(node.pki.server_key.read_text())
    await page.get_by_role("button", name="Create edge certificate").click()
    await expect(page.get_by_role("heading", level=1, name=PORTAL)).to_be_visible()
    staging = page.get_by_role("region", name="Mutual authentication on staging")
    await staging.get_by_label("Certificate set").select_option(BOUND_SET)
    await staging.get_by_label("Send CA list to client").check()
    await staging.get_by_role("button", name="Bind on staging").click()
    await expect(staging.locator(".change-status")).to_contain_text("COMPLETE", timeout=30_000)
    await expect(staging.locator(".change-nodes")).to_contain_text("applied: 1 (console-edge)")
    # Drawn again when done: the binding as it now is.
    await expect(staging.get_by_role("term").filter(has_text="Certificate set")).to_be_visible()
    await expect(staging.get_by_role("definition").filter(has_text=BOUND_SET)).to_be_visible()
    await staging.scroll_into_view_if_needed()
    await screenshot(page, "mutual-authentication", tmp_path)

    # The node serves the new edge certificate with that binding: Partner A in, Partner B out.
    portal = await mtls_get(node, "alice", PORTAL_HOST)
    assert portal is not None
    assert (portal.status, portal.body) == (200, b"origin says hello\n")
    assert await mtls_get(node, "bob", PORTAL_HOST) is None


async def test_a_version_that_refuses_clients_seen_needs_an_acknowledgement(
    pages: Pages, node: ConsoleNode
) -> None:
    """Version 2 trusts Partner B only: the edge has seen alice (Partner A) accepted, so the
    dialog names her and the API refuses until the operator acknowledges it."""
    page = await pages("admin")
    await page.goto("/console/#/")
    await page.get_by_role("link", name=BOUND_SET).click()
    await page.get_by_role("link", name="New version").click()
    await page.get_by_label("Paste certificate PEM(s) here").fill(node.pki.ca_b.pem)
    await page.get_by_role("button", name="Validate and add to version").click()
    await expect(page.get_by_text("1 certificate(s) validated and added")).to_be_visible()
    await page.get_by_role("button", name="Create version").click()
    heading = page.get_by_role("heading", level=2, name="Version 2", exact=True)
    await expect(heading).to_be_visible()
    await page.get_by_role("button", name="Activate version 2").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_text("seen there would be refused")).to_contain_text("CN=alice")
    # The API's diff from the active version 1: Partner A's CA is dropped.
    dropped = f"clients issued by {node.pki.ca_a.cert.subject.rfc4514_string()} would lose access"
    await expect(dialog.get_by_text(dropped)).to_be_visible()
    await dialog.get_by_role("button", name="Activate version 2 on staging").click()
    await expect(dialog.locator(".problem")).to_contain_text("Version 2 was not activated")
    await expect(dialog.locator(".refused-clients")).to_contain_text("CN=alice")
    anyway = dialog.get_by_role("button", name="Activate version 2 on staging anyway")
    await dialog.get_by_label(re.compile("^I accept that these clients")).check()
    await anyway.click()
    await expect(dialog.locator(".activation-status")).to_contain_text("COMPLETE")
    await dialog.get_by_role("button", name="Close").click()
    assert await mtls_get(node, "alice") is None
    accepted = await mtls_get(node, "bob")
    assert accepted is not None
    assert accepted.status == 200


async def test_deactivation_asks_for_confirmation_names_the_users_and_needs_force(
    pages: Pages, node: ConsoleNode
) -> None:
    page = await pages("admin")
    await page.goto("/console/#/")
    await page.get_by_role("link", name=BOUND_SET).click()
    await page.get_by_role("link", name="Version 2").click()
    await page.get_by_role("button", name="Deactivate version 2 on staging").click()
    dialog = page.get_by_role("dialog")
    go = dialog.get_by_role("button", name="Deactivate version 2 on staging")
    await go.click()
    await expect(dialog.get_by_role("alert")).to_have_text("Tick the confirmation first.")
    await dialog.get_by_label(re.compile("^I understand")).check()
    await go.click()
    # Without force: refused while the node's edge certificate binds the set, in words.
    refusal = dialog.locator(".problem")
    await expect(refusal).to_contain_text("refuse every client")
    await expect(refusal).to_contain_text("edge certificate api on node console-edge")
    await dialog.get_by_label(re.compile("^Force")).check()
    await go.click()
    await expect(dialog.locator(".activation-status")).to_contain_text("COMPLETE")
    await dialog.get_by_role("button", name="Close").click()
    await expect(page.locator(".badge", has_text="Inactive on staging")).to_be_visible()
    assert await mtls_get(node, "bob") is None  # fail closed: no active version
