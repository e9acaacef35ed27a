"""Safe trust changes in the browser (issue 14): a version's differences from another one (the API's
diff: certificates added, removed and unchanged, and the settings that changed), its chain structure
with an intermediate under its root, and a rollback from the set's page: refused in words when no
version was active before, then back to version 1 through the normal activation; an editor gets no
rollback button."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from playwright.async_api import expect

from .conftest import ConsoleNode, Pages, make_set
from .conftest import activate as activate_by_api

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def test_diff_chain_structure_and_rollback(pages: Pages, node: ConsoleNode) -> None:
    page = await pages("admin")
    pki = node.pki
    set_url = await make_set(page, "rollbacks", pki.ca_a.pem)
    set_id = int(set_url.rsplit("/", 1)[1])

    # Version 2: Partner A's CA out, Partner C's root and intermediate in, the root required and
    # SHA-1 allowed.
    await page.goto(set_url + "/versions/new")
    await page.get_by_label("Paste certificate PEM(s) here").fill(
        pki.root.pem + pki.intermediate.pem
    )
    await page.get_by_label("Require root certificate").check()
    await page.get_by_label("Allow SHA-1 (insecure)").check()
    await page.get_by_role("button", name="Validate and add to version").click()
    await expect(page.get_by_text("2 certificate(s) validated and added")).to_be_visible()
    await page.get_by_role("button", name="Create version").click()
    await expect(page.get_by_role("heading", level=2, name="Version 2", exact=True)).to_be_visible()
    facts = page.locator(".facts")
    await expect(facts).to_contain_text("Require root certificateYes")
    await expect(facts).to_contain_text("Allow SHA-1 (insecure)Yes")
    root_print = pki.root.cert.fingerprint(hashes.SHA256()).hex()
    await expect(page.locator("tr", has_text=root_print)).to_contain_text(
        pki.root.cert.subject.rfc4514_string()
    )
    # The chain structure: the intermediate listed under the root that issued it.
    root = page.locator(".chain > li", has_text="Root (self-signed)")
    await expect(root.locator("li")).to_contain_text("Intermediate")
    await expect(root.locator("li")).to_contain_text(pki.intermediate.cert.subject.rfc4514_string())

    await page.get_by_role("link", name="Compare with another version").click()
    await expect(page.get_by_role("heading", name="Version 2: what changed")).to_be_visible()
    await expect(page.get_by_label("Compare with")).to_have_value("1")
    await expect(
        page.get_by_text("2 added, 1 removed, 0 unchanged, 2 setting(s) changed")
    ).to_be_visible()
    await expect(page.locator(".diff-removed")).to_contain_text(
        pki.ca_a.cert.subject.rfc4514_string()
    )
    await expect(page.locator(".diff-added tbody tr")).to_have_count(2)
    flags = page.locator(".diff-flags tbody tr")
    await expect(flags).to_have_count(2)
    await expect(flags.filter(has_text="Require root certificate")).to_contain_text("NoYes")
    await expect(flags.filter(has_text="Allow SHA-1 (insecure)")).to_contain_text("NoYes")

    # Rollback with only version 1 ever active on staging: nothing to go back to, in words.
    await activate_by_api(node, set_id, 1)
    await page.goto(set_url)
    await page.get_by_role("button", name="Roll back on staging").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_role("button", name="Roll back on staging").click()
    refusal = dialog.locator(".problem")
    await expect(refusal).to_contain_text("rollbacks was not rolled back on staging.")
    await expect(refusal).to_contain_text("no version was active on STAGING before version 1")
    await dialog.get_by_role("button", name="Close").click()

    # Version 2 active, then rolled back: version 1 again, through an activation that completes.
    await activate_by_api(node, set_id, 2)
    await page.reload()
    await expect(page.locator(".page-head .badge", has_text="Staging v2")).to_be_visible()
    await page.get_by_role("button", name="Roll back on staging").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_role("button", name="Roll back on staging").click()
    await expect(dialog.locator(".rollback-target")).to_have_text(
        "Rolling staging back from version 2 to version 1."
    )
    await expect(dialog.locator(".activation-status")).to_contain_text("COMPLETE")
    await dialog.get_by_role("button", name="Close").click()
    await expect(page.locator(".page-head .badge", has_text="Staging v1")).to_be_visible()
    await page.get_by_role("link", name="Activities").click()
    await expect(page.locator("tr", has_text="Activated a version (version 1)")).to_have_count(2)

    # Rollback is an admin's: an editor sees the set without the button.
    editor = await pages("editor")
    await editor.goto(set_url)
    await expect(editor.get_by_role("link", name="Version 2")).to_be_visible()
    await expect(editor.get_by_role("button", name="Roll back on staging")).to_have_count(0)
