"""axe-core (the copy the `axe-playwright-python` wheel ships) on every page of the console, at a
desktop's size (1280 by 800 pixels) and a phone's (390 by 844): no serious or critical violation,
and at either width no page scrolls sideways. Also on the sign-in page, every dialog, and the
activation dialog once it shows an activation's live progress."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import pytest_asyncio
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect

from .conftest import BASE, Pages, activate, api, make_set, serve_bound

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]
AXE = Axe()
Drawn = Callable[[Page], Awaitable[None]]
BOUND_EDGE = "a11y-portal"  # a store-managed edge certificate bound to the set on staging
SIZES = ((1280, 800), (390, 844))


async def serious(page: Page) -> list[str]:
    results = await AXE.run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def set_url(pages: Pages) -> str:
    """A set with version 1 active on staging and a draft version 2, and an edge certificate bound
    to it on staging through the API, so that every page and dialog has something to show (the
    binding's section its settings, its rules and its last change's convergence)."""
    node = pages.node
    made = await make_set(await pages("admin"), "a11y-check", node.pki.ca_a.pem)
    set_id = int(made.rsplit("/", 1)[1])
    version_2 = {"certificates": [{"certificatePem": node.pki.ca_b.pem}]}
    await api(node, "POST", f"{BASE}/ca-sets/{set_id}/versions", version_2)
    await activate(node, set_id, 1)
    await serve_bound(node, "a11y-check", BOUND_EDGE, "a11y.api.test")
    return made


def _pages(set_url: str) -> dict[str, tuple[str, Drawn]]:
    """name → (hash route, what shows the page is drawn)."""

    def heading(text: str) -> Drawn:
        return lambda page: expect(page.get_by_role("heading", name=text).first).to_be_visible()

    def tab_of_set(label: str) -> Drawn:
        current = '.tabs a[aria-current="page"]'
        return lambda page: expect(page.locator(current, has_text=label)).to_be_visible()

    tab = set_url.split("#")[1]
    return {
        "ca-sets": ("/", heading("CA certificate sets")),
        "new-ca-set": ("/ca-sets/new", heading("New CA certificate set")),
        "ca-set": (tab, tab_of_set("Versions")),
        "version": (f"{tab}/versions/1", heading("Chain structure")),
        "diff": (f"{tab}/versions/2/diff", heading("Added (1)")),
        "editor": (f"{tab}/versions/new", heading("Add certificates")),
        "editor-of-a-draft": (f"{tab}/versions/2/edit", heading("Edit version 2")),
        "activations": (f"{tab}/activations", tab_of_set("Activations")),
        "activities": (f"{tab}/activities", tab_of_set("Activities")),
        "associations": (f"{tab}/associations", tab_of_set("Associations")),
        "crls": (f"{tab}/crls", heading("Upload a CRL")),
        "blocked-certificates": (f"{tab}/blocked-certificates", heading("Block a certificate")),
        "expiring": ("/expiring", heading("Expiring certificates")),
        "fleet": ("/fleet", heading("Fleet")),
        "edge-certificates": ("/edge-certificates", heading("Edge certificates")),
        "new-edge-certificate": ("/edge-certificates/new", heading("New edge certificate")),
        "edge-certificate": ("/edge-certificates/api", heading("Mutual authentication")),
        "edge-certificate-bound": (f"/edge-certificates/{BOUND_EDGE}", last_change("COMPLETE")),
    }


def last_change(status: str) -> Drawn:
    """The staging section of a bound edge certificate, with its binding form and the convergence
    view of its last change."""

    async def drawn(page: Page) -> None:
        staging = page.get_by_role("region", name="Mutual authentication on staging")
        await expect(staging.locator(".change-status")).to_contain_text(status)
        await expect(staging.get_by_role("button", name="Save on staging")).to_be_visible()

    return drawn


async def test_every_page_passes_axe_and_fits_a_phone(pages: Pages, set_url: str) -> None:
    page = await pages("admin")
    found: dict[str, list[str]] = {}
    for name, (route, drawn) in _pages(set_url).items():
        for width, height in SIZES:
            await page.set_viewport_size({"width": width, "height": height})
            await page.goto(f"/console/#{route}")
            await drawn(page)
            await page.wait_for_function(
                "!document.getElementById('main').hasAttribute('aria-busy')"
            )
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if overflow > 0:
                found.setdefault(name, []).append(f"{width}px wide: scrolls {overflow}px sideways")
            found.setdefault(name, []).extend(f"{width}px wide: {v}" for v in await serious(page))
    await page.set_viewport_size({"width": 1280, "height": 800})
    assert {k: v for k, v in found.items() if v} == {}


async def test_the_sign_in_page_and_every_dialog_pass_axe(pages: Pages, set_url: str) -> None:
    context = await pages.new_context()
    try:
        page = await context.new_page()
        await page.goto("/console/")
        await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
        assert await serious(page) == []
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_text("Enter a token.")).to_be_visible()
        await page.get_by_label("Token").fill("not-a-token")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("not valid")
        assert await serious(page) == []
    finally:
        await context.close()
    admin = await pages("admin")
    tab = set_url.split("#")[1]
    dialogs = (
        (f"{tab}/versions/1", "Activate version 1"),
        (f"{tab}/versions/1", "Deactivate version 1 on staging"),
        (tab, "Roll back on staging"),
        (tab, "Delete CA set"),
    )
    found: dict[str, list[str]] = {}
    for route, button in dialogs:
        await admin.goto(f"/console/#{route}")
        await admin.get_by_role("button", name=button, exact=True).click()
        await expect(admin.get_by_role("dialog")).to_be_visible()
        found[button] = await serious(admin)
        await admin.keyboard.press("Escape")
        await expect(admin.get_by_role("dialog")).to_have_count(0)
    assert {k: v for k, v in found.items() if v} == {}


async def test_the_activation_dialogs_live_progress_passes_axe(pages: Pages, set_url: str) -> None:
    """The progress view drawn into the dialog (bar, status, the nodes' counts and the convergence
    warning that production has no edge node to wait for), at both sizes."""
    page = await pages("admin")
    await page.goto(f"/console/#{set_url.split('#')[1]}/versions/1")
    await page.get_by_role("button", name="Activate version 1", exact=True).click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_role("button", name="Activate version 1 on production").click()
    await expect(dialog.locator(".activation-status")).to_contain_text("COMPLETE")
    await expect(dialog.locator(".activation-nodes")).to_contain_text("pending: 0")
    await expect(dialog.locator(".warn", has_text="no edge node of PRODUCTION")).to_be_visible()
    found: list[str] = []
    try:
        for width, height in SIZES:
            await page.set_viewport_size({"width": width, "height": height})
            found += [f"{width}px wide: {v}" for v in await serious(page)]
    finally:
        await page.set_viewport_size({"width": 1280, "height": 800})
        await dialog.get_by_role("button", name="Close").click()
    assert found == []


async def test_the_check_has_teeth(pages: Pages) -> None:
    page = await pages.browser.new_page()
    try:
        await page.set_content("<html><body><img src='x.png'><input type='text'></body></html>")
        found = await serious(page)
    finally:
        await page.close()
    assert any(line.startswith("image-alt") for line in found)
    assert any(line.startswith("label") for line in found)
