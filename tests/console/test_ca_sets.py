"""The set's other actions in the browser: clone a version into an editable copy (saved unchanged
it is refused as a duplicate, in words), upload a CRL and delete it, and delete a set: refused in
words while a version is active, done (asynchronously) once nothing holds it. And the version
editor's "browse" file picker: each certificate of the picked files becomes its own row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from playwright.async_api import Dialog, expect

from support.pki import Pki, build_crl, trustme_issuer

from .conftest import BASE, Pages, api, make_set

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def accept(dialog: Dialog) -> None:
    await dialog.accept()


async def test_clone_crls_and_delete(pages: Pages) -> None:
    page = await pages("admin")
    ca = pages.node.pki.ca_b
    set_url = await make_set(page, "lifecycle", ca.pem)

    # Clone version 1: an editable version 2 with the same certificate, in the editor.
    await page.get_by_role("button", name="Clone to a new version").click()
    await expect(page.get_by_role("heading", level=2, name="Edit version 2")).to_be_visible()
    await expect(page.locator(".cert-row")).to_have_count(1)
    # Unchanged, it would duplicate version 1: the API says so next to the button.
    await page.get_by_role("button", name="Save version").click()
    await expect(page.get_by_role("alert").filter(has_text="already holds")).to_be_visible()
    await page.get_by_label("Paste certificate PEM(s) here").fill(pages.node.pki.ca_a.pem)
    await page.get_by_role("button", name="Validate and add to version").click()
    await expect(page.get_by_text("1 certificate(s) validated and added")).to_be_visible()
    await page.get_by_role("button", name="Save version").click()
    await expect(page.get_by_role("heading", level=2, name="Version 2", exact=True)).to_be_visible()

    # A CRL of the set's CA: uploaded, listed in effect, deleted.
    now = datetime.now(UTC)
    crl = build_crl(
        trustme_issuer(ca.ca),
        this_update=now - timedelta(hours=1),
        next_update=now + timedelta(days=7),
    )
    await page.goto(set_url + "/crls")
    await page.get_by_label("CRL PEM").fill(crl.public_bytes(Encoding.PEM).decode())
    await page.get_by_role("button", name="Upload CRL").click()
    row = page.locator("tr", has_text="e2e client CA B")
    await expect(row).to_contain_text("In effect")
    page.once("dialog", accept)
    await row.get_by_role("button", name="Delete the CRL of").click()
    await expect(page.get_by_text("No CRL uploaded for this set.")).to_be_visible()

    # Delete the set: refused while version 1 is active on staging, with the reason in words.
    await page.goto(set_url + "/versions/1")
    await page.get_by_role("button", name="Activate version 1").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_role("button", name="Activate version 1 on staging").click()
    await expect(dialog.locator(".activation-status")).to_contain_text("COMPLETE")
    await dialog.get_by_role("button", name="Close").click()
    await page.goto(set_url)
    await page.get_by_role("button", name="Delete CA set").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete lifecycle").click()
    refusal = page.locator(".problem")
    await expect(refusal).to_contain_text("The CA set was not deleted.")
    await expect(refusal).to_contain_text("STAGING")

    # Deactivate, then the deletion goes through and the set is history.
    await page.goto(set_url + "/versions/1")
    await page.get_by_role("button", name="Deactivate version 1 on staging").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("I understand", exact=False).check()
    await dialog.get_by_role("button", name="Deactivate version 1 on staging").click()
    await expect(dialog.locator(".activation-status")).to_contain_text("COMPLETE")
    await dialog.get_by_role("button", name="Close").click()
    await page.goto(set_url)
    await page.get_by_role("button", name="Delete CA set").click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete lifecycle").click()
    await expect(page.get_by_role("status")).to_contain_text("Deletion of lifecycle: COMPLETE")
    await page.goto("/console/#/")
    await expect(page.get_by_role("heading", name="CA certificate sets")).to_be_visible()
    await expect(page.get_by_role("link", name="lifecycle")).to_have_count(0)


async def test_browsed_files_become_one_row_per_certificate(pages: Pages, tmp_path: Path) -> None:
    """Two files picked with the file input (not dropped): a bundle of two CAs and a file of one;
    three rows, each named after its file, validated and created as one version."""
    node = pages.node
    made = await api(node, "POST", f"{BASE}/ca-sets", {"caSetName": "browsed"})
    bundle = tmp_path / "partners-bundle.pem"
    bundle.write_text(node.pki.ca_a.pem + node.pki.ca_b.pem)
    single = tmp_path / "browsed-ca.crt"
    single.write_text(Pki().ca("Browsed CA").pem)
    page = await pages("editor")
    await page.goto(f"/console/#/ca-sets/{made['caSetId']}/versions/new")
    await expect(page.get_by_role("heading", level=2, name="Create version 1")).to_be_visible()
    await page.get_by_label("Drop or browse files to upload").set_input_files([bundle, single])
    rows = page.locator(".cert-row")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(0)).to_contain_text("partners-bundle.pem, certificate 1")
    await expect(rows.nth(1)).to_contain_text("partners-bundle.pem, certificate 2")
    await expect(rows.nth(2)).to_contain_text("browsed-ca.crt")
    await page.get_by_role("button", name="Validate and add to version").click()
    await expect(page.get_by_text("3 certificate(s) validated and added")).to_be_visible()
    await expect(rows.filter(has_text="Partner A")).to_have_count(1)
    await expect(rows.filter(has_text="Partner B")).to_have_count(1)
    await expect(rows.filter(has_text="Browsed CA")).to_have_count(1)
    await page.get_by_role("button", name="Create version").click()
    await expect(page.get_by_role("heading", level=2, name="Version 1", exact=True)).to_be_visible()
    version = await api(node, "GET", f"{BASE}/ca-sets/{made['caSetId']}/versions/1")
    assert len(version["certificates"]) == 3
