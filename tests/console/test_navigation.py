"""Keyboard use, filters, times and signing out: sign in with the keyboard alone, skip to the
content without changing the page, see where the focus is, filter the CA sets by name and by
network, read a time in the viewer's zone with UTC on hover, and sign out (the old cookie then
reads nothing)."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from .conftest import TOKENS, Pages, make_set

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]
FOCUS_RING = """() => {
    const style = getComputedStyle(document.activeElement);
    return [document.getElementById("main").contains(document.activeElement),
            style.outlineStyle, style.outlineWidth];
}"""
READ_SETS = """async () => (await fetch("/mtls-edge-truststore/v2/ca-sets")).status"""


async def test_keyboard_sign_in_skip_link_filters_times_and_sign_out(pages: Pages) -> None:
    context = await pages.new_context()
    try:
        page = await context.new_page()
        await page.goto("/console/")
        await expect(page.get_by_label("Token")).to_be_focused()
        await page.keyboard.type(TOKENS["editor"][1])
        await page.keyboard.press("Enter")
        await expect(
            page.get_by_role("heading", level=1, name="CA certificate sets")
        ).to_be_focused()
        await expect(page.get_by_text("dev (editor)")).to_be_visible()

        await page.locator(".skip").focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("#main")).to_be_focused()
        assert page.url.endswith("/console/")  # the route did not change
        # The next Tab lands on the page's first control, with a visible focus ring.
        await page.keyboard.press("Tab")
        inside, style, width = await page.evaluate(FOCUS_RING)
        assert inside
        assert style != "none"
        assert width != "0px"

        await make_set(page, "filter-alpha", pages.node.pki.ca_a.pem)
        await make_set(page, "filter-beta", pages.node.pki.ca_b.pem)
        await page.goto("/console/#/")
        await page.get_by_label("Filter by name").fill("filter-a")
        await expect(page.get_by_role("link", name="filter-alpha")).to_be_visible()
        await expect(page.get_by_role("link", name="filter-beta")).to_have_count(0)
        created = page.locator("tr", has_text="filter-alpha").locator("time")
        assert (await created.get_attribute("title") or "").endswith(" UTC")
        assert await created.get_attribute("datetime")
        await page.get_by_label("Filter by name").fill("filter-")
        await page.get_by_label("Network where active").select_option("PRODUCTION")
        await expect(page.get_by_text("No CA set matches this filter.")).to_be_visible()

        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        assert await page.evaluate(READ_SETS) == 401
    finally:
        await context.close()
