"""Expiry in the browser: certificates that expire within 30, 60 or 90 days across every set (and
the CA sets list's warning for the nearest), a version activated on production from its actions,
and a CRL that passes its next update flagged as expired; an already expired CRL is refused in
words."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from playwright.async_api import Page, expect

from support.pki import Pki, build_crl

from .conftest import Pages, make_set, until

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]
DAY = timedelta(days=1)
CRL_LIFE = timedelta(seconds=8)  # long enough to be uploaded, short enough to wait out


async def test_expiring_certificates_across_sets(pages: Pages) -> None:
    pki = Pki()
    soon = pki.ca("Soon CA", valid=(-DAY, 20 * DAY))
    later = pki.ca("Later CA", valid=(-DAY, 75 * DAY))
    page = await pages("admin")
    set_url = await make_set(page, "expiry-watch", soon.pem + later.pem)

    # Version 1 on production, from the version's actions.
    await page.goto(set_url + "/versions/1")
    await page.get_by_role("button", name="Activate version 1", exact=True).click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_role("button", name="Activate version 1 on production").click()
    await expect(dialog.locator(".activation-status")).to_contain_text(
        "Activation on production: COMPLETE"
    )
    await dialog.get_by_role("button", name="Close").click()
    await expect(page.locator(".badge", has_text="Active on production")).to_be_visible()

    await page.goto("/console/#/")
    warnings = page.locator("tr", has_text="expiry-watch").locator(".warnings")
    await expect(warnings).to_contain_text(re.compile(r"v1: CN=Soon CA expires in \d+ days"))
    await expect(warnings).not_to_contain_text("Later CA")

    await page.get_by_role("link", name="Expiring certificates").click()
    rows = page.locator("tbody tr", has=page.get_by_role("link", name="expiry-watch v1"))
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("CN=Soon CA")
    await expect(rows).to_contain_text("(active on production)")
    await page.get_by_label("Expiring within").select_option("60")
    await expect(rows).to_have_count(1)
    await page.get_by_label("Expiring within").select_option("90")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(1)).to_contain_text("CN=Later CA")


async def upload_crl(page: Page, pem: str) -> None:
    await page.get_by_label("CRL PEM").fill(pem)
    await page.get_by_role("button", name="Upload CRL").click()


async def test_an_expired_crl_is_flagged_and_one_expired_already_is_refused(pages: Pages) -> None:
    pki = Pki()
    ca = pki.ca("Revoking CA")
    page = await pages("editor")
    set_url = await make_set(page, "crl-expiry", ca.pem)
    await page.goto(set_url + "/crls")

    now = datetime.now(UTC)
    stale = build_crl(ca, this_update=now - 2 * DAY, next_update=now - DAY)
    await upload_crl(page, stale.public_bytes(Encoding.PEM).decode())
    refusal = page.locator("form .problem")
    await expect(refusal).to_contain_text("The CRL was not uploaded.")
    await expect(refusal).to_contain_text("expired")

    now = datetime.now(UTC)
    brief = build_crl(ca, this_update=now - DAY, next_update=now + CRL_LIFE)
    await upload_crl(page, brief.public_bytes(Encoding.PEM).decode())
    row = page.locator("tr", has_text="CN=Revoking CA")
    await expect(row).to_contain_text("In effect")
    await expect(row).not_to_contain_text("Expired")

    async def flagged() -> bool:
        await page.reload()
        await row.wait_for()
        return "Expired: past its next update" in await row.inner_text()

    await until(flagged, "the CRL to be flagged as expired", tries=40, pause=0.5)
    await expect(row.locator(".warn")).to_contain_text("upload a current one")
