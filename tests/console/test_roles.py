"""Role-aware pages and the API's guard behind them: a viewer sees no button it cannot use (on the
CA sets' pages, the edge certificates' and the fleet's) and a forged write is refused; an editor
cannot activate, and can rotate an edge certificate but not change its mutual authentication; a
POST with the cookie but no CSRF token is refused; a private key pasted into the editor is refused
in the browser and never sent."""

from __future__ import annotations

import pytest
import pytest_asyncio
from playwright.async_api import Page, Request, expect

from .conftest import BASE, Pages, activate, api, make_set, serve_bound

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

NETWORKS = ("staging", "production")
EDGE = "roles-portal"  # a store-managed edge certificate, bound on staging
WRITE_BUTTONS = (
    "New CA certificate set",
    "New version",
    "Create version 1",
    "Clone",
    "Delete CA set",
    "Edit version",
    "Delete version",
    "Clone to a new version",
    "Upload CRL",
    "New edge certificate",
    "Roll back on staging",
    "Roll back on production",
    "Block certificate",
    "Create edge certificate",
    "Rotate",
    *(f"{verb} on {where}" for verb in ("Bind", "Save", "Unbind") for where in NETWORKS),
)
FORGE = """async ([csrf]) => {
    const headers = { "Content-Type": "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    const reply = await fetch("/mtls-edge-truststore/v2/ca-sets", {
        method: "POST", headers, credentials: "same-origin",
        body: JSON.stringify({ caSetName: "forged-by-page" }),
    });
    return [reply.status, (await reply.json()).type];
}"""
CSRF = """async () => (await (await fetch("/console/session")).json()).csrfToken"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_set(pages: Pages) -> str:
    return await make_set(await pages("editor"), "roles-check", pages.node.pki.ca_b.pem)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def bound_edge(pages: Pages) -> str:
    """The page of an edge certificate made in the store and bound on staging (through the API):
    an admin sees there the rotation form and the binding's forms."""
    node = pages.node
    made = await api(node, "POST", f"{BASE}/ca-sets", {"caSetName": "roles-edge"})
    version = {"certificates": [{"certificatePem": node.pki.ca_a.pem}]}
    await api(node, "POST", f"{BASE}/ca-sets/{made['caSetId']}/versions", version)
    await activate(node, made["caSetId"], 1)
    await serve_bound(node, "roles-edge", EDGE, "roles.api.test")
    return f"/console/#/edge-certificates/{EDGE}"


async def no_write_buttons(page: Page) -> None:
    for name in WRITE_BUTTONS:
        await expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
        await expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    await expect(page.get_by_role("button", name="Activate version 1")).to_have_count(0)


async def test_a_viewer_sees_no_write_button_and_a_forged_write_is_refused(
    pages: Pages, shared_set: str, bound_edge: str
) -> None:
    viewer = await pages("viewer")
    await viewer.goto("/console/#/")
    await expect(viewer.get_by_role("link", name="roles-check")).to_be_visible()
    await no_write_buttons(viewer)
    await viewer.goto(shared_set)
    await expect(viewer.get_by_role("link", name="Version 1")).to_be_visible()
    await no_write_buttons(viewer)
    await viewer.get_by_role("link", name="Version 1").click()
    await expect(viewer.locator(".chain")).to_be_visible()
    await no_write_buttons(viewer)
    await viewer.get_by_role("link", name="CRLs").click()
    await expect(viewer.get_by_text("No CRL uploaded for this set.")).to_be_visible()
    await no_write_buttons(viewer)
    await viewer.get_by_role("link", name="Blocked certificates").click()
    await expect(viewer.get_by_text("No certificate of this set is blocked.")).to_be_visible()
    await no_write_buttons(viewer)
    await viewer.get_by_role("link", name="Fleet").click()
    await expect(viewer.locator('tr[data-node="console-edge"]')).to_be_visible()
    await no_write_buttons(viewer)
    # Last, a page no other test opens: a later goto to the hash a page is on draws nothing anew.
    await viewer.get_by_role("link", name="Edge certificates", exact=True).click()
    await expect(viewer.locator(f'tr[data-edge="{EDGE}"]')).to_contain_text("roles-edge")
    await no_write_buttons(viewer)
    await viewer.get_by_role("link", name=EDGE).click()
    staging = viewer.get_by_role("region", name="Mutual authentication on staging")
    await expect(staging.locator(".change-status")).to_contain_text("COMPLETE")
    await expect(
        viewer.get_by_role("region", name="Mutual authentication on production")
    ).to_be_visible()
    await no_write_buttons(viewer)
    await expect(viewer.locator("#main form")).to_have_count(0)
    # The page could forge the request the hidden button would send: the API refuses it.
    csrf = await viewer.evaluate(CSRF)
    status, problem = await viewer.evaluate(FORGE, [csrf])
    assert (status, problem.rsplit("/", 1)[1]) == (403, "insufficient-role")


async def test_an_editor_can_change_versions_but_not_activate(
    pages: Pages, shared_set: str
) -> None:
    editor = await pages("editor")
    await editor.goto(shared_set)
    await editor.get_by_role("link", name="Version 1").click()
    await expect(editor.get_by_role("link", name="Edit version")).to_be_visible()
    await expect(editor.get_by_role("button", name="Activate version 1")).to_have_count(0)
    await expect(editor.get_by_role("button", name="Delete CA set")).to_have_count(0)


async def test_an_editor_can_rotate_an_edge_certificate_but_not_change_its_binding(
    pages: Pages, bound_edge: str
) -> None:
    """Binding is the admin's: the same page shows an admin the binding's forms and an editor
    only the rotation."""
    admin = await pages("admin")
    await admin.goto(bound_edge)
    staging = admin.get_by_role("region", name="Mutual authentication on staging")
    await expect(staging.get_by_role("button", name="Save on staging")).to_be_visible()
    await expect(staging.get_by_role("button", name="Unbind on staging")).to_be_visible()

    editor = await pages("editor")
    await editor.goto("/console/#/edge-certificates")
    await expect(editor.get_by_role("link", name="New edge certificate")).to_be_visible()
    await editor.goto(bound_edge)
    staging = editor.get_by_role("region", name="Mutual authentication on staging")
    await expect(staging.locator(".change-status")).to_contain_text("COMPLETE")
    await expect(editor.get_by_role("button", name="Rotate", exact=True)).to_be_visible()
    await expect(editor.get_by_label("New certificate chain PEM")).to_be_visible()
    for verb in ("Bind", "Save", "Unbind"):
        for where in NETWORKS:
            button = editor.get_by_role("button", name=f"{verb} on {where}", exact=True)
            await expect(button).to_have_count(0)
    await expect(editor.locator(".bind-form")).to_have_count(0)


async def test_a_post_with_the_cookie_but_no_csrf_token_is_refused(pages: Pages) -> None:
    admin = await pages("admin")
    await admin.goto("/console/#/")
    status, problem = await admin.evaluate(FORGE, [None])
    assert (status, problem.rsplit("/", 1)[1]) == (403, "csrf-token-missing")
    await admin.reload()
    await expect(admin.get_by_role("heading", name="CA certificate sets")).to_be_visible()
    await expect(admin.get_by_role("link", name="forged-by-page")).to_have_count(0)


async def test_a_pasted_private_key_is_refused_in_the_browser_and_never_sent(
    pages: Pages, shared_set: str
) -> None:
    editor = await pages("editor")
    sent: list[str] = []

    def record(request: Request) -> None:
        sent.append(request.post_data or "")

    editor.on("request", record)
    try:
        await editor.goto(shared_set + "/versions/new")
        key = pages.node.pki.alice.key.read_text()
        assert "PRIVATE KEY" in key
        field = editor.get_by_label("Paste certificate PEM(s) here")
        await field.fill(pages.node.pki.ca_b.pem + key)
        await expect(editor.get_by_role("alert").filter(has_text="private key")).to_be_visible()
        assert "PRIVATE KEY" not in await field.input_value()
        await editor.get_by_role("button", name="Validate and add to version").click()
        await expect(editor.get_by_text("1 certificate(s) validated and added")).to_be_visible()
    finally:
        editor.remove_listener("request", record)
    assert sent
    assert not any("PRIVATE KEY" in body for body in sent)
