"""Edge certificates and the fleet in the browser: the list and a certificate's details (host names,
validity, the nodes serving it), rotating its chain and key (a key that does not match is refused in
words; the edge then serves the new certificate), the set's associations and activations tabs, and
the fleet page with a node that lags behind its network highlighted, an activation that a node
cannot apply followed to FAILED with its reason, and one held by a stopped node until an operator
forgets it: pending, then lost and COMPLETE."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import socket
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import expect

from edgeproxy.domain.model import Network, Node
from edgeproxy.service.fleet import FleetService
from edgeproxy.store import open_store
from support.nodes import NodeFiles, SubprocessNode
from support.pki import Pki

from .conftest import BASE, ConsoleNode, Pages, activate, api, make_set, serve_bound, until

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]
EDGE = "rotating"
STOPPED = "edge-stopped"  # the production node the last test stops
HELD = "held-by-a-stopped-node"  # its CA set and edge certificate
HOST = "rotate.api.test"  # covered by the edge certificate's *.api.test


def served_fingerprint(node: ConsoleNode, host: str) -> str:
    """The SHA-256 of the certificate the edge presents for `host` (alice's handshake)."""
    context = node.pki.client_context(node.pki.alice)
    with (
        socket.create_connection(("127.0.0.1", node.edge_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


async def test_edge_certificate_details_rotation_and_the_sets_tabs(
    pages: Pages, node: ConsoleNode
) -> None:
    page = await pages("admin")
    set_url = await make_set(page, "edge-details", node.pki.ca_a.pem)
    await activate(node, int(set_url.rsplit("/", 1)[1]), 1)
    await serve_bound(node, "edge-details", EDGE, HOST)
    first = await asyncio.to_thread(served_fingerprint, node, HOST)

    await page.goto("/console/#/edge-certificates")
    row = page.locator(f'tr[data-edge="{EDGE}"]')
    await expect(row).to_contain_text(HOST)
    await expect(row).to_contain_text("managed here")
    await expect(row).to_contain_text("staging: edge-details")
    await expect(row).to_contain_text("console-edge")
    await row.get_by_role("link", name=EDGE).click()
    facts = page.locator(".facts").first
    await expect(facts).to_contain_text(f"Hostnames{HOST}")
    await expect(facts).to_contain_text("Served byconsole-edge")
    await expect(facts).to_contain_text(first)
    await expect(facts).to_contain_text("(generation 1)")

    # Rotate: the new chain with the old key is refused in words; with its own key it is served.
    issued = node.pki.server_ca.ca.issue_cert(HOST)
    chain = "".join(b.bytes().decode() for b in issued.cert_chain_pems)
    rotate = page.locator("form", has=page.get_by_role("heading", name="Rotate the certificate"))
    await rotate.get_by_label("New certificate chain PEM").fill(chain)
    await rotate.get_by_label("New private key PEM").fill(node.pki.server_key.read_text())
    await rotate.get_by_role("button", name="Rotate").click()
    refusal = rotate.locator(".problem")
    await expect(refusal).to_contain_text("The certificate was not rotated.")
    await expect(refusal).to_contain_text("key")
    await rotate.get_by_label("New private key PEM").fill(issued.private_key_pem.bytes().decode())
    await rotate.get_by_role("button", name="Rotate").click()
    await expect(facts).to_contain_text("(generation 2)")
    await expect(facts).not_to_contain_text(first)

    async def rotated() -> bool:
        return await asyncio.to_thread(served_fingerprint, node, HOST) != first

    await until(rotated, "the edge to serve the rotated certificate")

    await page.goto(set_url + "/associations")
    association = page.locator("tr", has_text=EDGE)
    await expect(association).to_contain_text(HOST)
    await expect(association).to_contain_text("console-edge")
    await page.get_by_role("link", name="Activations").click()
    activation = page.locator("tbody tr", has_text="Activate version 1")
    await expect(activation).to_contain_text("staging")
    await expect(activation).to_contain_text("COMPLETE")


async def test_the_fleet_highlights_a_node_that_lags(pages: Pages, node: ConsoleNode) -> None:
    """A second edge node of staging reports itself at revision 0 while the console's node applied
    newer ones: it is marked as lagging, the up-to-date node is not."""
    store = open_store(f"sqlite:///{node.files.database}")
    await store.open()
    fleet = FleetService(store)
    now = datetime.now(UTC)
    behind = Node(
        "edge-behind", Network.STAGING, ("edge",), now - timedelta(hours=1), now,
        applied_revision=0, applied_at=now - timedelta(hours=1),
    )  # fmt: skip
    await fleet.report_node(behind)
    try:
        page = await pages("viewer")
        await page.goto("/console/#/fleet")
        lagging = page.locator('tr[data-node="edge-behind"]')
        await expect(lagging).to_have_class(re.compile(r"\blagging\b"))
        await expect(lagging).to_contain_text("Lagging behind the network")
        current = page.locator('tr[data-node="console-edge"]')
        await expect(current).to_contain_text("live")
        await expect(current).to_contain_text("staging")
        await expect(current).not_to_have_class(re.compile(r"\blagging\b"))
    finally:
        await fleet.remove_node("edge-behind")
        await store.close()


async def test_an_activation_a_node_cannot_apply_fails_with_its_reason(
    pages: Pages, node: ConsoleNode
) -> None:
    """A production edge node (reporting through the store as every node does) that cannot apply
    the version: the dialog shows it pending, then FAILED with its reason and the node failed."""
    page = await pages("admin")
    set_url = await make_set(page, "unappliable", Pki().ca("Unappliable CA").pem)
    store = open_store(f"sqlite:///{node.files.database}")
    await store.open()
    fleet = FleetService(store)
    now = datetime.now(UTC)
    broken = Node("edge-broken", Network.PRODUCTION, ("edge",), now, now)
    await fleet.report_node(broken)
    try:
        await page.goto(set_url + "/versions/1")
        await page.get_by_role("button", name="Activate version 1", exact=True).click()
        dialog = page.get_by_role("dialog")
        await dialog.get_by_role("button", name="Activate version 1 on production").click()
        nodes = dialog.locator(".activation-nodes")
        await expect(nodes).to_contain_text("pending: 1 (edge-broken)")
        await expect(dialog.locator(".activation-status")).to_contain_text("IN_PROGRESS")

        revision = (await fleet.trust_view(Network.PRODUCTION)).revision
        reported = datetime.now(UTC)
        errors = {"unappliable": "the CA list does not fit"}
        await fleet.report_node(
            replace(
                broken, last_seen=reported, applied_revision=revision, applied_at=reported,
                apply_errors=errors,
            )
        )  # fmt: skip
        await expect(dialog.locator(".activation-status")).to_contain_text("FAILED")
        await expect(dialog.get_by_role("alert")).to_contain_text(
            "FAILED: edge-broken: the CA list does not fit"
        )
        await expect(nodes).to_contain_text("failed: 1 (edge-broken)")
        await dialog.get_by_role("button", name="Close").click()
        await expect(page.locator(".badge", has_text="Inactive on production")).to_be_visible()
    finally:
        await fleet.remove_node("edge-broken")
        await store.close()


async def registered(node: ConsoleNode, name: str, *, live: bool = True) -> bool:
    """Whether the fleet lists the node (and, with `live`, as live)."""
    listed = await api(node, "GET", f"{BASE}/nodes")
    return any(n["name"] == name and (n["live"] or not live) for n in listed["nodes"])


async def test_a_stopped_node_is_pending_until_forgotten_then_lost(
    pages: Pages, node: ConsoleNode, tmp_path: Path
) -> None:
    """A second, real edge node of production on the console node's store applies version 1,
    then is stopped (SIGSTOP). Version 2's activation (in its dialog) and a binding on production
    (in the edge certificate's mutual authentication section, another tab) both show it pending
    and stay IN_PROGRESS; once an operator forgets it through the API, both show it lost and
    COMPLETE, the activation with the warning that names it."""
    kek = tmp_path / "kek"
    kek.write_text(node.kek, encoding="ascii")
    kek.chmod(0o600)  # the node refuses a key file others can read
    files = NodeFiles(
        tmp_path / "stopped-node", node.origin_url, node.pki.server_chain, node.pki.server_key,
        name=STOPPED, network="PRODUCTION", roles=("edge",),
        store_url=f"sqlite:///{node.files.database}", edges=[], kek_file=kek,
    )  # fmt: skip
    stopping = SubprocessNode(files)
    page = await pages("admin")
    set_url = await make_set(page, HELD, Pki().ca("Held CA").pem)
    set_id = int(set_url.rsplit("/", 1)[1])
    await api(node, "POST", f"{BASE}/ca-sets/{set_id}/versions", {
        "certificates": [{"certificatePem": Pki().ca("Held CA 2").pem}],
    })  # fmt: skip
    await api(node, "POST", "/edge/v1/edge-certificates", {
        "name": HELD, "hostnames": ["held.api.test"], "origin": node.origin_url,
        "certificateChainPem": node.pki.server_chain.read_text(),
        "privateKeyPem": node.pki.server_key.read_text(),
    })  # fmt: skip
    binding = await pages.contexts["admin"].new_page()
    try:
        await stopping.start()
        await until(lambda: registered(node, STOPPED), f"{STOPPED} to register")
        await activate(node, set_id, 1, "PRODUCTION")  # applied by the running node
        assert stopping.process is not None
        os.kill(stopping.process.pid, signal.SIGSTOP)  # our own child; killed below, stopped

        await page.goto(set_url + "/versions/2")
        await page.get_by_role("button", name="Activate version 2", exact=True).click()
        dialog = page.get_by_role("dialog")
        await dialog.get_by_role("button", name="Activate version 2 on production").click()
        nodes = dialog.locator(".activation-nodes")
        await expect(nodes).to_contain_text(f"pending: 1 ({STOPPED})")
        await expect(nodes).to_contain_text("lost: 0")
        await expect(dialog.locator(".activation-status")).to_contain_text("IN_PROGRESS")

        await binding.goto(f"/console/#/edge-certificates/{HELD}")
        production = binding.get_by_role("region", name="Mutual authentication on production")
        await production.get_by_label("Certificate set").select_option(HELD)
        await production.get_by_role("button", name="Bind on production").click()
        change = production.locator(".change-nodes")
        await expect(change).to_contain_text(f"pending: 1 ({STOPPED})")
        await expect(change).to_contain_text("lost: 0")
        await expect(production.locator(".change-status")).to_contain_text("IN_PROGRESS")

        forgotten = await api(node, "DELETE", f"{BASE}/nodes/{STOPPED}")
        assert forgotten["forgottenNodes"] == [STOPPED]
        await expect(dialog.locator(".activation-status")).to_contain_text(
            "Activation on production: COMPLETE"
        )
        await expect(nodes).to_contain_text("pending: 0")
        await expect(nodes).to_contain_text(f"lost: 1 ({STOPPED})")
        forgotten_by = dialog.locator(".warn", has_text=f"{STOPPED} (forgotten by ops)")
        await expect(forgotten_by).to_be_visible()
        await expect(production.locator(".change-status")).to_contain_text("COMPLETE")
        await expect(change).to_contain_text("pending: 0")
        await expect(change).to_contain_text(f"lost: 1 ({STOPPED})")
        await dialog.get_by_role("button", name="Close").click()
        await expect(page.locator(".badge", has_text="Active on production")).to_be_visible()
    finally:
        await binding.close()
        await stopping.kill()  # SIGKILL ends a stopped process too
        # Left registered, it would hold every later production change of the session.
        if await registered(node, STOPPED, live=False):
            await api(node, "DELETE", f"{BASE}/nodes/{STOPPED}")
