"""Fixtures of the console's browser tests: one node process (admin + edge) with a token per
role, one Chromium for the whole session (Debian's `chromium`, never Playwright's own download),
and one page per role, reused by every test.

Playwright's async API runs on pytest-asyncio's session loop (the tests say
`asyncio(loop_scope="session")`): its sync API would leave its own loop marked running in this
thread for the rest of the session, and every later asyncio test would fail to start."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    async_playwright,
    expect,
)

from e2e.clients import REFUSALS, Response, get
from e2e.pki import E2ePki, make_pki
from edgeproxy.config.kek import KEK_ENV
from edgeproxy.domain.secrets import generate_kek
from support.nodes import EdgeSpec, NodeFiles

CHROMIUM = "/usr/bin/chromium"  # Debian's package (`make system-deps`)
TOKENS = {
    "admin": ("ops", "console-admin-token"),
    "editor": ("dev", "console-editor-token"),
    "viewer": ("auditor", "console-viewer-token"),
}
BOUND_SET = "partners"  # the CA set the node's edge certificate binds (TOML)
EDGE_HOST = "api.test"  # the edge certificate of the node's file
PORTAL_HOST = "other.test"  # the one the workflow makes in the console
STARTUP = 30.0  # seconds the node may take to serve /healthz
TIMEOUT_MS = 15_000  # the longest any one browser wait may take
# `EDGEPROXY_SCREENSHOTS=docs/screenshots pytest tests/console/test_workflow.py` refreshes the
# README's pictures (alone, so that the other tests' CA sets stay out of them).
SCREENSHOTS = os.environ.get("EDGEPROXY_SCREENSHOTS")


class _Origin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"origin says hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def console_pki(tmp_path_factory: pytest.TempPathFactory) -> E2ePki:
    return make_pki(tmp_path_factory.mktemp("console-pki"))


@pytest.fixture(scope="session")
def origin_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Origin)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@dataclass
class ConsoleNode:
    files: NodeFiles
    process: subprocess.Popen[bytes]
    pki: E2ePki
    kek: str  # the key-encryption key (base64), for another node of the same store

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.files.admin_port}"

    @property
    def edge_port(self) -> int:
        return self.files.edge_port

    @property
    def origin_url(self) -> str:
        return self.files.origin_url

    def log(self) -> str:
        return (self.files.directory / "node.stderr").read_text(errors="replace")


@pytest.fixture(scope="session")
def node(
    tmp_path_factory: pytest.TempPathFactory, console_pki: E2ePki, origin_url: str
) -> Iterator[ConsoleNode]:
    directory = tmp_path_factory.mktemp("console-node")
    files = NodeFiles(
        directory,
        origin_url,
        console_pki.server_chain,
        console_pki.server_key,
        name="console-edge",
        tokens=tuple((name, role, token) for role, (name, token) in TOKENS.items()),
        edges=[EdgeSpec("api", (EDGE_HOST,), ca_set=BOUND_SET)],
    )
    files.use_free_ports()
    path = files.write()
    # The key-encryption key that seals the private keys of edge certificates made in the console.
    kek = generate_kek()
    env = {**os.environ, KEK_ENV: kek}
    with (directory / "node.stderr").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "edgeproxy", "serve", "-c", str(path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env,
        )  # fmt: skip
    running = ConsoleNode(files, process, console_pki, kek)
    try:
        _wait_healthy(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _wait_healthy(node: ConsoleNode) -> None:
    url = f"http://127.0.0.1:{node.files.status_port}/healthz"
    deadline = time.monotonic() + STARTUP
    for _ in range(int(STARTUP / 0.1)):
        if node.process.poll() is not None:
            raise AssertionError(f"the node exited: {node.log()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise AssertionError(f"the node did not serve /healthz in {STARTUP}s: {node.log()[-2000:]}")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    if not Path(CHROMIUM).exists():
        raise AssertionError(
            f"{CHROMIUM} is missing: `make system-deps` installs Debian's chromium"
        )
    async with async_playwright() as driver:
        yield driver


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    launched = await playwright.chromium.launch(executable_path=CHROMIUM)
    yield launched
    await launched.close()


@dataclass
class Pages:
    """One signed-in page per role (own cookie jar each), made on first use and then reused."""

    browser: Browser
    node: ConsoleNode
    contexts: dict[str, BrowserContext] = field(default_factory=dict)
    pages: dict[str, Page] = field(default_factory=dict)

    async def __call__(self, role: str) -> Page:
        if role not in self.pages:
            context = await self.new_context()
            page = await context.new_page()
            await sign_in(page, TOKENS[role][1])
            self.contexts[role], self.pages[role] = context, page
        return self.pages[role]

    async def new_context(self) -> BrowserContext:
        context = await self.browser.new_context(
            base_url=self.node.url, viewport={"width": 1280, "height": 800}
        )
        context.set_default_timeout(TIMEOUT_MS)
        return context

    async def close(self) -> None:
        for context in self.contexts.values():
            await context.close()


async def sign_in(page: Page, token: str) -> None:
    await page.goto("/console/")
    await page.get_by_label("Token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("button", name="Sign out").wait_for()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pages(browser: Browser, node: ConsoleNode) -> AsyncIterator[Pages]:
    made = Pages(browser, node)
    yield made
    await made.close()


async def screenshot(page: Page, name: str, directory: Path) -> Path:
    """A picture of the page as it is; also into the README's folder when asked to refresh it."""
    path = directory / f"{name}.png"
    await page.screenshot(path=str(path))
    if SCREENSHOTS:
        target = Path(SCREENSHOTS)
        target.mkdir(parents=True, exist_ok=True)
        (target / path.name).write_bytes(path.read_bytes())
    return path


async def make_set(page: Page, name: str, ca_pem: str) -> str:
    """A set with version 1 (the CAs of `ca_pem`) made through the editor's pages; its set page's
    URL."""
    await page.goto("/console/#/ca-sets/new")
    await expect(page.get_by_role("heading", name="New CA certificate set")).to_be_visible()
    await page.get_by_label("Name", exact=True).fill(name)
    await page.get_by_role("button", name="Submit").click()
    await expect(page.get_by_role("heading", level=1, name=name)).to_be_visible()
    url = page.url
    await page.get_by_role("link", name="Create version 1").click()
    await page.get_by_label("Paste certificate PEM(s) here").fill(ca_pem)
    await page.get_by_role("button", name="Validate and add to version").click()
    count = ca_pem.count("-----BEGIN CERTIFICATE-----")
    await expect(page.get_by_text(f"{count} certificate(s) validated and added")).to_be_visible()
    await page.get_by_role("button", name="Create version").click()
    await expect(page.get_by_role("heading", level=2, name="Version 1", exact=True)).to_be_visible()
    return url


async def api(node: ConsoleNode, method: str, path: str, body: Any = None) -> Any:
    """A call to the node's public admin API with the admin token, for a test's preconditions (what
    the test is about goes through the pages); the reply's JSON, or an AssertionError."""

    def call() -> Any:
        request = urllib.request.Request(
            node.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": f"Bearer {TOKENS['admin'][1]}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            text = reply.read()
        return json.loads(text) if text else None

    return await asyncio.to_thread(call)


async def mtls_get(node: ConsoleNode, client_name: str, host: str = EDGE_HOST) -> Response | None:
    """One request to the edge (SNI and Host `host`) with that client's certificate; None when
    the TLS handshake refused it (blocking client, in a thread)."""
    client = getattr(node.pki, client_name)
    try:
        return await asyncio.to_thread(get, node.pki, node.edge_port, host, client)
    except REFUSALS:
        return None


async def until(check: Any, what: str, *, tries: int = 100, pause: float = 0.1) -> None:
    """Wait, bounded in count, until `await check()` is true."""
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(pause)
    raise AssertionError(f"gave up waiting for {what}")


BASE = "/mtls-edge-truststore/v2"


async def activate(node: ConsoleNode, set_id: int, version: int, network: str = "STAGING") -> None:
    """Activate a version through the API (past any impact) and wait for COMPLETE."""
    started = await api(
        node,
        "POST",
        f"{BASE}/ca-sets/{set_id}/versions/{version}/activate",
        {"network": network, "acknowledgeImpact": True},
    )
    link = f"{BASE}/ca-sets/{set_id}/versions/{version}/activations/{started['activationId']}"

    async def complete() -> bool:
        state = await api(node, "GET", link)
        assert state["activationStatus"] != "FAILED", state
        return bool(state["activationStatus"] == "COMPLETE")

    await until(complete, f"version {version} of set {set_id} to be active")


async def serve_bound(node: ConsoleNode, set_name: str, edge_name: str, host: str) -> None:
    """An edge certificate for `host`, bound on staging to the set (active there), through the API;
    returns once the edge accepts alice (Partner A) there."""
    await api(
        node,
        "POST",
        "/edge/v1/edge-certificates",
        {
            "name": edge_name,
            "hostnames": [host],
            "origin": node.origin_url,
            "certificateChainPem": node.pki.server_chain.read_text(),
            "privateKeyPem": node.pki.server_key.read_text(),
        },
    )
    change = await api(
        node,
        "PUT",
        f"/edge/v1/edge-certificates/{edge_name}/mutual-authentication/STAGING",
        {"caSetName": set_name},
    )
    await until_converged(node, change)

    async def accepted() -> bool:
        return await mtls_get(node, "alice", host) is not None

    await until(accepted, f"alice accepted at {host}")


async def until_converged(node: ConsoleNode, change: dict[str, Any]) -> None:
    """Wait until a binding change made through the API is no longer in progress: until then
    another change of that binding (a section saved in the console) is refused with 409."""

    async def converged() -> bool:
        return (await api(node, "GET", change["changeLink"]))["status"] != "IN_PROGRESS"

    await until(converged, f"binding change {change['changeId']} to converge")
